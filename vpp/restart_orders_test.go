package vpp_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	agent "github.com/octavia-vpp/health/amphora-agent"
	"github.com/octavia-vpp/health/vpp"
	"github.com/octavia-vpp/health/vpp/internal/fakevpp"
)

// The restart-order tests run the agent's counter step (the counter file
// and its per-VIP deltas) on a real Govpp against a fake VPP, and restart
// the agent (a new Govpp and a new counter file load, as a new process
// would), VPP, or both, in every order. After every heartbeat the deltas
// reported so far must add up to exactly the traffic VPP counted: nothing
// counted twice, nothing lost except what the scenario says is lost.

var (
	orderK4 = vpp.VIPKey{Prefix: netip.MustParsePrefix("192.0.2.10/32"), Protocol: vpp.ProtoTCP, Port: 80}
	orderK6 = vpp.VIPKey{Prefix: netip.MustParsePrefix("2001:db8::10/128"), Protocol: vpp.ProtoTCP, Port: 80}
)

// orderWorld is one fake VPP, one counter file and at most one agent
// process at a time.
type orderWorld struct {
	t     *testing.T
	srv   *fakevpp.Server
	sock  string
	stats bool
	path  string
	log   *slog.Logger

	vppUp  bool
	sticky bool // the IPv4 VIP's src_ip_sticky (flipping it re-creates the VIP)
	proc   *orderProc

	// sent is what VPP counted; sinceHB what it counted since the last
	// heartbeat; lost what the scenario expects not to be reported.
	sent, sinceHB, lost orderTotals
	got                 orderTotals // the sum of the reported deltas
	lossPending         string      // a baseline reason expected at the next heartbeat
	baselines           map[string]int
}

type orderTotals struct{ first, bytes int64 }

type orderProc struct {
	g      *vpp.Govpp
	file   *agent.CounterFile
	cancel context.CancelFunc
	done   chan struct{}
}

