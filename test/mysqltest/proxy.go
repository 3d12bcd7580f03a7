package mysqltest

import (
	"bytes"
	"io"
	"net"
	"sync"
	"testing"

	"github.com/go-sql-driver/mysql"
)

// Proxy forwards MySQL connections and, when armed, cuts one at a COMMIT:
// either before forwarding it (the server never sees it), or after the
// server has answered it, with the answer withheld (the server committed;
// the client cannot know). It follows the protocol's packet framing only,
// so the connection must not use TLS or compression (mysqltest's DSNs use
// neither). It is test/pgtest.Proxy for MariaDB.
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
	// AfterReply forwards the COMMIT and drops the server's answer;
	// otherwise the COMMIT is never forwarded.
	AfterReply bool
	// Mentioning, if set, matches only the COMMIT of a transaction in
	// which the client sent a query containing it (a table name, say).
	Mentioning string
}

type commitCut struct {
	CommitCut
	fired chan struct{}
}

// NewProxy starts a proxy to the server of dsn (TCP) and returns it with
// the same DSN pointing at the proxy. It stops when the test ends.
func NewProxy(t testing.TB, dsn string) (*Proxy, string) {
	t.Helper()
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{ln: ln, target: cfg.Addr}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	cfg.Addr = ln.Addr().String()
	return p, cfg.FormatDSN()
}

// CutAtCommit arms one cut, replacing any armed one. The channel is
// closed once it has happened.
func (p *Proxy) CutAtCommit(c CommitCut) <-chan struct{} {
	r := &commitCut{CommitCut: c, fired: make(chan struct{})}
	p.mu.Lock()
	p.cut = r
	p.mu.Unlock()
	return r.fired
}

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
		c := &proxiedConn{client: client, server: server, dropReply: make(chan *commitCut, 1)}
		p.wg.Add(2)
		go func() { defer p.wg.Done(); p.fromClient(c) }()
		go func() { defer p.wg.Done(); p.fromServer(c) }()
	}
}

type proxiedConn struct {
	client, server net.Conn
	// dropReply carries a cut whose COMMIT was forwarded: the server's
	// next packet, COMMIT's answer, is dropped and both ends closed.
	dropReply chan *commitCut
	closeOnce sync.Once
}

func (c *proxiedConn) close() {
	c.closeOnce.Do(func() {
		c.client.Close()
		c.server.Close()
	})
}

const comQuery = 0x03

func (p *Proxy) fromClient(c *proxiedConn) {
	defer c.close()
	var mentioned string // what this transaction mentioned, of interest
	for {
		payload, raw, err := readPacket(c.client)
		if err != nil {
			return
		}
		if len(payload) > 0 && payload[0] == comQuery {
			text := bytes.ToLower(bytes.TrimSpace(payload[1:]))
			if bytes.HasPrefix(text, []byte("start transaction")) || bytes.HasPrefix(text, []byte("begin")) {
				mentioned = ""
			}
			if m := p.mentioning(); m != "" && bytes.Contains(text, []byte(m)) {
				mentioned = m
			}
			if bytes.Equal(text, []byte("commit")) {
				r := p.fires(mentioned)
				mentioned = ""
				if r != nil {
					if !r.AfterReply {
						close(r.fired)
						return
					}
					c.dropReply <- r
				}
			}
		}
		if _, err := c.server.Write(raw); err != nil {
			return
		}
	}
}

func (p *Proxy) fromServer(c *proxiedConn) {
	defer c.close()
	for {
		_, raw, err := readPacket(c.server)
		if err != nil {
			return
		}
		select {
		case r := <-c.dropReply:
			// The client waits for COMMIT's answer before sending
			// anything else, so this packet is that answer.
			close(r.fired)
			return
		default:
		}
		if _, err := c.client.Write(raw); err != nil {
			return
		}
	}
}

// readPacket reads one protocol packet: a 3-byte little-endian length and
// a sequence number, then the payload.
func readPacket(r io.Reader) (payload, raw []byte, err error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, nil, err
	}
	n := int(hdr[0]) | int(hdr[1])<<8 | int(hdr[2])<<16
	raw = make([]byte, 4+n)
	copy(raw, hdr[:])
	if _, err := io.ReadFull(r, raw[4:]); err != nil {
		return nil, nil, err
	}
	return raw[4:], raw, nil
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
