package udp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/octavia-vpp/health/heartbeat"
	"github.com/octavia-vpp/health/internal/boundq"
)

// maxDatagram holds any UDP payload: 65,507 bytes over IPv4, 65,527 over
// IPv6 without jumbograms.
const maxDatagram = 64 << 10

// ReceiverConfig configures a Receiver. Zero values take the defaults.
type ReceiverConfig struct {
	// Addr is [health_manager] bind_ip and bind_port. Port 0 picks a free
	// port (tests).
	Addr netip.AddrPort
	// Sockets is [health_manager] receive_sockets: how many SO_REUSEPORT
	// sockets share the port, each with its reader. Default: the CPU count.
	// Linux only (it spreads datagrams over them); elsewhere one is bound.
	Sockets int
	// ReceiveBuffer is [health_manager] sock_rlimit: SO_RCVBUF when > 0.
	ReceiveBuffer int
	// Workers open datagrams in parallel. Default: the CPU count.
	Workers int
	// QueueSize bounds the datagrams waiting for a worker; when it is full
	// the oldest is discarded. Default 16384.
	QueueSize int
	// Keys returns the keyring to open with; it is called per datagram, so
	// a reload takes effect at once.
	Keys func() *heartbeat.Keyring
	// Check, when set, may still refuse an opened message (the replay
	// guard); an *Error it returns is counted and logged by its reason
	// like any other rejection. It is called from the worker goroutines.
	Check func(*heartbeat.Message) error
	// Forward, when set, is handed every datagram as read, before it is
	// queued or opened (the shadow's forwarding mode, Forwarder.Forward).
	// It is called from the reader goroutines and must not block; the
	// slice is only valid during the call.
	Forward func(datagram []byte)
	// Deliver receives each accepted message, from the worker goroutines.
	Deliver func(*heartbeat.Message)
	// Raw, when set, is called before Deliver with the accepted message's
	// datagram and source (shadow mode keeps them); the datagram's memory
	// is reused after it returns.
	Raw func(msg *heartbeat.Message, datagram []byte, from netip.AddrPort)
	// Lost, if set, is told whenever datagrams were discarded before they
	// could be opened: the socket's receive buffer overflowed (the kernel
	// dropped them) or the queue was full. Valid heartbeats may be among
	// them, so rows may go stale through no fault of their amphorae.
	Lost func(n int)
	// Metrics may be nil.
	Metrics *ReceiverMetrics
	Logger  *slog.Logger
	// Now stamps RecvTime; nil means time.Now.
	Now func() time.Time
}

// Receiver reads heartbeat datagrams and opens them.
type Receiver struct {
	cfg     ReceiverConfig
	conns   []*net.UDPConn
	queue   *boundq.Queue[datagram]
	limiter *logLimiter
	// rejected holds each reason's counter, indexed by reason and resolved
	// once rather than per rejection (a label lookup costs more than the
	// rest of counting).
	rejected []prometheus.Counter
	// accepted holds the acceptance counters by [key is previous][MAC form],
	// resolved once for the same reason.
	accepted [2][heartbeat.MACRaw + 1]prometheus.Counter
}

type datagram struct {
	data []byte
	from netip.AddrPort
	recv time.Time
}

// ErrPortHeld: another socket already holds the heartbeat port.
var ErrPortHeld = errors.New("another socket already holds this port")

