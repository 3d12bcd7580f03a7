package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func addrPort(t *testing.T, s string) (netip.Addr, int) {
	t.Helper()
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		t.Fatal(err)
	}
	return ap.Addr(), int(ap.Port())
}

// closedPort returns a 127.0.0.1 port nothing listens on.
func closedPort(t *testing.T, network string) int {
	t.Helper()
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		_, p := addrPort(t, c.LocalAddr().String())
		c.Close()
		return p
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, p := addrPort(t, l.Addr().String())
	l.Close()
	return p
}

func TestProbeTCP(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	a, p := addrPort(t, l.Addr().String())
	ctx := context.Background()
	if err := Probe(ctx, ProbeSpec{Type: MonitorTCP, Addr: a, Port: p, Timeout: time.Second}); err != nil {
		t.Errorf("open port: %v", err)
	}
	if err := Probe(ctx, ProbeSpec{Type: MonitorTCP, Addr: a, Port: closedPort(t, "tcp"), Timeout: time.Second}); err == nil {
		t.Error("closed port passed")
	}
}

// recorder remembers the last request a test server saw.
type recorder struct {
	mu     sync.Mutex
	method string
	path   string
	host   string
	sni    string
}

func (r *recorder) handler(code int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.method, r.path, r.host = req.Method, req.URL.Path, req.Host
		if req.TLS != nil {
			r.sni = req.TLS.ServerName
		}
		r.mu.Unlock()
		w.WriteHeader(code)
	})
}

func TestProbeHTTPAndHTTPS(t *testing.T) {
	for _, tlsOn := range []bool{false, true} {
		for _, c := range []struct {
			name     string
			code     int
			expected string
			method   string
			path     string
			domain   string
			pass     bool
		}{
			{"default 200", 200, "", "", "", "", true},
			{"500 fails", 500, "", "", "", "", false},
			{"list", 202, "200,202", "HEAD", "/healthz", "", true},
			{"range", 204, "200-204", "POST", "/x", "app.example.org", true},
			{"outside range", 301, "200-299", "GET", "/", "", false},
		} {
			rec := &recorder{}
			var srv *httptest.Server
			typ := MonitorHTTP
			if tlsOn {
				srv = httptest.NewTLSServer(rec.handler(c.code))
				typ = MonitorHTTPS
			} else {
				srv = httptest.NewServer(rec.handler(c.code))
			}
			a, p := addrPort(t, srv.Listener.Addr().String())
			err := Probe(context.Background(), ProbeSpec{Type: typ, Addr: a, Port: p, Timeout: 2 * time.Second,
				Method: c.method, Path: c.path, Expected: c.expected, DomainName: c.domain})
			srv.Close()
			if (err == nil) != c.pass {
				t.Errorf("%s %s: err %v, want pass=%v", typ, c.name, err, c.pass)
				continue
			}
			wantMethod, wantPath := c.method, c.path
			if wantMethod == "" {
				wantMethod = "GET"
			}
			if wantPath == "" {
				wantPath = "/"
			}
			rec.mu.Lock()
			if rec.method != wantMethod || rec.path != wantPath {
				t.Errorf("%s %s: server saw %s %s", typ, c.name, rec.method, rec.path)
			}
			if c.domain != "" && rec.host != c.domain {
				t.Errorf("%s %s: Host %q, want %q", typ, c.name, rec.host, c.domain)
			}
			if tlsOn && rec.sni != c.domain {
				t.Errorf("%s %s: SNI %q, want %q", typ, c.name, rec.sni, c.domain)
			}
			rec.mu.Unlock()
		}
	}
	a, _ := addrPort(t, "127.0.0.1:1")
	if err := Probe(context.Background(), ProbeSpec{Type: MonitorHTTP, Addr: a, Port: closedPort(t, "tcp"), Timeout: time.Second}); err == nil {
		t.Error("closed port passed")
	}
}

func TestProbeHTTPTimeout(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-block }))
	defer srv.Close()
	defer close(block)
	a, p := addrPort(t, srv.Listener.Addr().String())
	if err := Probe(context.Background(), ProbeSpec{Type: MonitorHTTP, Addr: a, Port: p, Timeout: 100 * time.Millisecond}); err == nil {
		t.Error("a hanging server passed")
	}
}

