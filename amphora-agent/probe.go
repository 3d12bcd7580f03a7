package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"syscall"
	"time"
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

// plainHTTPProbes carries every HTTP probe: without keep-alives it holds
// no connection between probes, and one transport for all saves building
// one (maps, a TLS cache, a dialer) per probe, most of a probe's garbage.
var plainHTTPProbes = &http.Transport{DisableKeepAlives: true, Proxy: nil}

func probeHTTP(ctx context.Context, spec ProbeSpec, target string) error {
	ok, err := ExpectedCodes(spec.Expected)
	if err != nil {
		return err
	}
	scheme, tr := "http", plainHTTPProbes
	if spec.Type == MonitorHTTPS {
		// The TLS settings (SNI) are the member's own.
		scheme = "https"
		tr = &http.Transport{DisableKeepAlives: true, Proxy: nil, TLSClientConfig: tlsConfig(spec)}
		defer tr.CloseIdleConnections()
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
	client := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if !ok(resp.StatusCode) {
		return fmt.Errorf("http status %d not in %q", resp.StatusCode, spec.Expected)
	}
	return nil
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
// and a raw socket otherwise.
func probePing(ctx context.Context, addr netip.Addr) error {
	fam, proto, reqType, repType := syscall.AF_INET, syscall.IPPROTO_ICMP, byte(8), byte(0)
	if addr.Is6() && !addr.Is4In6() {
		fam, proto, reqType, repType = syscall.AF_INET6, syscall.IPPROTO_ICMPV6, 128, 129
	}
	addr = addr.Unmap()
	raw := false
	fd, err := syscall.Socket(fam, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, proto)
	if err != nil {
		fd, err = syscall.Socket(fam, syscall.SOCK_RAW|syscall.SOCK_CLOEXEC, proto)
		raw = true
	}
	if err != nil {
		if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPROTONOSUPPORT) {
			return fmt.Errorf("%w: %v", ErrPingPermission, err)
		}
		return fmt.Errorf("icmp socket: %w", err)
	}
	var sa syscall.Sockaddr
	if fam == syscall.AF_INET {
		sa = &syscall.SockaddrInet4{Addr: addr.As4()}
	} else {
		sa6 := &syscall.SockaddrInet6{Addr: addr.As16()}
		sa = sa6
	}
	if err := syscall.Connect(fd, sa); err != nil {
		syscall.Close(fd)
		return fmt.Errorf("icmp connect: %w", err)
	}
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return err
	}
	f := os.NewFile(uintptr(fd), "icmp")
	defer f.Close()
	conn, err := net.FileConn(f)
	if err != nil {
		return fmt.Errorf("icmp socket: %w", err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	} else {
		_ = conn.SetDeadline(time.Now().Add(time.Second))
	}
	id := uint16(os.Getpid())
	seq := uint16(time.Now().UnixNano())
	msg := []byte{reqType, 0, 0, 0, byte(id >> 8), byte(id), byte(seq >> 8), byte(seq), 'o', 'c', 't', 'a'}
	if fam == syscall.AF_INET {
		cs := icmpChecksum(msg)
		msg[2], msg[3] = byte(cs>>8), byte(cs)
	}
	if _, err := conn.Write(msg); err != nil {
		return fmt.Errorf("icmp send: %w", err)
	}
	buf := make([]byte, 1500)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return fmt.Errorf("no echo reply: %w", err)
		}
		b := buf[:n]
		if raw && fam == syscall.AF_INET && n > 20 {
			b = b[int(b[0]&0x0f)*4:] // strip the IPv4 header
		}
		// Datagram sockets rewrite the identifier; match on the sequence.
		if len(b) >= 8 && b[0] == repType && b[6] == byte(seq>>8) && b[7] == byte(seq) {
			return nil
		}
	}
}

func icmpChecksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}