// NewReceiver binds the sockets.
func NewReceiver(cfg ReceiverConfig) (*Receiver, error) {
	if cfg.Keys == nil || cfg.Deliver == nil {
		return nil, errors.New("heartbeat receiver needs Keys and Deliver")
	}
	if cfg.Sockets <= 0 {
		cfg.Sockets = runtime.NumCPU()
	}
	if !reusePortSockets {
		cfg.Sockets = 1
	}
	if cfg.Workers <= 0 {
		cfg.Workers = runtime.NumCPU()
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 16384
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	r := &Receiver{cfg: cfg, queue: boundq.New[datagram](cfg.QueueSize), limiter: newLogLimiter(10 * time.Second)}
	if m := cfg.Metrics; m != nil {
		reasons := heartbeat.Reasons()
		r.rejected = make([]prometheus.Counter, int(slices.Max(reasons))+1)
		for _, reason := range reasons {
			r.rejected[reason] = m.Rejected.WithLabelValues(reason.String())
		}
		for i, key := range []string{"primary", "previous"} {
			for _, form := range []heartbeat.MACForm{heartbeat.MACHex, heartbeat.MACRaw} {
				r.accepted[i][form] = m.Accepted.WithLabelValues(key, form.String())
			}
		}
	}
	addr := cfg.Addr
	if err := checkPortFree(addr); err != nil {
		return nil, fmt.Errorf("listen for heartbeats on udp %s: %w", addr, err)
	}
	for i := 0; i < cfg.Sockets; i++ {
		conn, err := listenReusePort(addr, cfg.ReceiveBuffer)
		if err != nil {
			r.closeConns()
			return nil, fmt.Errorf("listen for heartbeats on udp %s: %w", addr, err)
		}
		if i == 0 {
			// With port 0 the first socket picks the port the others share.
			addr = conn.LocalAddr().(*net.UDPAddr).AddrPort()
		}
		r.conns = append(r.conns, conn)
	}
	return r, nil
}

// udpNetwork is the network to listen on for addr's family.
func udpNetwork(addr netip.AddrPort) string {
	if addr.Addr().Is6() && !addr.Addr().Is4In6() {
		return "udp6"
	}
	return "udp4"
}

// Addr is the bound address.
func (r *Receiver) Addr() netip.AddrPort {
	return r.conns[0].LocalAddr().(*net.UDPAddr).AddrPort()
}

func (r *Receiver) closeConns() {
	for _, c := range r.conns {
		c.Close()
	}
}

// Run reads and opens datagrams until ctx ends. It then stops reading,
// opens and delivers what is already queued, and returns.
func (r *Receiver) Run(ctx context.Context) {
	var readers, workers sync.WaitGroup
	for _, conn := range r.conns {
		readers.Add(1)
		go func() {
			defer readers.Done()
			r.read(conn)
		}()
	}
	for i := 0; i < r.cfg.Workers; i++ {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for d := range r.queue.C() {
				r.open(d)
			}
		}()
	}
	<-ctx.Done()
	r.closeConns()
	readers.Wait()
	r.queue.Close()
	workers.Wait()
}

// enqueue counts datagrams just read and queues them for the workers.
func (r *Receiver) enqueue(ds []datagram, bytes int) {
	if m := r.cfg.Metrics; m != nil {
		m.Datagrams.Add(float64(len(ds)))
		m.Bytes.Add(float64(bytes))
	}
	if r.cfg.Forward != nil {
		// Before queueing: a full queue drops datagrams here, and Octavia
		// must get them all the same.
		for _, d := range ds {
			r.cfg.Forward(d.data)
		}
	}
	dropped := 0
	for _, d := range ds {
		dropped += len(r.queue.Put(d))
	}
	if dropped > 0 {
		r.lost("receive", "queue_full", dropped)
	}
}

// slabSize is how much datagram data one allocation holds.
const slabSize = 256 << 10

// slab copies datagrams out of the read buffers into large chunks, so the
// reader allocates once per slabSize bytes instead of once per datagram. A
// chunk is garbage once every datagram in it has been opened; as the queue
// is first in, first out, the chunks alive hold little beyond the queued
// datagrams themselves.
type slab struct{ buf []byte }

func (s *slab) copy(b []byte) []byte {
	if len(b) > cap(s.buf)-len(s.buf) {
		s.buf = make([]byte, 0, max(slabSize, len(b)))
	}
	start := len(s.buf)
	s.buf = append(s.buf, b...)
	// Capped, so that nothing appends into the next datagram.
	return s.buf[start:len(s.buf):len(s.buf)]
}

// lost counts datagrams discarded unopened and tells cfg.Lost.
func (r *Receiver) lost(queue, reason string, n int) {
	if m := r.cfg.Metrics; m != nil {
		m.Dropped.WithLabelValues(queue, reason).Add(float64(n))
	}
	if r.cfg.Lost != nil {
		r.cfg.Lost(n)
	}
}

