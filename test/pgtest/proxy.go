package pgtest

import (
	"bytes"
	"encoding/binary"
	"io"
	"net/url"
	"testing"

	"github.com/octavia-vpp/health/test/tcpproxy"
)

// Proxy forwards PostgreSQL connections and, when armed, cuts one at a
// COMMIT: either before forwarding it (the server never sees it), or after
// the server has answered it, with the answer withheld (the server
// committed; the client cannot know). It follows the wire protocol's
// message framing only, so the URL must not use TLS (pgtest's URLs say
// sslmode=disable).
type Proxy struct{ p *tcpproxy.Proxy }

// CommitCut says where an armed Proxy cuts.
type CommitCut = tcpproxy.CommitCut

// NewProxy starts a proxy to the server of rawURL and returns it with the
// same URL pointing at the proxy. It stops when the test ends.
func NewProxy(t testing.TB, rawURL string) (*Proxy, string) {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	p := tcpproxy.Start(t, u.Host, tcpproxy.Protocol{FromClient: fromClient, FromServer: fromServer})
	u.Host = p.Addr()
	return &Proxy{p}, u.String()
}

// CutAtCommit arms one cut, replacing any armed one. The channel is
// closed once it has happened (with AfterReply, once the server's answer
// was dropped).
func (p *Proxy) CutAtCommit(c CommitCut) <-chan struct{} { return p.p.CutAtCommit(c) }

var commitQuery = []byte("commit\x00")

// fromClient forwards the client's messages and fires the armed cut at a
// COMMIT sent as a simple query.
func fromClient(p *tcpproxy.Proxy, c *tcpproxy.Conn) {
	defer c.Close()
	// The startup message has no type byte.
	var n [4]byte
	if _, err := io.ReadFull(c.Client, n[:]); err != nil {
		return
	}
	startup := make([]byte, binary.BigEndian.Uint32(n[:])-4)
	if _, err := io.ReadFull(c.Client, startup); err != nil {
		return
	}
	if _, err := c.Server.Write(append(n[:], startup...)); err != nil {
		return
	}
	var mentioned string // what this transaction mentioned, of interest
	// Prepared statements by name: a client that caches them sends
	// their text once per connection, then only Bind with the name.
	prepared := map[string][]byte{}
	for {
		typ, payload, raw, err := readMessage(c.Client)
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
		if m := p.Mentioning(); m != "" && bytes.Contains(text, []byte(m)) {
			mentioned = m
		}
		if typ == 'Q' && bytes.Equal(bytes.ToLower(payload), commitQuery) {
			r := p.Fires(mentioned)
			mentioned = ""
			if r != nil {
				if !r.AfterReply {
					r.Done()
					return
				}
				c.Forwarded <- r
			}
		}
		if _, err := c.Server.Write(raw); err != nil {
			return
		}
	}
}

// fromServer forwards the server's messages; once a cut's COMMIT was
// forwarded, those up to the next ReadyForQuery are dropped and both ends
// closed.
func fromServer(_ *tcpproxy.Proxy, c *tcpproxy.Conn) {
	defer c.Close()
	var pending *tcpproxy.Cut
	for {
		typ, _, raw, err := readMessage(c.Server)
		if err != nil {
			return
		}
		if pending == nil {
			select {
			case pending = <-c.Forwarded:
			default:
			}
		}
		if pending != nil {
			// The client waits for the answer to COMMIT before sending
			// anything else, so what follows it answers COMMIT.
			if typ == 'Z' {
				pending.Done()
				return
			}
			continue
		}
		if _, err := c.Client.Write(raw); err != nil {
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
