package vpp

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/octavia-vpp/health/vpp/internal/fakevpp"
)

// testLogger logs to the test output only with -v and VPP_TEST_LOG=1.
func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("VPP_TEST_LOG") == "" {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// fakeEnv is a Govpp connected to a fake VPP over a real unix socket.
type fakeEnv struct {
	t    testing.TB
	sock string
	srv  *fakevpp.Server
	g    *Govpp
	stop func()

	mu    sync.Mutex
	stats []*fakevpp.Stats
}

func startFake(t testing.TB, flavor fakevpp.Flavor, withStats bool) *fakeEnv {
	t.Helper()
	return startFakeWith(t, fakeSetup{flavor: flavor, stats: withStats, wait: true})
}

type fakeSetup struct {
	flavor  fakevpp.Flavor
	opts    fakevpp.Options
	stats   bool
	dialect string
	wait    bool // wait for the first connection
	tweak   func(*GovppConfig)
}

func startFakeWith(t testing.TB, fs fakeSetup) *fakeEnv {
	t.Helper()
	sock := sockPath(t)
	srv, err := fakevpp.NewWithOptions(sock, fs.flavor, fs.opts)
	if err != nil {
		t.Fatal(err)
	}
	withStats := fs.stats
	e := &fakeEnv{t: t, sock: sock, srv: srv}
	cfg := GovppConfig{
		Dialect:        fs.dialect,
		APISocket:      sock,
		PingInterval:   40 * time.Millisecond,
		ScrapeInterval: time.Hour, // tests scrape explicitly
		CallTimeout:    time.Second,
		ReconnectMin:   20 * time.Millisecond,
		ReconnectMax:   80 * time.Millisecond,
		Logger:         testLogger(t),
	}
	if withStats {
		cfg.Stats = func(context.Context) (StatsSource, error) {
			st := srv.Stats()
			e.mu.Lock()
			e.stats = append(e.stats, st)
			e.mu.Unlock()
			return st, nil
		}
	}
	if fs.tweak != nil {
		fs.tweak(&cfg)
	}
	g, err := NewGovpp(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.g = g
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = g.Run(ctx); close(done) }()
	e.stop = func() { cancel(); <-done; srv.Stop() }
	t.Cleanup(e.stop)
	t.Cleanup(func() {
		// Nothing we sent would have crashed or silently misconfigured VPP.
		if v := srv.Model().ViolationList(); len(v) > 0 {
			t.Errorf("zero defaults sent to VPP: %v", v)
		}
	})
	if fs.wait {
		e.waitConnected(1)
	}
	return e
}

// waitConnected waits until the Govpp is connected with at least the given
// generation.
func (e *fakeEnv) waitConnected(gen uint64) State {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		s := e.g.State()
		if s.Connected && s.Generation >= gen {
			return s
		}
		time.Sleep(5 * time.Millisecond)
	}
	e.t.Fatalf("not connected with generation >= %d: %+v", gen, e.g.State())
	return State{}
}

// scrapeNow runs one scrape synchronously.
func (e *fakeEnv) scrapeNow() {
	e.t.Helper()
	if err := e.g.scrape(context.Background()); err != nil {
		e.t.Fatalf("scrape: %v", err)
	}
}

// restart simulates a VPP restart: the socket disappears, a fresh VPP comes
// up, and we wait for the reconnect (the re-push happens before the new
// generation becomes visible).
func (e *fakeEnv) restart() {
	e.t.Helper()
	gen := e.g.State().Generation
	e.srv.Stop()
	deadline := time.Now().Add(10 * time.Second)
	for e.g.State().Connected && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if err := e.srv.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.waitConnected(gen + 1)
}

// probeForTest re-runs the dialect probe on the live connection.
func (g *Govpp) probeForTest() (vppInfo, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.conn == nil {
		return vppInfo{}, ErrNotConnected
	}
	return g.probe(context.Background(), g.conn)
}

// sockPath is a socket path in t.TempDir(), or in a shorter temporary
// directory when that path would pass the 108-byte sun_path limit.
func sockPath(t testing.TB) string {
	p := filepath.Join(t.TempDir(), "api.sock")
	if len(p) < 100 {
		return p
	}
	dir, err := os.MkdirTemp("", "vpp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return filepath.Join(dir, "api.sock")
}
