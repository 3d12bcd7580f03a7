package heartbeat

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

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
	Keys func() *Keyring
	// Check, when set, may still refuse an opened message (the replay
	// guard); an *Error it returns is counted and logged by its reason
	// like any other rejection. It is called from the worker goroutines.
	Check func(*Message) error
	// Deliver receives each accepted message, from the worker goroutines.
	Deliver func(*Message, Verified)
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
}

type datagram struct {
	data []byte
	from netip.AddrPort
	recv time.Time
}

// NewReceiver binds the sockets.
func NewReceiver(cfg ReceiverConfig) (*Receiver, error) {
	if cfg.Keys == nil || cfg.Deliver == nil {
		return nil, errors.New("heartbeat receiver needs Keys and Deliver")
	}
	if cfg.Sockets <= 0 {
		cfg.Sockets = runtime.NumCPU()
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
	addr := cfg.Addr
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

func listenReusePort(addr netip.AddrPort, rcvbuf int) (*net.UDPConn, error) {
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var sockErr error
		err := rc.Control(func(fd uintptr) {
			sockErr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
			if sockErr == nil {
				// Every datagram read then carries the socket's count of
				// datagrams the kernel dropped for want of buffer space.
				sockErr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RXQ_OVFL, 1)
			}
			if sockErr == nil && rcvbuf > 0 {
				// Linux doubles the value and caps it at net.core.rmem_max.
				sockErr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, rcvbuf)
			}
		})
		if err != nil {
			return err
		}
		return sockErr
	}}
	network := "udp4"
	if addr.Addr().Is6() && !addr.Addr().Is4In6() {
		network = "udp6"
	}
	pc, err := lc.ListenPacket(context.Background(), network, addr.String())
	if err != nil {
		return nil, err
	}
	return pc.(*net.UDPConn), nil
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

func (r *Receiver) read(conn *net.UDPConn) {
	buf := make([]byte, maxDatagram)
	oob := make([]byte, unix.CmsgSpace(4))
	var kernelDrops uint32 // the socket's cumulative count, as last read
	m := r.cfg.Metrics
	for {
		n, oobn, _, from, err := conn.ReadMsgUDPAddrPort(buf, oob)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			r.cfg.Logger.Warn("heartbeat socket read failed", "err", err)
			continue
		}
		if total, ok := socketDrops(oob[:oobn]); ok && total != kernelDrops {
			// uint32 arithmetic survives the kernel's counter wrapping.
			r.lost("socket", "buffer_full", int(total-kernelDrops))
			kernelDrops = total
		}
		d := datagram{data: append([]byte(nil), buf[:n]...), from: from, recv: r.cfg.Now()}
		if m != nil {
			m.Datagrams.Inc()
			m.Bytes.Add(float64(n))
		}
		if dropped := len(r.queue.Put(d)); dropped > 0 {
			r.lost("receive", "queue_full", dropped)
		}
	}
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

// socketDrops finds the SO_RXQ_OVFL count in a datagram's control
// messages. The kernel attaches it once the socket has dropped anything.
func socketDrops(oob []byte) (uint32, bool) {
	if len(oob) == 0 {
		return 0, false
	}
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return 0, false
	}
	for _, c := range msgs {
		if c.Header.Level == unix.SOL_SOCKET && c.Header.Type == unix.SO_RXQ_OVFL && len(c.Data) >= 4 {
			return binary.NativeEndian.Uint32(c.Data), true
		}
	}
	return 0, false
}

func (r *Receiver) open(d datagram) {
	m := r.cfg.Metrics
	start := time.Now()
	msg, v, err := r.cfg.Keys().Open(d.data)
	if m != nil {
		m.OpenSeconds.Observe(time.Since(start).Seconds())
	}
	if err == nil {
		msg.RecvTime = d.recv
		if r.cfg.Check != nil {
			err = r.cfg.Check(msg)
		}
	}
	if err != nil {
		reason := ReasonOf(err)
		if m != nil {
			m.Rejected.WithLabelValues(reason.String()).Inc()
		}
		if suppressed, ok := r.limiter.allow(reason.String()); ok {
			r.cfg.Logger.Warn("heartbeat rejected", "reason", reason.String(), "srcaddr", d.from.Addr().String(),
				"bytes", len(d.data), "err", err, "suppressed_since_last", suppressed)
		}
		return
	}
	if m != nil {
		key := "primary"
		if v.KeyIndex > 0 {
			key = "previous"
		}
		m.Accepted.WithLabelValues(key, v.Form.String()).Inc()
	}
	r.cfg.Deliver(msg, v)
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

func (l *logLimiter) allow(key string) (suppressed int, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
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
// rejection reason starts at zero, so a dashboard sees it before it happens.
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
	for _, r := range Reasons() {
		m.Rejected.WithLabelValues(r.String())
	}
	m.Dropped.WithLabelValues("receive", "queue_full")
	m.Dropped.WithLabelValues("socket", "buffer_full")
	reg.MustRegister(m.Datagrams, m.Bytes, m.Rejected, m.Accepted, m.OpenSeconds, m.Dropped)
	return m
}
