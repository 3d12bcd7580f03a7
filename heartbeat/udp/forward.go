package udp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Forwarder relays every datagram a shadow manager receives, unchanged, to
// the real controllers in turn ([health_manager] shadow_forward_to,
// docs/shadow.md). Listed in the amphorae's controller_ip_port_list as one
// more controller, the shadow would otherwise keep its share of the
// heartbeats from Octavia. It forwards before anything is verified, and
// forwards what fails verification too: Octavia would have received those
// and counted them as it does. It never waits on the database: the reader
// calls Forward straight after reading.
type Forwarder struct {
	conn    *net.UDPConn
	dests   []netip.AddrPort
	names   []string
	next    atomic.Uint64
	sent    []prometheus.Counter
	failed  []prometheus.Counter
	limiter *logLimiter
	logger  *slog.Logger
}

// ForwarderMetrics are the forwarder's Prometheus metrics, labelled by
// controller as written in shadow_forward_to.
type ForwarderMetrics struct {
	Forwarded *prometheus.CounterVec
	Errors    *prometheus.CounterVec
}

// NewForwarderMetrics creates and registers the forwarder's metrics.
func NewForwarderMetrics(reg prometheus.Registerer) *ForwarderMetrics {
	m := &ForwarderMetrics{
		Forwarded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "octavia_hm_shadow_forwarded_total",
			Help: "Datagrams the shadow forwarded unchanged to a real controller (shadow_forward_to), by controller."},
			[]string{"controller"}),
		Errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "octavia_hm_shadow_forward_errors_total",
			Help: "Datagrams the shadow failed to forward to a real controller, by controller; Octavia did not get them from us."},
			[]string{"controller"}),
	}
	reg.MustRegister(m.Forwarded, m.Errors)
	return m
}

// ResolveControllers resolves shadow_forward_to entries (the syntax of
// controller_ip_port_list) to addresses, once: a shadow that resolves per
// datagram would add a lookup to every heartbeat Octavia gets late.
func ResolveControllers(ctx context.Context, entries []string) ([]netip.AddrPort, error) {
	out := make([]netip.AddrPort, 0, len(entries))
	for _, e := range entries {
		c, err := ParseController(e)
		if err != nil {
			return nil, err
		}
		if ip, err := netip.ParseAddr(c.Host); err == nil {
			out = append(out, netip.AddrPortFrom(ip, c.Port))
			continue
		}
		ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", c.Host)
		if err != nil || len(ips) == 0 {
			return nil, fmt.Errorf("shadow_forward_to %q: cannot resolve %q: %v", e, c.Host, err)
		}
		out = append(out, netip.AddrPortFrom(ips[0].Unmap(), c.Port))
	}
	return out, nil
}

// NewForwarder opens the sending socket. dests must not be empty; m and
// logger may be nil.
func NewForwarder(dests []netip.AddrPort, m *ForwarderMetrics, logger *slog.Logger) (*Forwarder, error) {
	if len(dests) == 0 {
		return nil, errors.New("forwarder needs at least one controller")
	}
	if logger == nil {
		logger = slog.Default()
	}
	// One unbound socket on both families: dests may mix IPv4 and IPv6.
	conn, err := net.ListenUDP("udp", nil)
	if err != nil {
		return nil, fmt.Errorf("open forwarding socket: %w", err)
	}
	f := &Forwarder{conn: conn, dests: dests, limiter: newLogLimiter(10 * time.Second), logger: logger}
	for _, d := range dests {
		name := d.String()
		f.names = append(f.names, name)
		if m != nil {
			f.sent = append(f.sent, m.Forwarded.WithLabelValues(name))
			f.failed = append(f.failed, m.Errors.WithLabelValues(name))
		}
	}
	return f, nil
}

// Forward sends datagram to the next controller in turn. It is safe for
// concurrent use; the datagram is copied by the kernel before it returns.
func (f *Forwarder) Forward(datagram []byte) {
	i := int((f.next.Add(1) - 1) % uint64(len(f.dests)))
	_, err := f.conn.WriteToUDPAddrPort(datagram, f.dests[i])
	if err != nil {
		if f.failed != nil {
			f.failed[i].Inc()
		}
		if suppressed, ok := f.limiter.allow("forward " + strconv.Itoa(i)); ok {
			f.logger.Warn("shadow could not forward a heartbeat; Octavia will miss it", "controller", f.names[i],
				"bytes", len(datagram), "err", err, "suppressed_since_last", suppressed)
		}
		return
	}
	if f.sent != nil {
		f.sent[i].Inc()
	}
}

// Close closes the sending socket.
func (f *Forwarder) Close() error { return f.conn.Close() }