func newOrderWorld(t *testing.T, flavor fakevpp.Flavor, stats bool) *orderWorld {
	sock := vpp.SockPathForTest(t)
	srv, err := fakevpp.New(sock, flavor)
	if err != nil {
		t.Fatal(err)
	}
	w := &orderWorld{t: t, srv: srv, sock: sock, stats: stats, vppUp: true,
		path: filepath.Join(t.TempDir(), agent.CounterFileName), baselines: map[string]int{},
		log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	t.Cleanup(func() {
		w.agentStop()
		srv.Stop()
	})
	w.agentStart()
	return w
}

func (w *orderWorld) vips() []vpp.VIP {
	return []vpp.VIP{
		{Key: orderK4, SrcIPSticky: w.sticky, Backends: []vpp.Backend{{Addr: netip.MustParseAddr("10.0.0.1"), Weight: 100}}},
		{Key: orderK6, Encap: vpp.EncapGRE6, Backends: []vpp.Backend{{Addr: netip.MustParseAddr("2001:db8:1::1"), Weight: 100}}},
	}
}

func (w *orderWorld) waitFor(what string, cond func() bool) {
	w.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			w.t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// agentStart is a new agent process: load the counter file, hand the
// bases to a new Govpp before it runs, read VPP once (as the connection's
// first scrape does), then sync the desired VIPs.
func (w *orderWorld) agentStart() {
	w.t.Helper()
	f, err := agent.LoadCounterFile(w.path)
	if err != nil {
		w.t.Logf("counter file: %v", err)
	}
	cfg := vpp.GovppConfig{APISocket: w.sock, PingInterval: 40 * time.Millisecond, ScrapeInterval: time.Hour,
		CallTimeout: time.Second, ReconnectMin: 20 * time.Millisecond, ReconnectMax: 80 * time.Millisecond, Logger: w.log}
	if w.stats {
		srv := w.srv
		cfg.Stats = func(context.Context) (vpp.StatsSource, error) { return srv.Stats(), nil }
	}
	g, err := vpp.NewGovpp(cfg)
	if err != nil {
		w.t.Fatal(err)
	}
	if err := g.RestoreCounters(f.Bases()); err != nil {
		w.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &orderProc{g: g, file: f, cancel: cancel, done: make(chan struct{})}
	go func() { _ = g.Run(ctx); close(p.done) }()
	w.proc = p
	if w.vppUp {
		w.waitFor("the new agent's connection", func() bool { return g.State().Connected })
		w.scrape()
	}
	w.sync()
}

func (w *orderWorld) sync() {
	w.t.Helper()
	for _, v := range w.vips() {
		if _, err := w.proc.g.SyncVIP(context.Background(), v); err != nil && !(errors.Is(err, vpp.ErrNotConnected) && !w.vppUp) {
			w.t.Fatalf("sync %v: %v", v.Key, err)
		}
	}
}

func (w *orderWorld) scrape() {
	w.t.Helper()
	if err := vpp.ScrapeForTest(w.proc.g); err != nil {
		w.t.Fatalf("scrape: %v", err)
	}
}

// agentStop kills the agent process: nothing is written on the way out.
func (w *orderWorld) agentStop() {
	if w.proc == nil {
		return
	}
	w.proc.cancel()
	<-w.proc.done
	w.proc = nil
}

func (w *orderWorld) waitDisconnected() {
	if w.proc != nil {
		w.waitFor("the disconnect", func() bool { return !w.proc.g.State().Connected })
	}
}

func (w *orderWorld) waitReconnected(gen uint64) {
	if w.proc != nil {
		w.waitFor("the reconnect", func() bool {
			s := w.proc.g.State()
			return s.Connected && s.Generation > gen
		})
	}
}

func (w *orderWorld) generation() uint64 {
	if w.proc == nil {
		return 0
	}
	return w.proc.g.State().Generation
}

// traffic sends n flows of one 100-byte packet to the IPv4 VIP and n of
// one 10-byte packet to the IPv6 VIP.
func (w *orderWorld) traffic(n int) {
	w.t.Helper()
	for _, s := range []struct {
		k     vpp.VIPKey
		bytes uint64
	}{{orderK4, 100}, {orderK6, 10}} {
		if err := w.srv.Model().SendFlows(fakevpp.Key{Prefix: s.k.Prefix, Protocol: 6, Port: 80}, n, 1, s.bytes); err != nil {
			w.t.Fatal(err)
		}
	}
	add := orderTotals{first: int64(2 * n)}
	if w.stats {
		add.bytes = int64(110 * n)
	}
	w.sent.first += add.first
	w.sent.bytes += add.bytes
	w.sinceHB.first += add.first
	w.sinceHB.bytes += add.bytes
}

// heartbeat is the agent's counter step: scrape, deltas, file written.
func (w *orderWorld) heartbeat() { w.heartbeatWithout(nil) }

// heartbeatWithout is heartbeat with a VIP missing from the scrape, as a
// dual-stack listener's IPv6 VIP can be.
func (w *orderWorld) heartbeatWithout(missing *vpp.VIPKey) {
	w.t.Helper()
	connected := w.proc.g.State().Connected
	if connected {
		w.scrape()
	}
	snap := w.proc.g.Counters()
	if missing != nil && snap != nil {
		cut := &vpp.Counters{Taken: snap.Taken}
		for _, c := range snap.VIPs {
			if c.Key != *missing {
				cut.VIPs = append(cut.VIPs, c)
			}
		}
		snap = cut
	}
	step := w.proc.file.Advance(snap, []agent.ListenerVIPs{{ID: "L1", VIPs: []vpp.VIPKey{orderK4, orderK6}}}, true)
	if err := agent.SaveCounterFile(w.path, w.proc.file); err != nil {
		w.t.Fatal(err)
	}
	d := step.Deltas["L1"]
	if d.Stot < 0 || d.Bin < 0 {
		w.t.Fatalf("negative delta %+v", d)
	}
	w.got.first += d.Stot
	w.got.bytes += d.Bin
	for reason, keys := range step.Lost {
		w.baselines[reason] += len(keys)
	}
	if w.lossPending != "" && connected {
		if len(step.Lost[w.lossPending]) == 0 {
			w.t.Fatalf("expected VIPs baselined for %s, got %v", w.lossPending, step.Lost)
		}
		w.lost.first += w.sinceHB.first
		w.lost.bytes += w.sinceHB.bytes
		w.lossPending = ""
	} else if len(step.Lost) > 0 {
		w.t.Fatalf("unexpected baselines %v", step.Lost)
	}
	if connected && missing == nil {
		w.sinceHB = orderTotals{}
		want := orderTotals{w.sent.first - w.lost.first, w.sent.bytes - w.lost.bytes}
		if w.got != want {
			w.t.Fatalf("reported first packets %d, bytes %d; VPP counted %d and %d (%d and %d expected lost)",
				w.got.first, w.got.bytes, w.sent.first, w.sent.bytes, w.lost.first, w.lost.bytes)
		}
	} else if w.got.first > w.sent.first || w.got.bytes > w.sent.bytes {
		w.t.Fatalf("reported more than VPP counted: %+v > %+v", w.got, w.sent)
	}
}

func (w *orderWorld) vppStop() {
	w.t.Helper()
	w.srv.Stop()
	w.vppUp = false
	w.waitDisconnected()
}

// vppStart is a fresh VPP: empty lb state, a new boot time.
func (w *orderWorld) vppStart() {
	w.t.Helper()
	gen := w.generation()
	if err := w.srv.Start(); err != nil {
		w.t.Fatal(err)
	}
	w.vppUp = true
	w.waitReconnected(gen)
}

func (w *orderWorld) vppRestart() { w.vppStop(); w.vppStart() }

// reconnect takes the API socket away while VPP keeps its state and
// counters, then gives it back.
func (w *orderWorld) reconnect() {
	w.t.Helper()
	gen := w.generation()
	w.srv.Stop()
	w.waitDisconnected()
	if err := w.srv.Resume(); err != nil {
		w.t.Fatal(err)
	}
	w.waitReconnected(gen)
}

// reboot restarts VPP behind a surviving socket (seen by the boot time).
func (w *orderWorld) reboot() {
	w.t.Helper()
	gen := w.generation()
	w.srv.Reboot()
	w.waitReconnected(gen)
}

// recreate flips the IPv4 VIP's src_ip_sticky, which VPP can only apply
// by deleting and re-creating it; a running agent does so now, a stopped
// one when it starts.
func (w *orderWorld) recreate() {
	w.t.Helper()
	w.sticky = !w.sticky
	if w.proc != nil {
		w.sync()
	}
}

// oldFile replaces the counter file with what an older agent wrote: the
// listener totals only.
func (w *orderWorld) oldFile() {
	w.t.Helper()
	c, err := agent.LoadCounters(w.path)
	if err != nil {
		w.t.Fatal(err)
	}
	s := c["L1"]
	body := fmt.Sprintf(`{"L1": {"bin": %d, "bout": 0, "ereq": %d, "stot": %d}}`, s.Bin, s.EReq, s.Stot)
	if err := os.WriteFile(w.path, []byte(body), 0o640); err != nil {
		w.t.Fatal(err)
	}
	w.lossPending = agent.LossOldFile
}

// deleteFile loses the counter file while VPP keeps its VIPs and counts.
func (w *orderWorld) deleteFile() {
	w.t.Helper()
	if err := os.Remove(w.path); err != nil {
		w.t.Fatal(err)
	}
	w.lossPending = agent.LossNoFile
}

func (w *orderWorld) corruptFile() {
	w.t.Helper()
	if err := os.WriteFile(w.path, []byte(`{"L1": {"bin": 12, "bo`), 0o640); err != nil {
		w.t.Fatal(err)
	}
	w.lossPending = agent.LossCorrupt
}

func TestCountersAcrossRestartOrders(t *testing.T) {
	type op func(w *orderWorld)
	T := func(n int) op { return func(w *orderWorld) { w.traffic(n) } }
	hb := (*orderWorld).heartbeat
	agentStop, agentStart := (*orderWorld).agentStop, (*orderWorld).agentStart
	agentRestart := func(w *orderWorld) { w.agentStop(); w.agentStart() }
	vppStop, vppStart, vppRestart := (*orderWorld).vppStop, (*orderWorld).vppStart, (*orderWorld).vppRestart
	reconnect, reboot, recreate := (*orderWorld).reconnect, (*orderWorld).reboot, (*orderWorld).recreate
	oldFile, corruptFile, deleteFile := (*orderWorld).oldFile, (*orderWorld).corruptFile, (*orderWorld).deleteFile
	// after a VPP restart the new process creates the VIPs: nothing to lose
	nothingLost := func(w *orderWorld) { w.lossPending = "" }
	hbWithout6 := func(w *orderWorld) { w.heartbeatWithout(&orderK6) }

	scenarios := []struct {
		name      string
		statsOnly bool
		ops       []op
	}{
		{"agent restart, traffic while it is down", false, []op{T(3), hb, T(2), agentStop, T(4), agentStart, hb, T(1), hb}},
		{"agent killed again before its first heartbeat", false, []op{T(3), hb, agentStop, T(2), agentStart, agentStop, T(1), agentStart, hb, T(1), hb}},
		{"VPP restart", false, []op{T(3), hb, vppRestart, hb, T(2), hb, vppRestart, T(1), hb}},
		{"VPP restart, then agent restart", false, []op{T(5), hb, vppRestart, T(2), hb, T(3), agentRestart, hb, T(1), hb}},
		{"VPP restart, agent restart, another VPP restart", false, []op{T(5), hb, vppRestart, T(2), hb, agentRestart, T(1), hb, vppRestart, T(4), hb, agentRestart, hb}},
		{"VPP restarts while the agent is down", false, []op{T(3), hb, agentStop, vppRestart, agentStart, T(2), hb, T(1), hb}},
		{"both down, agent first, VPP back first", false, []op{T(3), hb, agentStop, vppStop, vppStart, agentStart, T(2), hb}},
		{"both down, agent first, agent back first", false, []op{T(3), hb, agentStop, vppStop, agentStart, hb, vppStart, T(2), hb}},
		{"both down, VPP first, agent back first", false, []op{T(3), hb, vppStop, agentStop, agentStart, hb, vppStart, hb, T(2), hb}},
		{"both down, VPP first, VPP back first", false, []op{T(3), hb, vppStop, agentStop, vppStart, agentStart, T(2), hb}},
		{"VIP re-created while the agent is down", false, []op{T(3), hb, agentStop, T(2), recreate, agentStart, hb, T(1), hb, agentRestart, T(1), hb}},
		{"VIP re-created by the running agent", false, []op{T(3), hb, recreate, T(2), hb, agentRestart, T(1), hb}},
		{"API socket reconnect while VPP keeps forwarding", false, []op{T(3), hb, reconnect, hb, T(2), reconnect, T(1), hb, reconnect, agentRestart, T(1), hb}},
		{"VPP restart behind a surviving socket", true, []op{T(3), hb, reboot, hb, T(2), hb, agentRestart, T(1), hb}},
		{"IPv6 VIP of a dual-stack listener missing from a scrape", false, []op{T(3), hb, T(1), hbWithout6, T(2), hbWithout6, hb, T(1), hb}},
		{"older agent's counter file", false, []op{T(3), hb, T(2), agentStop, oldFile, agentStart, hb, T(1), hb, agentRestart, T(1), hb}},
		{"counter file lost while VPP keeps counting", false, []op{T(3), hb, T(2), agentStop, deleteFile, agentStart, hb, T(1), hb, agentRestart, T(1), hb}},
		{"counter file lost and VPP restarted while the agent is down", false, []op{T(3), hb, agentStop, deleteFile, vppRestart, nothingLost, agentStart, T(2), hb, T(1), hb}},
		{"corrupt counter file", false, []op{T(3), hb, T(2), agentStop, corruptFile, agentStart, hb, T(1), hb, agentRestart, T(1), hb}},
	}
	for _, setup := range []struct {
		name   string
		flavor fakevpp.Flavor
		stats  bool
	}{{"stats", fakevpp.Master, true}, {"cli-counters", fakevpp.Released, false}} {
		t.Run(setup.name, func(t *testing.T) {
			for _, sc := range scenarios {
				if sc.statsOnly && !setup.stats {
					continue
				}
				t.Run(sc.name, func(t *testing.T) {
					w := newOrderWorld(t, setup.flavor, setup.stats)
					for _, o := range sc.ops {
						o(w)
					}
					if w.sent.first == 0 || (setup.stats && w.sent.bytes == 0) {
						t.Fatal("no traffic")
					}
					t.Logf("VPP counted %d first packets, %d bytes; reported %d and %d; lost by design %d and %d",
						w.sent.first, w.sent.bytes, w.got.first, w.got.bytes, w.lost.first, w.lost.bytes)
				})
			}
		})
	}
}
