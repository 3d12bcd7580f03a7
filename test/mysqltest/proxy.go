package mysqltest

import (
	"bytes"
	"io"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/octavia-vpp/health/test/tcpproxy"
)

// Proxy forwards MySQL connections and, when armed, cuts one at a COMMIT:
// either before forwarding it (the server never sees it), or after the
// server has answered it, with the answer withheld (the server committed;
// the client cannot know). It follows the protocol's packet framing only,
// so the connection must not use TLS or compression (mysqltest's DSNs use
// neither). It is test/pgtest.Proxy for MariaDB.
type Proxy struct{ p *tcpproxy.Proxy }

// CommitCut says where an armed Proxy cuts.
type CommitCut = tcpproxy.CommitCut

// NewProxy starts a proxy to the server of dsn (TCP) and returns it with
// the same DSN pointing at the proxy. It stops when the test ends.
func NewProxy(t testing.TB, dsn string) (*Proxy, string) {
	t.Helper()
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	p := tcpproxy.Start(t, cfg.Addr, tcpproxy.Protocol{FromClient: fromClient, FromServer: fromServer})
	cfg.Addr = p.Addr()
	return &Proxy{p}, cfg.FormatDSN()
}

// CutAtCommit arms one cut, replacing any armed one. The channel is
// closed once it has happened.
func (p *Proxy) CutAtCommit(c CommitCut) <-chan struct{} { return p.p.CutAtCommit(c) }

const comQuery = 0x03

// fromClient forwards the client's packets and fires the armed cut at a
// COMMIT query.
func fromClient(p *tcpproxy.Proxy, c *tcpproxy.Conn) {
	defer c.Close()
	var mentioned string // what this transaction mentioned, of interest
	for {
		payload, raw, err := readPacket(c.Client)
		if err != nil {
			return
		}
		if len(payload) > 0 && payload[0] == comQuery {
			text := bytes.ToLower(bytes.TrimSpace(payload[1:]))
			if bytes.HasPrefix(text, []byte("start transaction")) || bytes.HasPrefix(text, []byte("begin")) {
				mentioned = ""
			}
			if m := p.Mentioning(); m != "" && bytes.Contains(text, []byte(m)) {
				mentioned = m
			}
			if bytes.Equal(text, []byte("commit")) {
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
		}
		if _, err := c.Server.Write(raw); err != nil {
			return
		}
	}
}

// fromServer forwards the server's packets; once a cut's COMMIT was
// forwarded, its answer is dropped and both ends closed.
func fromServer(_ *tcpproxy.Proxy, c *tcpproxy.Conn) {
	defer c.Close()
	for {
		_, raw, err := readPacket(c.Server)
		if err != nil {
			return
		}
		select {
		case r := <-c.Forwarded:
			// The client waits for COMMIT's answer before sending
			// anything else, so this packet is that answer.
			r.Done()
			return
		default:
		}
		if _, err := c.Client.Write(raw); err != nil {
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
