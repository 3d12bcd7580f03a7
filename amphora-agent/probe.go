package agent

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// ProbeSpec is everything one probe needs: the monitor's settings and the
// member's target.
type ProbeSpec struct {
	Type    string
	Addr    netip.Addr
	Port    int
	Timeout time.Duration
	// HTTP and HTTPS only.
	Method     string
	Path       string
	Expected   string // expected_codes
	DomainName string // Host header, and SNI for HTTPS and TLS-HELLO
}

// SpecFor builds the probe spec of a member under a monitor.
func SpecFor(hm *HealthMonitor, m *Member) ProbeSpec {
	a, p := m.ProbeTarget()
	return ProbeSpec{
		Type: hm.Type, Addr: a, Port: p, Timeout: hm.ProbeTimeout(),
		Method: hm.HTTPMethod, Path: hm.URLPath, Expected: hm.ExpectedCodes, DomainName: hm.DomainName,
	}
}

// ErrPingPermission is returned by PING probes when the process may not
// open an ICMP socket.
var ErrPingPermission = errors.New("ping probe needs CAP_NET_RAW or a net.ipv4.ping_group_range covering the agent's group")

// Probe runs one probe. nil means the member passed. The context's
// deadline bounds it; spec.Timeout, when set, bounds it further.
func Probe(ctx context.Context, spec ProbeSpec) error {
	if spec.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, spec.Timeout)
		defer cancel()
	}
	target := net.JoinHostPort(spec.Addr.String(), strconv.Itoa(spec.Port))
	switch spec.Type {
	case MonitorTCP:
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", target)
		if err != nil {
			return err
		}
		return c.Close()
	case MonitorHTTP, MonitorHTTPS:
		return probeHTTP(ctx, spec, target)
	case MonitorTLSHello:
		d := tls.Dialer{Config: tlsConfig(spec)}
		c, err := d.DialContext(ctx, "tcp", target)
		if err != nil {
			return err
		}
		return c.Close()
	case MonitorUDPConnect:
		return probeUDP(ctx, target)
	case MonitorPing:
		return probePing(ctx, spec.Addr)
	}
	return fmt.Errorf("probe type %q not supported", spec.Type)
}

func tlsConfig(spec ProbeSpec) *tls.Config {
	// As HAProxy's "check-ssl verify none": the member's certificate is
	// not verified, only the handshake must succeed.
	return &tls.Config{ServerName: spec.DomainName, InsecureSkipVerify: true} //nolint:gosec // health check, as HAProxy's verify none
}

// probeBufferSize sizes an HTTP probe connection's read and write buffers
// (net/http's default is 4 KiB each): a probe's request is a few hundred
// bytes and only the response's status matters, and the two default
// buffers were half of what HTTP probes allocate. Longer header lines are
// still read whole, in several reads.
const probeBufferSize = 1024

func probeHTTP(ctx context.Context, spec ProbeSpec, target string) error {
	ok, err := ExpectedCodes(spec.Expected)
	if err != nil {
		return err
	}
	scheme := "http"
	if spec.Type == MonitorHTTPS {
		scheme = "https"
	}
	path := spec.Path
	if path == "" {
		path = "/"
	}
	method := spec.Method
	if method == "" {
		method = http.MethodGet
	}
	req, err := http.NewRequestWithContext(ctx, method, scheme+"://"+target+path, nil)
	if err != nil {
		return err
	}
	if spec.DomainName != "" {
		req.Host = spec.DomainName
	}
	req.Header.Set("User-Agent", "amphora-agent health check")
	var resp *http.Response
	if spec.Type == MonitorHTTPS {
		// The TLS settings (SNI) are the member's own.
		tr := &http.Transport{DisableKeepAlives: true, Proxy: nil, TLSClientConfig: tlsConfig(spec),
			ReadBufferSize: probeBufferSize, WriteBufferSize: probeBufferSize}
		defer tr.CloseIdleConnections()
		client := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err = client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
	} else {
		c, err := plainHTTPDialer.DialContext(ctx, "tcp", target)
		if err != nil {
			return err
		}
		defer c.Close()
		if resp, err = roundTripPlain(ctx, c, req); err != nil {
			return err
		}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if !ok(resp.StatusCode) {
		return fmt.Errorf("http status %d not in %q", resp.StatusCode, spec.Expected)
	}
	return nil
}

var plainHTTPDialer net.Dialer

// maxProbeResponseHeader bounds a response's headers, the 1xx responses
// before it included, as net/http's transport does by default.
const maxProbeResponseHeader = 10 << 20

// roundTripPlain sends req on c, a new connection, and reads the response
// as net/http's transport without keep-alives would (the same request on
// the wire, "Connection: close" and "Accept-Encoding: gzip" included; the
// same parser; 1xx responses other than 101 skipped; headers bounded),
// but on the probe's own goroutine with two 1 KiB buffers. The transport
// ran each connection on three goroutines of its own (dial, read and
// write loops), which with HTTP probes in flight at 1,000 members made
// most of the agent's anonymous memory under load (docs/performance.md,
// "Amphora agent"). The body is the caller's to drain; it reads from c.
func roundTripPlain(ctx context.Context, c net.Conn, req *http.Request) (*http.Response, error) {
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	// Cancelling the context (the member removed) ends a read or write
	// in progress.
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	// As the transport's own additions, in its order (after the caller's
	// headers, sorted).
	if req.Method != http.MethodHead {
		req.Header.Set("Accept-Encoding", "gzip")
	}
	req.Header.Set("Connection", "close")
	bw := bufio.NewWriterSize(c, probeBufferSize)
	if err := req.Write(bw); err != nil {
		return nil, ctxErr(ctx, err)
	}
	if err := bw.Flush(); err != nil {
		return nil, ctxErr(ctx, err)
	}
	lr := &headerLimitReader{r: c, n: maxProbeResponseHeader}
	br := bufio.NewReaderSize(lr, probeBufferSize)
	for {
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			if lr.n <= 0 {
				return nil, fmt.Errorf("http response headers exceeded %d bytes", maxProbeResponseHeader)
			}
			return nil, ctxErr(ctx, err)
		}
		if resp.StatusCode >= 100 && resp.StatusCode <= 199 && resp.StatusCode != http.StatusSwitchingProtocols {
			continue
		}
		lr.n = math.MaxInt64
		return resp, nil
	}
}

