//go:build faults

package faults

import (
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/octavia-vpp/health/test/tcpproxy"
)

// latencyProxy forwards TCP connections to a target and delivers every
// chunk of data oneWay after it was read, in each direction: a link with
// 2*oneWay more round-trip time but the same bandwidth.
type latencyProxy struct {
	p      *tcpproxy.Proxy
	oneWay time.Duration
}

func newLatencyProxy(t *testing.T, target string, oneWay time.Duration) *latencyProxy {
	t.Helper()
	lp := &latencyProxy{oneWay: oneWay}
	lp.p = tcpproxy.Start(t, target, tcpproxy.Protocol{
		FromClient: func(_ *tcpproxy.Proxy, c *tcpproxy.Conn) { lp.pipe(c.Server, c.Client) },
		FromServer: func(_ *tcpproxy.Proxy, c *tcpproxy.Conn) { lp.pipe(c.Client, c.Server) },
	})
	return lp
}

// proxiedURL is url with its host:port replaced by the proxy's.
func (p *latencyProxy) proxiedURL(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = p.p.Addr()
	return u.String()
}

type chunk struct {
	data []byte
	at   time.Time
}

// pipe copies src to dst, each chunk delayed by oneWay.
func (p *latencyProxy) pipe(dst, src net.Conn) {
	chunks := make(chan chunk, 4096)
	go func() {
		defer close(chunks)
		buf := make([]byte, 64<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				chunks <- chunk{append([]byte(nil), buf[:n]...), time.Now()}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range chunks {
		time.Sleep(time.Until(c.at.Add(p.oneWay)))
		if _, err := dst.Write(c.data); err != nil {
			break
		}
	}
	// Pass the end of the stream on; drain what src still sends.
	if tc, ok := dst.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
	for range chunks {
	}
}
