package vpp

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/octavia-vpp/health/vpp/internal/fakevpp"
)

// TestPeriodicScrape: the supervisor publishes snapshots on its own.
func TestPeriodicScrape(t *testing.T) {
	e := startFakeWith(t, fakeSetup{flavor: fakevpp.Master, stats: true, wait: true,
		tweak: func(c *GovppConfig) { c.ScrapeInterval = 20 * time.Millisecond }})
	k := VIPKey{Prefix: p("192.0.2.10/32"), Protocol: ProtoTCP, Port: 80}
	if _, err := e.g.SyncVIP(context.Background(), VIP{Key: k, Backends: []Backend{{Addr: a("10.0.0.1"), Weight: 100}}}); err != nil {
		t.Fatal(err)
	}
	if err := e.srv.Model().SendFlows(fakevpp.Key{Prefix: k.Prefix, Protocol: 6, Port: 80}, 7, 1, 1); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if c, ok := e.g.Counters().VIP(k); ok && c.FirstPackets == 7 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("counters never caught up: %+v", e.g.Counters())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestHungVPP: a VPP that keeps its socket open but stops answering is
// detected by the ping, torn down and reconnected once it answers again.
func TestHungVPP(t *testing.T) {
	e := startFakeWith(t, fakeSetup{flavor: fakevpp.Released, wait: true,
		tweak: func(c *GovppConfig) { c.CallTimeout = 100 * time.Millisecond }})
	k := VIPKey{Prefix: p("192.0.2.10/32"), Protocol: ProtoTCP, Port: 80}
	if _, err := e.g.SyncVIP(context.Background(), VIP{Key: k, Backends: []Backend{{Addr: a("10.0.0.1"), Weight: 100}}}); err != nil {
		t.Fatal(err)
	}
	e.srv.SetHung(true)
	deadline := time.Now().Add(5 * time.Second)
	for e.g.State().Connected {
		if time.Now().After(deadline) {
			t.Fatal("hung VPP not detected")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if st := e.g.State(); st.LastError == "" {
		t.Fatalf("no reason recorded: %+v", st)
	}
	e.srv.SetHung(false)
	e.waitConnected(2)
	vips, err := e.g.VIPs(context.Background())
	if err != nil || len(vips) != 1 {
		t.Fatalf("after recovery: %+v %v", vips, err)
	}
}

// TestConcurrentUseDuringRestarts hammers the Dataplane from several
// goroutines while VPP restarts; afterwards VPP holds exactly the last
// desired state. Run with -race.
func TestConcurrentUseDuringRestarts(t *testing.T) {
	e := startFake(t, fakevpp.Master, true)
	ctx := context.Background()
	keys := make([]VIPKey, 4)
	for i := range keys {
		keys[i] = VIPKey{Prefix: p(fmt.Sprintf("192.0.2.%d/32", 10+i)), Protocol: ProtoTCP, Port: 80}
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i, k := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				w := uint8((n*7 + i) % 101)
				_, _ = e.g.SyncVIP(ctx, VIP{Key: k, Backends: []Backend{{Addr: a("10.0.0.1"), Weight: 100}, {Addr: a("10.0.0.2"), Weight: w}}})
				_, _ = e.g.SyncVIP(ctx, VIP{Key: k, Backends: []Backend{{Addr: a("10.0.0.1"), Weight: uint8(n % 100)}, {Addr: a("10.0.0.2"), Weight: w}}})
				_ = e.g.Counters()
				_ = e.g.State()
				_ = e.g.scrape(ctx)
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	e.restart()
	time.Sleep(50 * time.Millisecond)
	e.restart()
	close(stop)
	wg.Wait()
	// Whatever interleaving happened, one final sync per VIP converges.
	for _, k := range keys {
		if _, err := e.g.SyncVIP(ctx, VIP{Key: k, Backends: []Backend{{Addr: a("10.0.0.1"), Weight: 60}}}); err != nil {
			t.Fatal(err)
		}
	}
	vips, err := e.g.VIPs(ctx)
	if err != nil || len(vips) != len(keys) {
		t.Fatalf("vips %+v %v", vips, err)
	}
	for _, v := range vips {
		eff := 0
		for _, b := range v.Backends {
			if b.Active && b.Weight > 0 {
				eff++
				if b.Addr != a("10.0.0.1") || b.Weight != 60 {
					t.Fatalf("vip %v backend %+v", v.Key, b)
				}
			}
		}
		if eff != 1 {
			t.Fatalf("vip %v backends %+v", v.Key, v.Backends)
		}
	}
}

// recordHandler keeps debug records for TestCallsAreLogged.
type recordHandler struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *recordHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.recs = append(h.recs, r.Clone())
	h.mu.Unlock()
	return nil
}
func (h *recordHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordHandler) WithGroup(string) slog.Handler      { return h }

// TestCallsAreLogged: every VPP call leaves one debug record with stable keys.
func TestCallsAreLogged(t *testing.T) {
	h := &recordHandler{}
	e := startFakeWith(t, fakeSetup{flavor: fakevpp.Released, wait: true,
		tweak: func(c *GovppConfig) { c.Logger = slog.New(h) }})
	h.mu.Lock()
	h.recs = nil // forget the connection's own calls
	h.mu.Unlock()
	if _, err := e.g.SyncVIP(context.Background(), VIP{Key: VIPKey{Prefix: p("192.0.2.10/32")}}); err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	var cmds []string
	for _, r := range h.recs {
		if r.Level != slog.LevelDebug || r.Message != "vpp call" {
			continue
		}
		attrs := map[string]string{}
		r.Attrs(func(a slog.Attr) bool { attrs[a.Key] = a.Value.String(); return true })
		if attrs["msg"] == "control_ping" && attrs["result"] == "ok" {
			continue // the supervisor's ping may fall in between
		}
		if attrs["msg"] != "cli_inband" || attrs["result"] != "ok" || attrs["duration"] == "" {
			t.Fatalf("record attrs %v", attrs)
		}
		cmds = append(cmds, attrs["cmd"])
	}
	// SyncVIP reads the VIPs, then adds one. The supervisor's own reads of
	// the same table may land anywhere in between, so only their command is
	// checked.
	const read, add = "show lb vips verbose", "lb vip 192.0.2.10/32 encap gre4 new_len 1024"
	readBeforeAdd, adds := false, 0
	for _, cmd := range cmds {
		switch cmd {
		case read:
			readBeforeAdd = readBeforeAdd || adds == 0
		case add:
			adds++
		default:
			t.Fatalf("logged calls %q: unexpected %q", cmds, cmd)
		}
	}
	if !readBeforeAdd || adds != 1 {
		t.Fatalf("logged calls %q, want %q then %q once", cmds, read, add)
	}
}