// ctxErr prefers the context's error to the one its deadline caused.
func ctxErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("%w: %v", cerr, err)
	}
	return err
}

// headerLimitReader reads at most n bytes from r.
type headerLimitReader struct {
	r io.Reader
	n int64
}

func (l *headerLimitReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, io.ErrUnexpectedEOF
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

// probeUDP sends a datagram and waits for the timeout: an ICMP port
// unreachable (a refused read) means down, silence or a reply means up.
func probeUDP(ctx context.Context, target string) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "udp", target)
	if err != nil {
		return err
	}
	defer c.Close()
	dl, ok := ctx.Deadline()
	if !ok {
		dl = time.Now().Add(time.Second)
	}
	// Wait a little less than the whole budget so the verdict is ours,
	// not the caller's deadline.
	dl = time.Now().Add(time.Until(dl) * 9 / 10)
	_ = c.SetDeadline(dl)
	if _, err := c.Write([]byte("amphora-agent health check\n")); err != nil {
		return err
	}
	var buf [512]byte
	_, err = c.Read(buf[:])
	var ne net.Error
	if err == nil || errors.As(err, &ne) && ne.Timeout() {
		return nil
	}
	return err
}

// probePing sends one ICMP echo request and waits for the reply. It uses
// an unprivileged ICMP datagram socket when ping_group_range allows it,
// and a raw socket otherwise (golang.org/x/net/icmp for both).
func probePing(ctx context.Context, addr netip.Addr) error {
	addr = addr.Unmap()
	dgram, raw, proto := "udp4", "ip4:icmp", 1 // IANA protocol numbers, as icmp.ParseMessage wants
	var request, reply icmp.Type = ipv4.ICMPTypeEcho, ipv4.ICMPTypeEchoReply
	listen := "0.0.0.0"
	if addr.Is6() {
		dgram, raw, proto = "udp6", "ip6:ipv6-icmp", 58
		request, reply = ipv6.ICMPTypeEchoRequest, ipv6.ICMPTypeEchoReply
		listen = "::"
	}
	var dst net.Addr = &net.UDPAddr{IP: addr.AsSlice(), Zone: addr.Zone()}
	conn, err := icmp.ListenPacket(dgram, listen)
	if err != nil {
		dst = &net.IPAddr{IP: addr.AsSlice(), Zone: addr.Zone()}
		conn, err = icmp.ListenPacket(raw, listen)
	}
	if err != nil {
		if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPROTONOSUPPORT) {
			return fmt.Errorf("%w: %v", ErrPingPermission, err)
		}
		return fmt.Errorf("icmp socket: %w", err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	} else {
		_ = conn.SetDeadline(time.Now().Add(time.Second))
	}
	seq := int(uint16(time.Now().UnixNano()))
	msg, err := (&icmp.Message{Type: request, Body: &icmp.Echo{
		ID: os.Getpid() & 0xffff, Seq: seq, Data: []byte("octa"),
	}}).Marshal(nil) // ICMPv6 checksums are the kernel's
	if err != nil {
		return fmt.Errorf("icmp message: %w", err)
	}
	if _, err := conn.WriteTo(msg, dst); err != nil {
		return fmt.Errorf("icmp send: %w", err)
	}
	buf := make([]byte, 1500)
	for {
		n, peer, err := conn.ReadFrom(buf)
		if err != nil {
			return fmt.Errorf("no echo reply: %w", err)
		}
		// A raw socket sees every ICMP packet the host receives, so the
		// sender counts; datagram sockets rewrite the identifier, so the
		// sequence number is what identifies our request.
		if from, ok := peerAddr(peer); !ok || from != addr.WithZone("") {
			continue
		}
		m, err := icmp.ParseMessage(proto, buf[:n])
		if err != nil || m.Type != reply {
			continue
		}
		if echo, ok := m.Body.(*icmp.Echo); ok && echo.Seq == seq {
			return nil
		}
	}
}

// peerAddr is the address, without zone, a packet came from.
func peerAddr(a net.Addr) (netip.Addr, bool) {
	var ip net.IP
	switch a := a.(type) {
	case *net.UDPAddr:
		ip = a.IP
	case *net.IPAddr:
		ip = a.IP
	default:
		return netip.Addr{}, false
	}
	addr, ok := netip.AddrFromSlice(ip)
	return addr.Unmap(), ok
}