func TestProbeTLSHello(t *testing.T) {
	rec := &recorder{}
	srv := httptest.NewTLSServer(rec.handler(200))
	defer srv.Close()
	a, p := addrPort(t, srv.Listener.Addr().String())
	if err := Probe(context.Background(), ProbeSpec{Type: MonitorTLSHello, Addr: a, Port: p, Timeout: 2 * time.Second, DomainName: "x.example"}); err != nil {
		t.Errorf("TLS server: %v", err)
	}
	plain := httptest.NewServer(rec.handler(200))
	defer plain.Close()
	a, p = addrPort(t, plain.Listener.Addr().String())
	if err := Probe(context.Background(), ProbeSpec{Type: MonitorTLSHello, Addr: a, Port: p, Timeout: 2 * time.Second}); err == nil {
		t.Error("a plain HTTP server passed a TLS hello")
	}
}

func TestProbeUDPConnect(t *testing.T) {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	a, p := addrPort(t, c.LocalAddr().String())
	// A silent UDP server passes (no ICMP port unreachable).
	if err := Probe(context.Background(), ProbeSpec{Type: MonitorUDPConnect, Addr: a, Port: p, Timeout: 200 * time.Millisecond}); err != nil {
		t.Errorf("open UDP port: %v", err)
	}
	// A closed port answers with ICMP port unreachable.
	err = Probe(context.Background(), ProbeSpec{Type: MonitorUDPConnect, Addr: a, Port: closedPort(t, "udp"), Timeout: time.Second})
	if err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("closed UDP port: %v, want connection refused", err)
	}
}

func TestProbePing(t *testing.T) {
	// PING needs an ICMP socket; without permission it must say so
	// clearly. Either outcome is acceptable here, nothing else is.
	for _, target := range []string{"127.0.0.1", "::ffff:127.0.0.1", "::1"} {
		err := Probe(context.Background(), ProbeSpec{Type: MonitorPing, Addr: netip.MustParseAddr(target), Timeout: time.Second})
		if err != nil && !errors.Is(err, ErrPingPermission) {
			if target == "::1" && strings.Contains(err.Error(), "address not available") {
				continue // no IPv6 loopback here
			}
			t.Errorf("ping %s: %v", target, err)
		}
		if err != nil {
			t.Logf("ping %s unavailable here: %v", target, err)
		}
	}
}

// TestProbePingWithoutPermission runs a PING probe as an unprivileged
// user (the test binary re-executes itself as nobody when it runs as
// root): it must either work (ping_group_range covers nobody) or fail with
// ErrPingPermission, never with an obscure error.
func TestProbePingWithoutPermission(t *testing.T) {
	if os.Getenv("AGENT_PING_CHILD") == "1" {
		err := Probe(context.Background(), ProbeSpec{Type: MonitorPing, Addr: netip.MustParseAddr("127.0.0.1"), Timeout: time.Second})
		switch {
		case err == nil:
			fmt.Println("PING-RESULT ok")
		case errors.Is(err, ErrPingPermission):
			fmt.Println("PING-RESULT permission:", err)
		default:
			fmt.Println("PING-RESULT other:", err)
		}
		return
	}
	if os.Geteuid() != 0 {
		err := Probe(context.Background(), ProbeSpec{Type: MonitorPing, Addr: netip.MustParseAddr("127.0.0.1"), Timeout: time.Second})
		if err != nil && !errors.Is(err, ErrPingPermission) {
			t.Errorf("unprivileged ping: %v", err)
		}
		return
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "agent-ping")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "agent.test")
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run", "^TestProbePingWithoutPermission$", "-test.count=1")
	cmd.Env = append(os.Environ(), "AGENT_PING_CHILD=1")
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "PING-RESULT") {
			t.Log(line)
		}
	}
	switch {
	case strings.Contains(string(out), "PING-RESULT ok"):
		t.Log("nobody may ping here (ping_group_range)")
	case strings.Contains(string(out), "PING-RESULT permission:"):
		if !strings.Contains(string(out), "CAP_NET_RAW") {
			t.Errorf("permission error does not say what is missing: %s", out)
		}
	default:
		t.Errorf("unprivileged ping: %s", out)
	}
}

func TestProbeUnknownType(t *testing.T) {
	if err := Probe(context.Background(), ProbeSpec{Type: "SCTP"}); err == nil {
		t.Error("unknown type passed")
	}
}