func (r *Receiver) open(d datagram) {
	m := r.cfg.Metrics
	start := time.Now()
	msg, v, err := r.cfg.Keys().Open(d.data)
	end := time.Now()
	if m != nil {
		m.OpenSeconds.Observe(end.Sub(start).Seconds())
	}
	if err == nil {
		msg.RecvTime = d.recv
		if r.cfg.Check != nil {
			err = r.cfg.Check(msg)
		}
	}
	if err != nil {
		reason := rejectionReason(err)
		if m != nil {
			if int(reason) < len(r.rejected) && r.rejected[reason] != nil {
				r.rejected[reason].Inc()
			} else {
				m.Rejected.WithLabelValues(reason.String()).Inc()
			}
		}
		if suppressed, ok := r.limiter.allowAt(reason.String(), end); ok {
			r.cfg.Logger.Warn("heartbeat rejected", "reason", reason.String(), "srcaddr", d.from.Addr().String(),
				"bytes", len(d.data), "err", err, "suppressed_since_last", suppressed)
		}
		return
	}
	if m != nil {
		key := 0
		if v.KeyIndex > 0 {
			key = 1
		}
		if int(v.Form) < len(r.accepted[key]) && r.accepted[key][v.Form] != nil {
			r.accepted[key][v.Form].Inc()
		} else {
			m.Accepted.WithLabelValues([]string{"primary", "previous"}[key], v.Form.String()).Inc()
		}
	}
	if r.cfg.Raw != nil {
		r.cfg.Raw(msg, d.data, d.from)
	}
	r.cfg.Deliver(msg)
}

// rejectionReason is ReasonOf without its allocation in the common case,
// where the error is an *Error itself rather than wraps one.
func rejectionReason(err error) heartbeat.Reason {
	if he, ok := err.(*heartbeat.Error); ok && he != nil {
		return he.Reason
	}
	return heartbeat.ReasonOf(err)
}

// QueueLen is how many datagrams wait for a worker.
func (r *Receiver) QueueLen() int { return r.queue.Len() }

// logLimiter lets one log line per key through per period and counts the
// rest, so a flood of bad packets cannot flood the log.
type logLimiter struct {
	mu     sync.Mutex
	period time.Duration
	last   map[string]time.Time
	quiet  map[string]int
}

func newLogLimiter(period time.Duration) *logLimiter {
	return &logLimiter{period: period, last: map[string]time.Time{}, quiet: map[string]int{}}
}

func (l *logLimiter) allow(key string) (suppressed int, ok bool) { return l.allowAt(key, time.Now()) }

// allowAt is allow for a caller that already read the clock.
func (l *logLimiter) allowAt(key string, now time.Time) (suppressed int, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.last[key]) < l.period {
		l.quiet[key]++
		return 0, false
	}
	suppressed = l.quiet[key]
	l.last[key], l.quiet[key] = now, 0
	return suppressed, true
}

// ReceiverMetrics are the receiver's Prometheus metrics.
type ReceiverMetrics struct {
	Datagrams   prometheus.Counter
	Bytes       prometheus.Counter
	Rejected    *prometheus.CounterVec
	Accepted    *prometheus.CounterVec
	OpenSeconds prometheus.Histogram
	// Dropped counts work discarded under overload, by queue and reason.
	Dropped *prometheus.CounterVec
}

// NewReceiverMetrics creates and registers the receiver's metrics. Every
// rejection reason and every (key, mac) of an acceptance starts at zero,
// so that rate() answers before the first event.
func NewReceiverMetrics(reg prometheus.Registerer) *ReceiverMetrics {
	m := &ReceiverMetrics{
		Datagrams: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "octavia_hm_datagrams_received_total", Help: "Heartbeat datagrams read from the sockets."}),
		Bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "octavia_hm_datagram_bytes_received_total", Help: "Bytes of heartbeat datagrams read."}),
		Rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "octavia_hm_heartbeats_rejected_total", Help: "Datagrams rejected, by reason."}, []string{"reason"}),
		Accepted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "octavia_hm_heartbeats_accepted_total", Help: "Datagrams accepted, by key (primary or previous) and MAC form (hex or raw)."},
			[]string{"key", "mac"}),
		OpenSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "octavia_hm_open_duration_seconds", Help: "Time to verify, inflate and decode one datagram.",
			Buckets: prometheus.ExponentialBuckets(1e-6, 2, 16)}),
		Dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "octavia_hm_queue_dropped_total", Help: "Work discarded under overload, oldest first, by queue and reason."},
			[]string{"queue", "reason"}),
	}
	for _, r := range heartbeat.Reasons() {
		m.Rejected.WithLabelValues(r.String())
	}
	for _, key := range []string{"primary", "previous"} {
		for _, mac := range []heartbeat.MACForm{heartbeat.MACHex, heartbeat.MACRaw} {
			m.Accepted.WithLabelValues(key, mac.String())
		}
	}
	m.Dropped.WithLabelValues("receive", "queue_full")
	m.Dropped.WithLabelValues("socket", "buffer_full")
	reg.MustRegister(m.Datagrams, m.Bytes, m.Rejected, m.Accepted, m.OpenSeconds, m.Dropped)
	return m
}
