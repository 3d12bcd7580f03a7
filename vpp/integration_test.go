package vpp_test

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/octavia-vpp/health/vpp"
	"github.com/octavia-vpp/health/vpp/internal/fakevpp"
)

// TestRealVPP programs a real VPP. It runs only when VPP_API_SOCKET names
// VPP's API socket (see docs/vpp.md); it uses documentation prefixes
// (198.51.100.0/24 VIPs, 203.0.113.0/24 backends) and removes what it
// created. Set VPP_DIALECT=cli or binapi to force a dialect, and
// VPP_STATS_SOCKET=/run/vpp/stats.sock to read counters from the stats
// segment (otherwise they come from the CLI text).
func TestRealVPP(t *testing.T) {
	sock := os.Getenv("VPP_API_SOCKET")
	if sock == "" {
		t.Skip("VPP_API_SOCKET not set; see docs/vpp.md for running against a lab VPP")
	}
	realVPPChecks(t, sock)
}

// TestRealVPPChecksOnFake runs the body of TestRealVPP against the fake
// VPP, so the lab test itself is known to work before it meets a real one.
func TestRealVPPChecksOnFake(t *testing.T) {
	for _, f := range []fakevpp.Flavor{fakevpp.Released, fakevpp.Master} {
		sock := vpp.SockPathForTest(t)
		srv, err := fakevpp.New(sock, f)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(srv.Stop)
		realVPPChecks(t, sock)
	}
}

func realVPPChecks(t *testing.T, sock string) {
	logLevel := slog.LevelWarn
	if os.Getenv("VPP_API_SOCKET") != "" {
		logLevel = slog.LevelDebug
	}
	var stats vpp.StatsDialer
	if ss := os.Getenv("VPP_STATS_SOCKET"); ss != "" {
		stats = vpp.StatsSocketDialer(ss)
	}
	g, err := vpp.NewGovpp(vpp.GovppConfig{
		Stats:          stats,
		APISocket:      sock,
		ClientName:     "amphora-agent-test",
		Dialect:        os.Getenv("VPP_DIALECT"),
		ScrapeInterval: 500 * time.Millisecond,
		Logger:         slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: logLevel})),
	})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = g.Run(runCtx); close(done) }()
	t.Cleanup(func() { stop(); <-done })

	deadline := time.Now().Add(15 * time.Second)
	for !g.State().Connected {
		if time.Now().After(deadline) {
			t.Fatalf("no connection to %s: %+v", sock, g.State())
		}
		time.Sleep(50 * time.Millisecond)
	}
	st := g.State()
	t.Logf("connected: version %q dialect %s weighted %v boot %v", st.Version, st.Dialect, st.Weighted, st.BootTime)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(g.Configure(ctx, vpp.Conf{IP4Src: netip.MustParseAddr("198.51.100.1"), IP6Src: netip.MustParseAddr("2001:db8::1"),
		StickyBucketsPerWorker: 1 << 12, FlowTimeout: 40 * time.Second}))

	k := vpp.VIPKey{Prefix: netip.MustParsePrefix("198.51.100.10/32"), Protocol: vpp.ProtoTCP, Port: 8080}
	b1, b2 := netip.MustParseAddr("203.0.113.1"), netip.MustParseAddr("203.0.113.2")
	t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := g.RemoveVIP(c, k); err != nil && !errors.Is(err, vpp.ErrNotFound) {
			t.Errorf("cleanup: %v", err)
		}
	})
	v := vpp.VIP{Key: k, Backends: []vpp.Backend{{Addr: b1, Weight: 100}, {Addr: b2, Weight: 100}}}
	res, err := g.SyncVIP(ctx, v)
	must(err)
	if !res.Created || res.Added != 2 {
		t.Fatalf("first sync %+v", res)
	}
	res, err = g.SyncVIP(ctx, v)
	must(err)
	if res.Changed() {
		t.Fatalf("re-sync changed %+v: VPP does not report what we programmed", res)
	}
	find := func() vpp.VIPStatus {
		vips, err := g.VIPs(ctx)
		must(err)
		for _, x := range vips {
			if x.Key == k {
				return x
			}
		}
		t.Fatalf("vip %v not found among %+v (an IPv4 VIP created through a broken API shows up as IPv6)", k, vips)
		return vpp.VIPStatus{}
	}
	got := find()
	if len(got.Backends) != 2 || !got.Backends[0].Active || !got.Backends[1].Active {
		t.Fatalf("backends %+v", got.Backends)
	}
	_, err = g.SyncVIP(ctx, vpp.VIP{Key: k, Backends: []vpp.Backend{{Addr: b1, Weight: 100}, {Addr: b2, Flush: true}}})
	must(err)
	for _, b := range find().Backends {
		if b.Addr == b2 && b.Active && b.Weight != 0 {
			t.Fatalf("drained backend %+v", b)
		}
	}
	_, err = g.SyncVIP(ctx, v)
	must(err)

	deadline = time.Now().Add(5 * time.Second)
	for {
		if c, ok := g.Counters().VIP(k); ok {
			t.Logf("counters %+v", c)
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no counters for the VIP")
		}
		time.Sleep(100 * time.Millisecond)
	}
	must(g.RemoveVIP(ctx, k))
	if err := g.RemoveVIP(ctx, k); !errors.Is(err, vpp.ErrNotFound) {
		t.Fatalf("second remove: %v", err)
	}
}
