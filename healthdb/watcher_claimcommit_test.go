package healthdb

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/octavia-vpp/health/healthdb/failover/failovertest"
	"github.com/octavia-vpp/health/test/pgtest"
)

// commitDropper is a TCP proxy in front of PostgreSQL that, once armed,
// breaks the connection that sends the next COMMIT: either after the
// server has answered it (the transaction committed, the client never
// learns it) or before passing it on (the server rolls back).
type commitDropper struct {
	ln     net.Listener
	target string
	mode   atomic.Int32 // dropNone, dropAfterCommit, dropBeforeCommit
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  []net.Conn
}

const (
	dropNone = iota
	dropAfterCommit
	dropBeforeCommit
)

// commitQuery is the simple-protocol Query message pgx sends for COMMIT.
var commitQuery = []byte("Q\x00\x00\x00\x0bcommit\x00")

func newCommitDropper(t *testing.T, target string) *commitDropper {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &commitDropper{ln: ln, target: target}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *commitDropper) accept() {
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
		var swallow atomic.Bool // the server's answer to COMMIT is not passed on
		p.wg.Add(2)
		go func() { // client -> server
			defer p.wg.Done()
			defer server.Close()
			buf := make([]byte, 64<<10)
			for {
				n, err := client.Read(buf)
				if n > 0 {
					chunk := buf[:n]
					if bytes.Contains(chunk, commitQuery) {
						switch p.mode.Swap(dropNone) {
						case dropBeforeCommit:
							client.Close()
							return
						case dropAfterCommit:
							swallow.Store(true)
						}
					}
					if _, err := server.Write(chunk); err != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		}()
		go func() { // server -> client
			defer p.wg.Done()
			defer client.Close()
			buf := make([]byte, 64<<10)
			for {
				n, err := server.Read(buf)
				if n > 0 && swallow.Load() {
					return // the answer arrived: the server committed
				}
				if n > 0 {
					if _, err := client.Write(buf[:n]); err != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		}()
	}
}

// A claim whose COMMIT got no answer is looked up and released when it
// committed, without a failover; when it did not commit nothing is left
// busy. Either way the next check claims the amphora and fails it over
// once.
func TestClaimWithUnknownCommitOutcome(t *testing.T) {
	for _, tc := range []struct {
		name     string
		mode     int32
		released bool // released after a commit, rather than never committed
	}{
		{"committed", dropAfterCommit, true},
		{"rolled back", dropBeforeCommit, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dbURL := pgtest.NewDB(t)
			direct, err := pgxpool.New(context.Background(), dbURL)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(direct.Close)
			u, err := url.Parse(dbURL)
			if err != nil {
				t.Fatal(err)
			}
			proxy := newCommitDropper(t, u.Host)
			u.Host = proxy.ln.Addr().String()
			viaProxy, err := pgxpool.New(context.Background(), u.String())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(viaProxy.Close)

			f := &fixture{t: t, db: direct}
			f.lb("lb-1", "ACTIVE", "ONLINE", true)
			f.amphora("amp-1", "lb-1", "ALLOCATED", "vm-1")
			f.healthRow("amp-1", 10*time.Minute, false)
			fake := failovertest.New(t)
			metrics := NewWatcherMetrics(prometheus.NewRegistry())
			w := watcherFor(t, viaProxy, octaviaAPI(t, fake), nil, func(c *WatcherConfig) { c.Metrics = metrics })

			proxy.mode.Store(tc.mode)
			res, err := w.Cycle(context.Background())
			w.Wait()
			var unknown *ClaimCommitUnknownError
			if !errors.As(err, &unknown) || len(unknown.AmphoraIDs) != 1 || unknown.AmphoraIDs[0] != "amp-1" {
				t.Fatalf("cycle: %v; want the claim of amp-1 with its COMMIT outcome unknown", err)
			}
			if res.Dispatched != 0 || len(fake.Failovers()) != 0 {
				t.Fatalf("dispatched %d, failover calls %v; want none for a claim not known to be ours", res.Dispatched, fake.Failovers())
			}
			status, err := NewStore(direct).TxStatus(context.Background(), unknown.TxID)
			if err != nil {
				t.Fatal(err)
			}
			if want := map[bool]string{true: TxCommitted, false: TxAborted}[tc.released]; status != want {
				t.Fatalf("the claim transaction is %q; want %q (the proxy did not drop where meant)", status, want)
			}
			// Resolved within the same check: not left busy.
			if _, busy := f.amphoraState("amp-1"); busy == nil || *busy {
				t.Errorf("amp-1 busy after the unknown COMMIT was resolved; want released")
			}
			if got := testutil.ToFloat64(metrics.claimCommitUnknown); got != 1 {
				t.Errorf("claim_commit_unknown = %v; want 1", got)
			}
			if len(w.unresolved) != 0 {
				t.Errorf("still unresolved: %v", w.unresolved)
			}

			if res := cycle(t, w); res.Dispatched != 1 {
				t.Fatalf("next check dispatched %d; want amp-1", res.Dispatched)
			}
			if got := fake.Failovers(); got["amp-1"] != 1 {
				t.Errorf("failover calls %v; want amp-1 exactly once", got)
			}
			if _, busy := f.amphoraState("amp-1"); !*busy {
				t.Error("amp-1's accepted failover left it unclaimed")
			}
		})
	}
}
