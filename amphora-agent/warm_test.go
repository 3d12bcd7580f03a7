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

// gatedDataplane is the simulator whose VIP syncs wait until the test
// opens the gate; pushed tells whether VPP has been given a VIP.
type gatedDataplane struct {
	*sim.Sim
	gate    chan struct{}
	waiting atomic.Int64
	pushed  atomic.Bool
}

func (g *gatedDataplane) SyncVIP(ctx context.Context, v vpp.VIP) (vpp.SyncResult, error) {
	g.waiting.Add(1)
	select {
	case <-g.gate:
	case <-ctx.Done():
		g.waiting.Add(-1)
		return vpp.SyncResult{}, ctx.Err()
	}
	g.waiting.Add(-1)
	res, err := g.Sim.SyncVIP(ctx, v)
	if err == nil {
		g.pushed.Store(true)
	}
	return res, err
}

// startupWatch records the heartbeats and systemd notifications an agent
// sends, each with whether VPP had been given the VIP by then.
type startupWatch struct {
	mu     sync.Mutex
	beats  []heartbeat.Message
	early  []string // what happened before the VIP was pushed
	ready  atomic.Bool
	pushed func() bool
	// readyEarlyOK: READY=1 may precede the push (past startup_max_delay).
	readyEarlyOK bool
}

func (w *startupWatch) listen(t *testing.T, hm net.PacketConn, notify *net.UnixConn) {
	kr, err := heartbeat.NewKeyring(heartbeat.KeyringConfig{Keys: []string{"k"}})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		buf := make([]byte, 65536)
		for {
			n, _, err := hm.ReadFrom(buf)
			if err != nil {
				return
			}
			msg, _, err := kr.Open(buf[:n])
			if err != nil {
				continue
			}
			w.mu.Lock()
			w.beats = append(w.beats, *msg)
			if len(msg.Listeners) > 0 && !w.pushed() {
				w.early = append(w.early, "heartbeat reporting "+msg.Listeners[0].ID+" "+msg.Listeners[0].Status)
			}
			w.mu.Unlock()
		}
	}()
	go func() {
		buf := make([]byte, 256)
		for {
			n, err := notify.Read(buf)
			if err != nil {
				return
			}
			if string(buf[:n]) != "READY=1" {
				continue
			}
			w.mu.Lock()
			if !w.pushed() && !w.readyEarlyOK {
				w.early = append(w.early, "READY=1")
			}
			w.mu.Unlock()
			w.ready.Store(true)
		}
	}()
}

func (w *startupWatch) report() (beats []heartbeat.Message, early []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]heartbeat.Message(nil), w.beats...), append([]string(nil), w.early...)
}

// The agent is warm, reports its listeners and tells systemd it is ready
// only once VPP has the VIPs: while the VIP sync waits on VPP, nothing is
// sent before startup_max_delay, and from then on heartbeats and READY=1
// go out but the heartbeats leave the listener out, as with a VPP never
// reached.
func TestAgentWarmFollowsTheVIPPush(t *testing.T) {
	for _, tc := range []struct {
		name     string
		maxDelay time.Duration
	}{
		{"vpp answers within the warm-up", time.Minute},
		{"vpp answers after startup_max_delay", 300 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			notifyPath := filepath.Join(dir, "notify.sock")
			notify, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notifyPath, Net: "unixgram"})
			if err != nil {
				t.Fatal(err)
			}
			defer notify.Close()
			t.Setenv("NOTIFY_SOCKET", notifyPath)
			t.Setenv("WATCHDOG_USEC", "")
			hm, err := net.ListenPacket("udp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer hm.Close()
			dp := &gatedDataplane{Sim: sim.New(sim.Config{Logger: quietLogger()}), gate: make(chan struct{})}
			// Past startup_max_delay READY=1 goes out without VPP, so
			// that start-up never waits longer.
			w := &startupWatch{pushed: dp.pushed.Load, readyEarlyOK: tc.maxDelay < time.Minute}
			w.listen(t, hm, notify)
			p := newFakeProber()
			p.set("10.0.0.1", "pass")
			p.set("10.0.0.2", "pass")
			cfg := DefaultConfig()
			cfg.AmphoraID, cfg.HeartbeatKey = "amp", "k"
			cfg.Controllers = []string{hm.LocalAddr().String()}
			cfg.HeartbeatInterval = 50 * time.Millisecond
			cfg.BasePath, cfg.SpoolDir = dir, filepath.Join(dir, "marks")
			cfg.VPP.Dataplane, cfg.VPP.LBConfigFile = "sim", filepath.Join(dir, "lb.json")
			cfg.VPP.StartupMinDelay, cfg.VPP.StartupMaxDelay = 0, tc.maxDelay
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

			eventually(t, "the VIP sync waiting on VPP", func() bool { return dp.waiting.Load() > 0 })
			if a.Status().Warm {
				t.Error("warm while VPP has not been given the VIP")
			}
			if tc.maxDelay < time.Minute {
				// Heartbeats keep their own schedule past the warm-up,
				// without the listener VPP has not been given.
				eventually(t, "heartbeats past startup_max_delay", func() bool {
					beats, _ := w.report()
					return len(beats) >= 3 && w.ready.Load()
				})
			} else {
				// Room for a heartbeat or READY=1 to go out too early.
				time.Sleep(20 * a.tick)
			}
			if beats, early := w.report(); len(early) > 0 {
				t.Fatalf("before VPP had the VIP: %q (%d heartbeats)", early, len(beats))
			}

			close(dp.gate)
			eventually(t, "a heartbeat reporting the listener and READY=1", func() bool {
				beats, _ := w.report()
				return len(beats) > 0 && len(beats[len(beats)-1].Listeners) == 1 && w.ready.Load()
			})
			beats, early := w.report()
			if len(early) > 0 {
				t.Errorf("before VPP had the VIP: %q", early)
			}
			if l := beats[len(beats)-1].Listeners[0]; l.ID != "l1" || l.Status != "OPEN" {
				t.Errorf("listener %+v; want l1 OPEN", l)
			}
			if !a.Status().Warm {
				t.Error("not warm once VPP has the VIP")
			}
		})
	}
}
