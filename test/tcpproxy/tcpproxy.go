// Package tcpproxy is the plumbing of the tests' database proxies (the
// COMMIT-cutting test/pgtest.Proxy and test/mysqltest.Proxy, and
// test/faults' latency proxy): a loopback listener
// that forwards every connection to a server, the bookkeeping of an armed
// cut, and the closing of everything when the test ends. Recognising a
// COMMIT in a wire protocol is the caller's part (Protocol).
package tcpproxy

import (
	"net"
	"sync"
	"testing"
)

// Proxy forwards the TCP connections it accepts to a target, each through
// a Protocol.
type Proxy struct {
	ln       net.Listener
	target   string
	protocol Protocol

	mu    sync.Mutex
	cut   *Cut
	conns []net.Conn
	wg    sync.WaitGroup
}

// Protocol forwards one connection's two directions, each in its own
// goroutine. Closing the connection is up to it (Conn.Close); the proxy
// closes every connection when the test ends.
type Protocol struct {
	FromClient, FromServer func(p *Proxy, c *Conn)
}

// CommitCut says where an armed Proxy cuts.
type CommitCut struct {
	// Skip lets this many matching COMMITs through first.
	Skip int
	// AfterReply forwards the COMMIT and drops the server's answer;
	// otherwise the COMMIT is never forwarded.
	AfterReply bool
	// Mentioning, if set, matches only the COMMIT of a transaction in
	// which the client sent a message containing it (a table name, say).
	Mentioning string
}

// Cut is an armed cut that fired.
type Cut struct {
	CommitCut
	fired chan struct{}
}

// Done tells CutAtCommit's caller that the cut has happened.
func (r *Cut) Done() { close(r.fired) }

// Conn is one proxied connection.
type Conn struct {
	Client, Server net.Conn
	// Forwarded carries, from FromClient to FromServer, a cut whose
	// COMMIT was forwarded: the server's answer is to be dropped.
	Forwarded chan *Cut
	closeOnce sync.Once
}

// Close closes both ends.
func (c *Conn) Close() {
	c.closeOnce.Do(func() {
		c.Client.Close()
		c.Server.Close()
	})
}

// Start listens on 127.0.0.1 and forwards to target (host:port) through
// protocol until the test ends.
func Start(t testing.TB, target string, protocol Protocol) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{ln: ln, target: target, protocol: protocol}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// CutAtCommit arms one cut, replacing any armed one. The channel is
// closed once it has happened (with AfterReply, once the server's answer
// was dropped).
func (p *Proxy) CutAtCommit(c CommitCut) <-chan struct{} {
	r := &Cut{CommitCut: c, fired: make(chan struct{})}
	p.mu.Lock()
	p.cut = r
	p.mu.Unlock()
	return r.fired
}

// Fires reports whether a client's COMMIT, in a transaction that
// mentioned what is given, fires the armed cut, and the cut if so; the
// cut is then disarmed.
func (p *Proxy) Fires(mentioned string) *Cut {
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

// Mentioning is what the armed cut waits for a transaction to mention;
// empty if nothing.
func (p *Proxy) Mentioning() string {
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
		c := &Conn{Client: client, Server: server, Forwarded: make(chan *Cut, 1)}
		p.wg.Add(2)
		go func() { defer p.wg.Done(); p.protocol.FromClient(p, c) }()
		go func() { defer p.wg.Done(); p.protocol.FromServer(p, c) }()
	}
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
