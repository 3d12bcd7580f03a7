package agent

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/octavia-vpp/health/heartbeat"
	"github.com/octavia-vpp/health/vpp"
	"github.com/octavia-vpp/health/vpp/sim"
)

// clockedAgent is an agent that is not running, on a clock the test moves,
// with agentLB loaded.
func clockedAgent(t *testing.T, dp vpp.Dataplane, clock *time.Time) *Agent {
	t.Helper()
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.AmphoraID, cfg.HeartbeatKey = "amp", "k"
	cfg.BasePath, cfg.SpoolDir = dir, filepath.Join(dir, "marks")
	cfg.VPP.Dataplane, cfg.VPP.LBConfigFile = "sim", filepath.Join(dir, "lb.json")
	cfg.VPPUnreachableLimit = 30 * time.Second
	if err := os.WriteFile(cfg.VPP.LBConfigFile, []byte(agentLB), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := New(Options{Config: &cfg, Dataplane: dp, Logger: quietLogger(), Now: func() time.Time { return *clock }})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.loadLB(false); err != nil {
		t.Fatal(err)
	}
	a.warm = true // as once the VIPs were pushed; the tests are about VPP's silence after
	t.Cleanup(func() {
		a.mu.Lock()
		for _, ms := range a.members {
			ms.cancel()
		}
		a.mu.Unlock()
	})
	return a
}

// The agent counts VPP's silence from the last time it saw VPP connected:
// up to vpp_unreachable_limit the heartbeat reports the listener as
// before, OPEN; past it, the listener and its pool are left out; once VPP
// is back they are reported again. An agent that never reached VPP has no
// state to report and leaves them out from the first heartbeat.
func TestHeartbeatLeavesListenersOutPastVPPUnreachableLimit(t *testing.T) {
	listeners := func(a *Agent) []string {
		t.Helper()
		msg, err := a.BuildHeartbeat(false)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, l := range msg.Listeners {
			if l.Status != "OPEN" {
				t.Errorf("listener %s reported %q; want OPEN", l.ID, l.Status)
			}
			ids = append(ids, l.ID)
		}
		if len(msg.Pools) != len(ids) {
			t.Errorf("pools %+v with listeners %v", msg.Pools, ids)
		}
		return ids
	}
	t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	limit := 30 * time.Second

	t.Run("vpp lost", func(t *testing.T) {
		clock := t0
		dp := sim.New(sim.Config{Logger: quietLogger()})
		a := clockedAgent(t, dp, &clock)
		if got := listeners(a); len(got) != 1 {
			t.Fatalf("VPP reachable: listeners %v", got)
		}
		dp.SetReachable(false)
		clock = clock.Add(limit)
		if got := listeners(a); len(got) != 1 {
			t.Errorf("VPP silent for exactly the limit: listeners %v; want the last known state", got)
		}
		clock = clock.Add(time.Millisecond)
		if got := listeners(a); len(got) != 0 {
			t.Errorf("VPP silent past the limit: listeners %v; want none", got)
		}
		if _, err := a.BuildHeartbeat(true); err != nil {
			t.Fatal(err)
		}
		if !a.Status().ListenersLeftOut {
			t.Error("/status does not say the heartbeat left the listeners out")
		}
		dp.SetReachable(true)
		if got := listeners(a); len(got) != 1 {
			t.Errorf("VPP back: listeners %v", got)
		}
		if _, err := a.BuildHeartbeat(true); err != nil {
			t.Fatal(err)
		}
		if a.Status().ListenersLeftOut {
			t.Error("/status says the listeners are left out with VPP back")
		}
	})
	t.Run("vpp never reached", func(t *testing.T) {
		clock := t0
		dp := sim.New(sim.Config{Logger: quietLogger()})
		dp.SetReachable(false)
		a := clockedAgent(t, dp, &clock)
		if got := listeners(a); len(got) != 0 {
			t.Errorf("at start without VPP: listeners %v; want none", got)
		}
		clock = clock.Add(limit + time.Second)
		if got := listeners(a); len(got) != 0 {
			t.Errorf("past the limit without VPP ever: listeners %v", got)
		}
		dp.SetReachable(true)
		if got := listeners(a); len(got) != 1 {
			t.Errorf("VPP reached at last: listeners %v", got)
		}
	})
}

// hangingDataplane is a dataplane whose VPP accepts calls but never
// answers while hung: every call waits for its deadline. State and
// Counters are the last published ones, as with Govpp.
type hangingDataplane struct {
	*sim.Sim
	hung    atomic.Bool
	waiting atomic.Int64 // calls waiting right now
}

func (h *hangingDataplane) wait(ctx context.Context) error {
	h.waiting.Add(1)
	defer h.waiting.Add(-1)
	<-ctx.Done()
	return ctx.Err()
}

func (h *hangingDataplane) Configure(ctx context.Context, c vpp.Conf) error {
	if h.hung.Load() {
		return h.wait(ctx)
	}
	return h.Sim.Configure(ctx, c)
}

func (h *hangingDataplane) SyncVIP(ctx context.Context, v vpp.VIP) (vpp.SyncResult, error) {
	if h.hung.Load() {
		return vpp.SyncResult{}, h.wait(ctx)
	}
	return h.Sim.SyncVIP(ctx, v)
}

func (h *hangingDataplane) RemoveVIP(ctx context.Context, k vpp.VIPKey) error {
	if h.hung.Load() {
		return h.wait(ctx)
	}
	return h.Sim.RemoveVIP(ctx, k)
}

func (h *hangingDataplane) VIPs(ctx context.Context) ([]vpp.VIPStatus, error) {
	if h.hung.Load() {
		return nil, h.wait(ctx)
	}
	return h.Sim.VIPs(ctx)
}

// While the agent's VPP programming waits on a VPP that never answers
// (each call up to its 5 s deadline), heartbeats keep their interval.
func TestHungVPPDoesNotDelayHeartbeats(t *testing.T) {
	p := newFakeProber()
	p.set("10.0.0.1", "pass")
	p.set("10.0.0.2", "pass")
	dp := &hangingDataplane{Sim: sim.New(sim.Config{Logger: quietLogger()})}
	hm, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hm.Close()
	kr, err := heartbeat.NewKeyring(heartbeat.KeyringConfig{Keys: []string{"k"}})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var arrivals []time.Time
	go func() {
		buf := make([]byte, 65536)
		for {
			n, _, err := hm.ReadFrom(buf)
			if err != nil {
				return
			}
			if _, _, err := kr.Open(buf[:n]); err == nil {
				mu.Lock()
				arrivals = append(arrivals, time.Now())
				mu.Unlock()
			}
		}
	}()
	const interval = 50 * time.Millisecond
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.AmphoraID, cfg.HeartbeatKey = "amp", "k"
	cfg.Controllers = []string{hm.LocalAddr().String()}
	cfg.HeartbeatInterval = interval
	cfg.BasePath, cfg.SpoolDir = dir, filepath.Join(dir, "marks")
	cfg.VPP.Dataplane, cfg.VPP.LBConfigFile = "sim", filepath.Join(dir, "lb.json")
	cfg.VPP.StartupMinDelay, cfg.VPP.StartupMaxDelay = 0, 2*time.Second
	cfg.VPP.SyncInterval = 20 * time.Millisecond
	if err := os.WriteFile(cfg.VPP.LBConfigFile, []byte(agentLB), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := New(Options{Config: &cfg, Dataplane: dp, Logger: quietLogger(), Prober: p.probe, Tick: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() { cancel(); <-done }()
	eventually(t, "heartbeats", func() bool { return !a.Sensor().Record().LastSend.IsZero() })

	dp.hung.Store(true)
	eventually(t, "the agent waiting on VPP", func() bool { return dp.waiting.Load() > 0 })
	mu.Lock()
	from := len(arrivals)
	mu.Unlock()
	const window = 1500 * time.Millisecond
	time.Sleep(window)
	if dp.waiting.Load() == 0 {
		t.Fatal("the agent stopped waiting on VPP: the window proves nothing")
	}
	mu.Lock()
	got := append([]time.Time(nil), arrivals[from:]...)
	mu.Unlock()
	var maxGap time.Duration
	for i := 1; i < len(got); i++ {
		maxGap = max(maxGap, got[i].Sub(got[i-1]))
	}
	t.Logf("%d heartbeats in %v while VPP hung, largest gap %v (interval %v)", len(got), window, maxGap, interval)
	// 30 are due; the bounds leave room for a loaded machine, and stay far
	// below the 5 s one VPP call may take.
	if len(got) < 10 || maxGap > 10*interval {
		t.Errorf("%d heartbeats, largest gap %v, while VPP hung; want them every %v", len(got), maxGap, interval)
	}
}
