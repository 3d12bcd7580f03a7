package statsdriver

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
)

// pgProxy forwards PostgreSQL connections and, when armed, cuts one at a
// chosen client message: either before forwarding it (the server never
// sees it) or after the server has fully answered it, with the answer
// withheld (the server did the work; the client cannot know). It reads the
// wire protocol's message framing only; the connection must not use TLS.
type pgProxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	rule  *cutRule
	conns []net.Conn
	wg    sync.WaitGroup
}

// cutRule picks the client message at which to cut: the skip+1-th message
// of type typ whose payload, lower-cased, equals text followed by NUL (a
// simple-protocol query such as pgx's "commit").
type cutRule struct {
	typ        byte
	text       string
	skip       int
	afterReply bool
	fired      chan struct{}
}

func newPGProxy(t *testing.T, rawURL string) (*pgProxy, string) {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &pgProxy{ln: ln, target: u.Host}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	u.Host = ln.Addr().String()
	return p, u.String()
}

// cutAtCommit arms a cut at the skip+1-th COMMIT sent through the proxy
// from now on. The returned channel is closed when it fires.
func (p *pgProxy) cutAtCommit(skip int, afterReply bool) <-chan struct{} {
	r := &cutRule{typ: 'Q', text: "commit", skip: skip, afterReply: afterReply, fired: make(chan struct{})}
	p.mu.Lock()
	p.rule = r
	p.mu.Unlock()
	return r.fired
}

// matches reports whether a client message fires the armed rule, and the
// rule if so; the rule is then disarmed.
func (p *pgProxy) matches(typ byte, payload []byte) *cutRule {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.rule
	if r == nil || typ != r.typ || !bytes.Equal(bytes.ToLower(payload), append([]byte(r.text), 0)) {
		return nil
	}
	if r.skip > 0 {
		r.skip--
		return nil
	}
	p.rule = nil
	return r
}

func (p *pgProxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			client.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, client, server)
		p.mu.Unlock()
		c := &proxiedConn{client: client, server: server, cutAtReady: make(chan *cutRule, 1)}
		p.wg.Add(2)
		go func() { defer p.wg.Done(); p.fromClient(c) }()
		go func() { defer p.wg.Done(); p.fromServer(c) }()
	}
}

type proxiedConn struct {
	client, server net.Conn
	// cutAtReady carries a rule whose message was forwarded: the server's
	// messages up to its next ReadyForQuery are dropped, then both ends
	// are closed.
	cutAtReady chan *cutRule
	closeOnce  sync.Once
}

func (c *proxiedConn) cut() {
	c.closeOnce.Do(func() {
		c.client.Close()
		c.server.Close()
	})
}

func (p *pgProxy) fromClient(c *proxiedConn) {
	defer c.cut()
	// The startup message has no type byte.
	var n [4]byte
	if _, err := io.ReadFull(c.client, n[:]); err != nil {
		return
	}
	startup := make([]byte, binary.BigEndian.Uint32(n[:])-4)
	if _, err := io.ReadFull(c.client, startup); err != nil {
		return
	}
	if _, err := c.server.Write(append(n[:], startup...)); err != nil {
		return
	}
	for {
		typ, payload, raw, err := readMessage(c.client)
		if err != nil {
			return
		}
		if r := p.matches(typ, payload); r != nil {
			if !r.afterReply {
				close(r.fired)
				return
			}
			c.cutAtReady <- r
		}
		if _, err := c.server.Write(raw); err != nil {
			return
		}
	}
}

func (p *pgProxy) fromServer(c *proxiedConn) {
	defer c.cut()
	var pending *cutRule
	for {
		typ, _, raw, err := readMessage(c.server)
		if err != nil {
			return
		}
		if pending == nil {
			select {
			case pending = <-c.cutAtReady:
			default:
			}
		}
		if pending != nil {
			// Everything after the armed message was forwarded answers
			// it (the client waits for that answer before sending more).
			if typ == 'Z' {
				close(pending.fired)
				return
			}
			continue
		}
		if _, err := c.client.Write(raw); err != nil {
			return
		}
	}
}

// readMessage reads one typed protocol message.
func readMessage(r io.Reader) (typ byte, payload, raw []byte, err error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, nil, err
	}
	raw = make([]byte, 1+binary.BigEndian.Uint32(hdr[1:]))
	copy(raw, hdr[:])
	if _, err := io.ReadFull(r, raw[5:]); err != nil {
		return 0, nil, nil, err
	}
	return hdr[0], raw[5:], raw, nil
}

func (p *pgProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}
