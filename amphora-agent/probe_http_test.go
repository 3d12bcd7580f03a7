package agent

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// rawServer accepts connections on loopback; for each it records the
// request's bytes up to the blank line and writes reply.
func rawServer(t *testing.T, reply string) (net.Listener, <-chan string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	got := make(chan string, 8)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			var b strings.Builder
			r := bufio.NewReader(c)
			for {
				line, err := r.ReadString('\n')
				b.WriteString(line)
				if err != nil || line == "\r\n" {
					break
				}
			}
			if strings.HasPrefix(b.String(), "POST") {
				_, _ = io.CopyN(io.Discard, r, 0)
			}
			got <- b.String()
			_, _ = io.WriteString(c, reply)
			c.Close()
		}
	}()
	return l, got
}

// The plain HTTP probe puts on the wire what net/http's transport without
// keep-alives did, byte for byte.
func TestProbeHTTPRequestAsTransport(t *testing.T) {
	const ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	for _, spec := range []ProbeSpec{
		{},
		{Method: "HEAD", Path: "/healthz"},
		{Method: "POST", Path: "/x?y=1", DomainName: "app.example.org"},
		{Method: "OPTIONS", Path: "/a%20b"},
	} {
		l, got := rawServer(t, ok)
		a, p := addrPort(t, l.Addr().String())
		spec.Type, spec.Addr, spec.Port, spec.Timeout = MonitorHTTP, a, p, 2*time.Second
		if err := Probe(context.Background(), spec); err != nil {
			t.Fatalf("%+v: %v", spec, err)
		}
		ours := <-got

		method, path := spec.Method, spec.Path
		if method == "" {
			method = "GET"
		}
		if path == "" {
			path = "/"
		}
		req, err := http.NewRequest(method, "http://"+l.Addr().String()+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if spec.DomainName != "" {
			req.Host = spec.DomainName
		}
		req.Header.Set("User-Agent", "amphora-agent health check")
		tr := &http.Transport{DisableKeepAlives: true, Proxy: nil}
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if theirs := <-got; ours != theirs {
			t.Errorf("%s %s: probe sent\n%q\nnet/http sends\n%q", method, path, ours, theirs)
		}
	}
}

func TestProbeHTTPResponses(t *testing.T) {
	for _, c := range []struct {
		name  string
		reply string
		pass  bool
	}{
		{"200", "HTTP/1.1 200 OK\r\n\r\n", true},
		{"HTTP/1.0", "HTTP/1.0 200 OK\r\n\r\nbody", true},
		{"1xx skipped", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\n\r\n", true},
		{"1xx then 503", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503 No\r\n\r\n", false},
		{"101 is final", "HTTP/1.1 101 Switching Protocols\r\n\r\n", false},
		{"500", "HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n", false},
		{"garbage", "SSH-2.0-OpenSSH_9.2\r\n", false},
		{"bad header", "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", false},
		{"nothing", "", false},
		{"chunked body cut", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", true},
	} {
		l, got := rawServer(t, c.reply)
		a, p := addrPort(t, l.Addr().String())
		err := Probe(context.Background(), ProbeSpec{Type: MonitorHTTP, Addr: a, Port: p, Timeout: 2 * time.Second})
		<-got
		if (err == nil) != c.pass {
			t.Errorf("%s: err %v, want pass=%v", c.name, err, c.pass)
		}
		// net/http's transport, as the probe used before, agrees.
		tr := &http.Transport{DisableKeepAlives: true, Proxy: nil}
		resp, terr := (&http.Client{Transport: tr, Timeout: 2 * time.Second}).Get("http://" + l.Addr().String() + "/")
		<-got
		if terr == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			if resp.StatusCode != 200 {
				terr = io.EOF
			}
		}
		if (terr == nil) != c.pass {
			t.Errorf("%s: net/http err %v, want pass=%v", c.name, terr, c.pass)
		}
	}
}

// Headers without end fail at the bound rather than filling memory.
func TestProbeHTTPHeaderBound(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\n")
		line := "X-Fill: " + strings.Repeat("a", 1000) + "\r\n"
		for {
			if _, err := io.WriteString(c, line); err != nil {
				return
			}
		}
	}()
	a, p := addrPort(t, l.Addr().String())
	err = Probe(context.Background(), ProbeSpec{Type: MonitorHTTP, Addr: a, Port: p, Timeout: 10 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "exceeded") {
		t.Fatalf("endless headers: err %v", err)
	}
}

// Cancelling the probe's context (the member removed) ends it at once.
func TestProbeHTTPCancelled(t *testing.T) {
	block, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer block.Close()
	go func() {
		c, err := block.Accept()
		if err == nil {
			defer c.Close()
			_, _ = io.Copy(io.Discard, c)
		}
	}()
	a, p := addrPort(t, block.Addr().String())
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	done := make(chan error, 1)
	go func() { done <- Probe(ctx, ProbeSpec{Type: MonitorHTTP, Addr: a, Port: p, Timeout: time.Minute}) }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a cancelled probe passed")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("a cancelled probe still runs")
	}
}
