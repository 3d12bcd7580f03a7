package agent

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/octavia-vpp/health/heartbeat"
	"github.com/octavia-vpp/health/vpp"
	"github.com/octavia-vpp/health/vpp/sim"
)

// fakeProber answers probes from a table the test controls; a member
// whose entry is "block" waits until it changes.
type fakeProber struct {
	mu      sync.Mutex
	state   map[string]string // by probe address: "pass", "fail", "block"
	changed chan struct{}
}

func newFakeProber() *fakeProber {
	return &fakeProber{state: map[string]string{}, changed: make(chan struct{})}
}

func (f *fakeProber) set(addr, s string) {
	f.mu.Lock()
	f.state[addr] = s
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
}

func (f *fakeProber) probe(ctx context.Context, spec ProbeSpec) error {
	for {
		f.mu.Lock()
		s, ch := f.state[spec.Addr.String()], f.changed
		f.mu.Unlock()
		switch s {
		case "pass":
			return nil
		case "block":
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return ctx.Err()
			}
		default:
			return errors.New("probe failed")
		}
	}
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

type testAgent struct {
	*Agent
	dp     *sim.Sim
	prober *fakeProber
	cfg    *Config
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan error
}

const agentLB = `{"loadbalancer_id": "lb", "vip_addresses": ["192.0.2.10"],
 "listeners": [{"id": "l1", "protocol": "TCP", "protocol_port": 80, "default_pool_id": "p1"}],
 "pools": [{"id": "p1", "members": [
     {"id": "m1", "address": "10.0.0.1", "protocol_port": 80, "weight": 256},
     {"id": "m2", "address": "10.0.0.2", "protocol_port": 80, "weight": 256, "backup": true}],
   "healthmonitor": {"type": "TCP", "delay": 0.02, "timeout": 1, "max_retries": 1, "max_retries_down": 1}}]}`

var vip80 = vpp.VIPKey{Prefix: netip.MustParsePrefix("192.0.2.10/32"), Protocol: vpp.ProtoTCP, Port: 80}

