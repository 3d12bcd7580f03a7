package pgtest

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
)

// Proxy forwards PostgreSQL connections and, when armed, cuts one at a
// COMMIT: either before forwarding it (the server never sees it), or after
// the server has answered it, with the answer withheld (the server
// committed; the client cannot know). It follows the wire protocol's
// message framing only, so the URL must not use TLS (pgtest's URLs say
// sslmode=disable).
type Proxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	cut   *commitCut
	conns []net.Conn
	wg    sync.WaitGroup
}

// CommitCut says where an armed Proxy cuts.
type CommitCut struct {
	// Skip lets this many matching COMMITs through first.
	Skip int
	// AfterReply forwards the COMMIT and waits for the server's answer,
	// which is dropped; otherwise the COMMIT is never forwarded.
	AfterReply bool
	// Mentioning, if set, matches only the COMMIT of a transaction in
	// which the client sent a message containing it (a table name, say).
	Mentioning string
}

type commitCut struct {
	CommitCut
	fired chan struct{}
}

// NewProxy starts a proxy to the server of rawURL and returns it with the
// same URL pointing at the proxy. It stops when the test ends.
func NewProxy(t testing.TB, rawURL string) (*Proxy, string) {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{ln: ln, target: u.Host}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	u.Host = ln.Addr().String()
	return p, u.String()
}

// CutAtCommit arms one cut, replacing any armed one. The channel is
// closed once it has happened (with AfterReply, once the server's answer
// was dropped).
func (p *Proxy) CutAtCommit(c CommitCut) <-chan struct{} {
	r := &commitCut{CommitCut: c, fired: make(chan struct{})}
	p.mu.Lock()
	p.cut = r
	p.mu.Unlock()
	return r.fired
}

var commitQuery = []byte("commit\x00")

// fires reports whether a client COMMIT fires the armed cut, and the cut
// if so; the cut is then disarmed.
func (p *Proxy) fires(mentioned string) *commitCut {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.cut
	if r == nil || (r.Mentioning != "" && mentioned != r.Mentioning) {
		return nil
	}
	if r.Skip > 0 {
		r.Skip--
		return nil
	}
	p.cut = nil
	return r
}

func (p *Proxy) mentioning() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut == nil {
		return ""
	}
	return p.cut.Mentioning
}

func (p *Proxy) accept() {
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
		c := &proxiedConn{client: client, server: server, cutAtReady: make(chan *commitCut, 1)}
		p.wg.Add(2)
		go func() { defer p.wg.Done(); p.fromClient(c) }()
		go func() { defer p.wg.Done(); p.fromServer(c) }()
	}
}

type proxiedConn struct {
	client, server net.Conn
	// cutAtReady carries a cut whose COMMIT was forwarded: the server's
	// messages up to its next ReadyForQuery are dropped, then both ends
	// are closed.
	cutAtReady chan *commitCut
	closeOnce  sync.Once
}

func (c *proxiedConn) close() {
	c.closeOnce.Do(func() {
		c.client.Close()
		c.server.Close()
	})
}

func (p *Proxy) fromClient(c *proxiedConn) {
	defer c.close()
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
	var mentioned string // what this transaction mentioned, of interest
	// Prepared statements by name: a client that caches them sends
	// their text once per connection, then only Bind with the name.
	prepared := map[string][]byte{}
	for {
		typ, payload, raw, err := readMessage(c.client)
		if err != nil {
			return
		}
		text := payload
		switch typ {
		case 'P': // Parse: name, query, ...
			name, rest, _ := bytes.Cut(payload, []byte{0})
			query, _, _ := bytes.Cut(rest, []byte{0})
			prepared[string(name)] = query
			text = query
		case 'B': // Bind: portal, statement, ...
			_, rest, _ := bytes.Cut(payload, []byte{0})
			stmt, _, _ := bytes.Cut(rest, []byte{0})
			text = prepared[string(stmt)]
		}
		if typ == 'Q' && bytes.HasPrefix(bytes.ToLower(payload), []byte("begin")) {
			mentioned = "" // a statement outside any transaction does not count
		}
		if m := p.mentioning(); m != "" && bytes.Contains(text, []byte(m)) {
			mentioned = m
		}
		if typ == 'Q' && bytes.Equal(bytes.ToLower(payload), commitQuery) {
			r := p.fires(mentioned)
			mentioned = ""
			if r != nil {
				if !r.AfterReply {
					close(r.fired)
					return
				}
				c.cutAtReady <- r
			}
		}
		if _, err := c.server.Write(raw); err != nil {
			return
		}
	}
}

func (p *Proxy) fromServer(c *proxiedConn) {
	defer c.close()
	var pending *commitCut
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
			// The client waits for the answer to COMMIT before sending
			// anything else, so what follows it answers COMMIT.
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

func (p *Proxy) close() {
	p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}