func newTestAgent(t *testing.T, lb string, dp *sim.Sim, prober *fakeProber, tune func(*Config)) *testAgent {
	t.Helper()
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.AmphoraID, cfg.HeartbeatKey = "amp", "k"
	cfg.HeartbeatInterval = 50 * time.Millisecond
	cfg.BasePath, cfg.SpoolDir = dir, filepath.Join(dir, "marks")
	cfg.VPP.Dataplane, cfg.VPP.LBConfigFile = "sim", filepath.Join(dir, "lb.json")
	cfg.VPP.StartupMinDelay, cfg.VPP.StartupMaxDelay = 0, 2*time.Second
	cfg.VPP.SyncInterval = 100 * time.Millisecond
	if tune != nil {
		tune(&cfg)
	}
	if err := os.WriteFile(cfg.VPP.LBConfigFile, []byte(lb), 0o600); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	a, err := New(Options{Config: &cfg, Dataplane: dp, Logger: quietLogger(), Registry: reg, Prober: prober.probe, Tick: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ta := &testAgent{Agent: a, dp: dp, prober: prober, cfg: &cfg, reg: reg, cancel: cancel, done: make(chan error, 1)}
	go func() { ta.done <- a.Run(ctx) }()
	t.Cleanup(ta.stop)
	return ta
}

func (ta *testAgent) stop() {
	ta.cancel()
	<-ta.done
	ta.done <- nil // later stops return at once
}

func backendWeights(t *testing.T, dp *sim.Sim, key vpp.VIPKey) map[string]uint8 {
	t.Helper()
	vips, err := dp.VIPs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vips {
		if v.Key == key {
			out := map[string]uint8{}
			for _, b := range v.Backends {
				if b.Active {
					out[b.Addr.String()] = b.Weight
				}
			}
			return out
		}
	}
	return nil
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func weightsAre(t *testing.T, dp *sim.Sim, want map[string]uint8) func() bool {
	return func() bool {
		got := backendWeights(t, dp, vip80)
		if len(got) != len(want) {
			return false
		}
		for k, v := range want {
			if got[k] != v {
				return false
			}
		}
		return true
	}
}

func TestAgentWarmupAndBackupFailover(t *testing.T) {
	p := newFakeProber()
	p.set("10.0.0.1", "block")
	p.set("10.0.0.2", "block")
	dp := sim.New(sim.Config{Logger: quietLogger()})
	ta := newTestAgent(t, agentLB, dp, p, nil)

	// No probe result yet: nothing is written.
	time.Sleep(100 * time.Millisecond)
	if w := backendWeights(t, dp, vip80); w != nil {
		t.Fatalf("VIP written during warm-up: %v", w)
	}
	p.set("10.0.0.1", "pass")
	time.Sleep(50 * time.Millisecond)
	if w := backendWeights(t, dp, vip80); w != nil {
		t.Fatalf("VIP written before every member had a result: %v", w)
	}
	p.set("10.0.0.2", "pass")
	eventually(t, "warm-up release with the backup idle", weightsAre(t, dp, map[string]uint8{"10.0.0.1": 100, "10.0.0.2": 0}))

	// The primary fails: the backup takes over; the primary comes back.
	p.set("10.0.0.1", "fail")
	eventually(t, "backup takes over", weightsAre(t, dp, map[string]uint8{"10.0.0.1": 0, "10.0.0.2": 100}))
	st := ta.Status()
	if st.Members[0].Status != "DOWN" || st.Members[1].Status != "UP" || st.Listeners[0].State != "up" || st.Listeners[0].PoolStatus != "UP" {
		t.Errorf("status %+v", st)
	}
	p.set("10.0.0.1", "pass")
	eventually(t, "primary back", weightsAre(t, dp, map[string]uint8{"10.0.0.1": 100, "10.0.0.2": 0}))

	// Both down: the listener goes down, the pool reports DOWN.
	p.set("10.0.0.1", "fail")
	p.set("10.0.0.2", "fail")
	eventually(t, "all down", weightsAre(t, dp, map[string]uint8{"10.0.0.1": 0, "10.0.0.2": 0}))
	eventually(t, "listener down", func() bool { return ta.Status().Listeners[0].State == "down" })
	msg, err := ta.BuildHeartbeat(false)
	if err != nil || msg.Pools[0].Status != "DOWN" {
		t.Errorf("heartbeat pool %+v %v", msg.Pools, err)
	}
	if n := testutil.ToFloat64(ta.m.listenerTransitions.WithLabelValues("down")); n < 1 {
		t.Errorf("listener down transitions %v", n)
	}
}

func TestAgentWarmupMaxDelayAndRestartNeutrality(t *testing.T) {
	dp := sim.New(sim.Config{Logger: quietLogger()})
	// A previous agent left the VIP programmed.
	if _, err := dp.SyncVIP(context.Background(), vpp.VIP{Key: vip80, Backends: []vpp.Backend{
		{Addr: netip.MustParseAddr("10.0.0.1"), Weight: 100}, {Addr: netip.MustParseAddr("10.0.0.2"), Weight: 0}}}); err != nil {
		t.Fatal(err)
	}
	p := newFakeProber()
	p.set("10.0.0.1", "block")
	p.set("10.0.0.2", "pass")
	const maxDelay = 300 * time.Millisecond
	started := time.Now()
	newTestAgent(t, agentLB, dp, p, func(c *Config) { c.VPP.StartupMaxDelay = maxDelay })
	// While m1 has no result the old weights stay: no weight 0 pushed. Only
	// reads that finished before the maximum delay can tell, so on a slow
	// machine fewer reads count; none of them may see the release.
	for range 20 {
		w := backendWeights(t, dp, vip80)
		if time.Since(started) >= maxDelay {
			break
		}
		if w["10.0.0.1"] != 100 {
			t.Fatalf("weights during warm-up %v", w)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// At the maximum delay the VIP is written anyway: m1 unknown gets
	// weight 0 (no flush), the backup takes over.
	eventually(t, "release at max delay", weightsAre(t, dp, map[string]uint8{"10.0.0.1": 0, "10.0.0.2": 100}))
}

func TestAgentReloadAndResync(t *testing.T) {
	p := newFakeProber()
	p.set("10.0.0.1", "pass")
	p.set("10.0.0.2", "pass")
	dp := sim.New(sim.Config{Logger: quietLogger()})
	ta := newTestAgent(t, agentLB, dp, p, nil)
	eventually(t, "start", weightsAre(t, dp, map[string]uint8{"10.0.0.1": 100, "10.0.0.2": 0}))

	// An invalid file keeps the running description and says why.
	if err := os.WriteFile(ta.cfg.VPP.LBConfigFile, []byte(`{"loadbalancer_id": "lb", "vip_addresses": []}`), 0o600); err != nil {
		t.Fatal(err)
	}
	err := ta.Reload(context.Background())
	if err == nil || !strings.Contains(err.Error(), "vip_addresses is empty") {
		t.Errorf("reload of an invalid file: %v", err)
	}
	if n := testutil.ToFloat64(ta.m.reloads.WithLabelValues("invalid")); n < 1 {
		t.Errorf("invalid loads %v", n)
	}
	if w := backendWeights(t, dp, vip80); w["10.0.0.1"] != 100 {
		t.Errorf("weights after an invalid reload %v", w)
	}

	// A changed file is picked up without SIGHUP: m2 no longer backup,
	// weight 128 -> 50.
	next := strings.Replace(agentLB, `"weight": 256, "backup": true`, `"weight": 128`, 1)
	if err := os.WriteFile(ta.cfg.VPP.LBConfigFile, []byte(next), 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, "reload on change", weightsAre(t, dp, map[string]uint8{"10.0.0.1": 100, "10.0.0.2": 50}))

	// Drift is repaired by the periodic full sync.
	if _, err := dp.SyncVIP(context.Background(), vpp.VIP{Key: vip80, Backends: []vpp.Backend{
		{Addr: netip.MustParseAddr("10.0.0.1"), Weight: 100}, {Addr: netip.MustParseAddr("10.0.0.2"), Weight: 7}}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "drift repaired", weightsAre(t, dp, map[string]uint8{"10.0.0.1": 100, "10.0.0.2": 50}))

	// A VPP restart: the layer re-pushes, the agent re-syncs.
	dp.Restart()
	eventually(t, "after VPP restart", weightsAre(t, dp, map[string]uint8{"10.0.0.1": 100, "10.0.0.2": 50}))

	// A disabled member is removed; a removed listener removes its VIP.
	next = strings.Replace(next, `"weight": 128`, `"weight": 128, "enabled": false`, 1)
	if err := os.WriteFile(ta.cfg.VPP.LBConfigFile, []byte(next), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := ta.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "disabled member removed", weightsAre(t, dp, map[string]uint8{"10.0.0.1": 100}))
	next = strings.Replace(next, `"protocol_port": 80, "default_pool_id": "p1"`, `"protocol_port": 80, "enabled": false, "default_pool_id": "p1"`, 1)
	if err := os.WriteFile(ta.cfg.VPP.LBConfigFile, []byte(next), 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, "VIP removed", func() bool { return backendWeights(t, dp, vip80) == nil })
	msg, _ := ta.BuildHeartbeat(false)
	if len(msg.Listeners) != 0 {
		t.Errorf("a disabled listener is reported: %+v", msg.Listeners)
	}
}

func TestAgentMarksAndAPI(t *testing.T) {
	p := newFakeProber()
	p.set("10.0.0.1", "pass")
	p.set("10.0.0.2", "pass")
	dp := sim.New(sim.Config{Logger: quietLogger()})
	lb := strings.Replace(agentLB, `"weight": 256, "backup": true`, `"weight": 256`, 1)
	hm, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hm.Close()
	ta := newTestAgent(t, lb, dp, p, func(c *Config) {
		c.Controllers = []string{hm.LocalAddr().String()}
		c.VPPUnreachableLimit = 300 * time.Millisecond
	})
	eventually(t, "start", weightsAre(t, dp, map[string]uint8{"10.0.0.1": 100, "10.0.0.2": 100}))

	api := httptest.NewServer(NewAPI(APIConfig{Agent: ta.Agent, Gatherer: ta.reg}))
	defer api.Close()
	locked := httptest.NewServer(NewAPI(APIConfig{Agent: ta.Agent, AllowRemoteMarks: true}))
	defer locked.Close()
	post := func(srv *httptest.Server, body string) int {
		resp, err := http.Post(srv.URL+"/marks", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(api, `{"action": "drain", "target": "m1"}`); code != http.StatusForbidden {
		t.Errorf("POST /marks without allow_remote_marks: %d", code)
	}
	if code := post(locked, `{"action": "drain", "target": "../m1"}`); code != http.StatusBadRequest {
		t.Errorf("bad target: %d", code)
	}
	if code := post(locked, `{"action": "drain", "target": "m1", "reason": "test"}`); code != http.StatusOK {
		t.Fatalf("drain over the API: %d", code)
	}
	eventually(t, "drain applied", weightsAre(t, dp, map[string]uint8{"10.0.0.1": 0, "10.0.0.2": 100}))
	// maint on the listener removes every member (flush).
	if _, err := ApplyMark(ta.Spool(), MarkRequest{Action: "maint", Target: "l1", Expires: "200ms"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "maint applied", weightsAre(t, dp, map[string]uint8{}))
	msg, _ := ta.BuildHeartbeat(false)
	if msg.Pools[0].Members[0].Status != "MAINT" || msg.Pools[0].Members[1].Status != "MAINT" || msg.Pools[0].Status != "DOWN" {
		t.Errorf("heartbeat under maintenance %+v", msg.Pools)
	}
	// The maint mark expires; the drain mark is still there.
	eventually(t, "maint expired", weightsAre(t, dp, map[string]uint8{"10.0.0.1": 0, "10.0.0.2": 100}))
	msg, _ = ta.BuildHeartbeat(false)
	if msg.Pools[0].Members[0].Status != "DRAIN" {
		t.Errorf("drained member reported %q", msg.Pools[0].Members[0].Status)
	}

	get := func(path string) (int, []byte) {
		resp, err := http.Get(api.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	eventually(t, "a heartbeat sent", func() bool { return !ta.Sensor().Record().LastSend.IsZero() })
	code, body := get("/health")
	if code != http.StatusOK || !strings.Contains(string(body), `"healthy": true`) {
		t.Errorf("/health %d %s", code, body)
	}
	code, body = get("/status")
	var st Status
	if code != http.StatusOK || json.Unmarshal(body, &st) != nil || len(st.Members) != 2 || st.Members[0].Mark != "drain" || len(st.Marks) != 1 {
		t.Errorf("/status %d %s", code, body)
	}
	code, body = get("/status/count")
	var counts map[string]uint64
	if code != http.StatusOK || json.Unmarshal(body, &counts) != nil || counts[hm.LocalAddr().String()] == 0 {
		t.Errorf("/status/count %d %s", code, body)
	}
	code, body = get("/metrics")
	if code != http.StatusOK || !strings.Contains(string(body), "amphora_agent_probes_total") || !strings.Contains(string(body), "amphora_agent_healthy 1") {
		t.Errorf("/metrics %d %s", code, body)
	}
	code, body = get("/heartbeat")
	if code != http.StatusOK || !strings.HasPrefix(string(body), `{"id": "amp", "seq": `) {
		t.Errorf("/heartbeat %d %s", code, body)
	}

	// Self-health through the API: VPP unreachable past the limit.
	dp.SetReachable(false)
	eventually(t, "faulty", func() bool { c, _ := get("/health"); return c == http.StatusServiceUnavailable })
	_, body = get("/health")
	if !strings.Contains(string(body), "vpp unreachable") {
		t.Errorf("/health reason %s", body)
	}
	dp.SetReachable(true)
	eventually(t, "healthy again", func() bool { c, _ := get("/health"); return c == http.StatusOK })
}

func TestAgentWithInvalidDescriptionKeepsVPPAndIsFaulty(t *testing.T) {
	dp := sim.New(sim.Config{Logger: quietLogger()})
	if _, err := dp.SyncVIP(context.Background(), vpp.VIP{Key: vip80, Backends: []vpp.Backend{{Addr: netip.MustParseAddr("10.0.0.1"), Weight: 100}}}); err != nil {
		t.Fatal(err)
	}
	hm, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hm.Close()
	ta := newTestAgent(t, `{"loadbalancer_id": `, dp, newFakeProber(), func(c *Config) {
		c.Controllers = []string{hm.LocalAddr().String()}
		c.VPP.StartupMaxDelay = 50 * time.Millisecond
		c.VPP.SyncInterval = 20 * time.Millisecond
	})
	eventually(t, "heartbeats start at the maximum delay", func() bool { return !ta.Sensor().Record().LastSend.IsZero() })
	time.Sleep(100 * time.Millisecond) // several full syncs
	if w := backendWeights(t, dp, vip80); w["10.0.0.1"] != 100 {
		t.Errorf("VPP changed without a valid description: %v", w)
	}
	const why = "parse lb description: unexpected EOF"
	if h := ta.Sensor().Health(); h.Healthy || h.Reason != "no valid lb config: "+why || h.LBConfigRejected != why {
		t.Errorf("self-health %+v", h)
	}
	msg, _ := ta.BuildHeartbeat(false)
	if len(msg.Listeners) != 0 || len(msg.Pools) != 0 {
		t.Errorf("message %+v", msg)
	}

	// /health names a rejected description and why: faulty without a
	// valid one, healthy but still naming it while the running one is kept.
	api := httptest.NewServer(NewAPI(APIConfig{Agent: ta.Agent}))
	defer api.Close()
	health := func() (int, SelfHealth) {
		t.Helper()
		resp, err := http.Get(api.URL + "/health")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var h SelfHealth
		if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, h
	}
	if code, h := health(); code != http.StatusServiceUnavailable || h.LBConfigRejected != why {
		t.Errorf("/health %d %+v; want 503 naming %q", code, h, why)
	}
	if err := os.WriteFile(ta.cfg.VPP.LBConfigFile, []byte(agentLB), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := ta.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if code, h := health(); code != http.StatusOK || h.LBConfigRejected != "" {
		t.Errorf("/health after a valid description %d %+v", code, h)
	}
	if err := os.WriteFile(ta.cfg.VPP.LBConfigFile, []byte(`{"loadbalancer_id": "lb", "vip_addresses": ["not-an-address"]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	rerr := ta.Reload(context.Background())
	if rerr == nil {
		t.Fatal("a bad description was accepted")
	}
	if code, h := health(); code != http.StatusOK || h.LBConfigRejected != rerr.Error() {
		t.Errorf("/health with a rejected description over a running one %d %+v; want 200 naming %q", code, h, rerr)
	}
}

func TestAgentListenerOnTwoVIPAddressesSumsCounters(t *testing.T) {
	p := newFakeProber()
	p.set("10.0.0.1", "pass")
	p.set("10.0.0.2", "pass")
	dp := sim.New(sim.Config{Logger: quietLogger()})
	lb := strings.Replace(agentLB, `"vip_addresses": ["192.0.2.10"]`, `"vip_addresses": ["192.0.2.10", "2001:db8::10"]`, 1)
	lb = strings.Replace(lb, `"healthmonitor"`, `"session_persistence": {"type": "SOURCE_IP"}, "healthmonitor"`, 1)
	hm, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hm.Close()
	// One heartbeat at warm-up, then none during the test.
	ta := newTestAgent(t, lb, dp, p, func(c *Config) {
		c.Controllers = []string{hm.LocalAddr().String()}
		c.HeartbeatInterval = time.Hour
	})
	vip6 := vpp.VIPKey{Prefix: netip.MustParsePrefix("2001:db8::10/128"), Protocol: vpp.ProtoTCP, Port: 80}
	eventually(t, "both VIPs", func() bool { return backendWeights(t, dp, vip80) != nil && backendWeights(t, dp, vip6) != nil })
	eventually(t, "the first heartbeat", func() bool { return !ta.Sensor().Record().LastSend.IsZero() })
	vips, err := dp.VIPs(context.Background())
	if err != nil || len(vips) != 2 || !vips[0].SrcIPSticky || !vips[1].SrcIPSticky {
		t.Fatalf("VIPs %+v %v", vips, err)
	}
	if err := dp.SendFlows(vip80, 2, 1, 100); err != nil {
		t.Fatal(err)
	}
	if err := dp.SendFlows(vip6, 3, 1, 10); err != nil {
		t.Fatal(err)
	}
	msg, err := ta.BuildHeartbeat(false)
	if err != nil {
		t.Fatal(err)
	}
	// The deltas are the totals of both VIPs since the first heartbeat;
	// conns is the flow estimate (every flow pinned to a backend).
	s := msg.Listeners[0].Stats
	if s.RX != 2*100+3*10 || s.TotConns != 5 || s.Conns != 5 || s.TX != 0 || s.EReq != 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestAgentHeartbeatKeyAndControllersChange(t *testing.T) {
	a1, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer a1.Close()
	a2, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer a2.Close()
	ta := newTestAgent(t, agentLB, sim.New(sim.Config{Logger: quietLogger()}), newFakeProber(), func(c *Config) {
		c.Controllers = []string{a1.LocalAddr().String()}
		c.HeartbeatInterval = 20 * time.Millisecond
	})
	read := func(c net.PacketConn) []byte {
		buf := make([]byte, 65536)
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, _, err := c.ReadFrom(buf)
		if err != nil {
			t.Fatalf("no heartbeat: %v", err)
		}
		return buf[:n]
	}
	open := func(key string, d []byte) error {
		kr, _ := heartbeat.NewKeyring(heartbeat.KeyringConfig{Keys: []string{key}})
		_, _, err := kr.Open(d)
		return err
	}
	if err := open("k", read(a1)); err != nil {
		t.Fatalf("first key: %v", err)
	}
	if err := ta.SetHeartbeatKey("k2"); err != nil {
		t.Fatal(err)
	}
	if err := ta.SetControllers([]string{a2.LocalAddr().String()}); err != nil {
		t.Fatal(err)
	}
	// The next datagrams go to the new controller, sealed with the new
	// key (one built just before the change may still carry the old one).
	var err2 error
	for range 3 {
		if err2 = open("k2", read(a2)); err2 == nil {
			break
		}
	}
	if err2 != nil {
		t.Errorf("new key: %v", err2)
	}
}
