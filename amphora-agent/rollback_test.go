//go:build linux

package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/octavia-vpp/health/heartbeat"
	"github.com/octavia-vpp/health/vpp"
)

// TestCounterFileCrashesNeverRecount: the agent on the real dataplane
// layer (Govpp) against the project's fake VPP as a process of its own,
// with its stats socket (VPP's boot time known), so that the counter file
// is written without a sync before each heartbeat. The agent crashes
// (nothing written on the way out); then either VPP keeps running (a
// crash of the process, which keeps the kernel's page cache: the file is
// the last one written), or the machine restarts (a crash of the kernel:
// VPP starts afresh with its counters at zero, and the file is whatever
// reached the disk: the last one, an earlier one, none, an empty or a
// torn one). A new agent continues. What the heartbeats reported, over
// both agents, must equal what VPP counted: never a delta twice, and with
// the new agent's traffic sent after its first reading, none lost either.
func TestCounterFileCrashesNeverRecount(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the fake VPP")
	}
	bin := filepath.Join(t.TempDir(), "fakevppd")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/octavia-vpp/health/vpp/internal/fakevpp/fakevppd").CombinedOutput(); err != nil {
		t.Fatalf("build fakevppd: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		name   string
		reboot bool
		file   func(t *testing.T, path string, earlier []byte) // what reached the disk
	}{
		{"process crash, VPP keeps counting", false, nil},
		{"kernel crash, the last file on disk", true, nil},
		{"kernel crash, an earlier file on disk", true, func(t *testing.T, path string, earlier []byte) {
			writeTestFile(t, path, earlier)
		}},
		{"kernel crash, the file lost", true, func(t *testing.T, path string, _ []byte) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		}},
		{"kernel crash, the file empty", true, func(t *testing.T, path string, _ []byte) {
			writeTestFile(t, path, nil)
		}},
		{"kernel crash, the file torn", true, func(t *testing.T, path string, _ []byte) {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			writeTestFile(t, path, b[:len(b)/2])
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			fv := startFakeVPPD(t, bin, dir)
			rx := receiveListenerStats(t)
			counterFile := filepath.Join(dir, CounterFileName)

			a := startGovppAgent(t, dir, fv, rx.addr)
			rx.waitHeartbeats(t, 2)
			fv.traffic(t, 5)
			rx.waitReported(t, fv.counted())
			if n := a.syncs(); n != 1 {
				t.Errorf("%d syncs of the counter file, want the first write only (VPP's boot time known)", n)
			}
			earlier, err := os.ReadFile(counterFile)
			if err != nil {
				t.Fatal(err)
			}
			fv.traffic(t, 3)
			rx.waitReported(t, fv.counted())
			a.crash()

			if tc.reboot {
				fv.post(t, "/stop")
				time.Sleep(1100 * time.Millisecond) // the fake's boot time has whole seconds
				fv.post(t, "/start")
				if tc.file != nil {
					tc.file(t, counterFile, earlier)
				}
			} else {
				fv.traffic(t, 2) // counted while no agent runs
			}
			b := startGovppAgent(t, dir, fv, rx.addr)
			seen := rx.heartbeats()
			rx.waitHeartbeats(t, seen+3)
			// The new agent has read the VIP at least once by now: for a
			// file that gave no history, that reading was the baseline.
			if tc.reboot {
				fv.traffic(t, 4)
			}
			fv.traffic(t, 1)
			rx.waitReported(t, fv.counted())
			// Nothing more comes in later heartbeats.
			rx.waitHeartbeats(t, rx.heartbeats()+5)
			if got, want := rx.reported(), fv.counted(); got != want {
				t.Fatalf("reported %+v in all, VPP counted %+v", got, want)
			}
			t.Logf("reported %+v = counted; baselines %v, syncs %d", rx.reported(),
				testutil.ToFloat64(b.m.statsLost.WithLabelValues(LossCorrupt)), b.syncs())
			b.crash()
		})
	}
}

func writeTestFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o640); err != nil {
		t.Fatal(err)
	}
}

// fakeVPPD is fakevppd run as a process, with what it counted.
type fakeVPPD struct {
	control, api, stats string
	mu                  sync.Mutex
	bytes, first        int64
}

// listenerTotals are a listener's route bytes (rx) and first packets
// (total connections).
type listenerTotals struct{ RX, TotConns int64 }

var fakeVPPDControl = regexp.MustCompile(`fakevppd control=(\S+)`)

func startFakeVPPD(t *testing.T, bin, dir string) *fakeVPPD {
	t.Helper()
	fv := &fakeVPPD{api: filepath.Join(dir, "api.sock"), stats: filepath.Join(dir, "stats.sock")}
	cmd := exec.Command(bin, "-api", fv.api, "-stats", fv.stats)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		if m := fakeVPPDControl.FindStringSubmatch(sc.Text()); m != nil {
			fv.control = m[1]
			break
		}
	}
	if fv.control == "" {
		t.Fatal("fakevppd did not start")
	}
	go func() { _, _ = io.Copy(io.Discard, stderr) }()
	return fv
}

func (fv *fakeVPPD) post(t *testing.T, path string) []byte {
	t.Helper()
	resp, err := http.Post("http://"+fv.control+path, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("fakevppd %s: %s %s", path, resp.Status, b)
	}
	return b
}

// traffic opens flows new flows of one 100-byte packet to the VIP. They
// are added to what VPP counted before they are sent: a heartbeat may
// report them before the reply is back.
func (fv *fakeVPPD) traffic(t *testing.T, flows int) {
	t.Helper()
	fv.mu.Lock()
	fv.first += int64(flows)
	fv.bytes += int64(flows) * 100
	fv.mu.Unlock()
	var c struct {
		First      uint64 `json:"first"`
		RouteBytes uint64 `json:"route_bytes"`
		VIPs       int    `json:"vips"`
	}
	if err := json.Unmarshal(fv.post(t, fmt.Sprintf("/traffic?flows=%d&packets=1&bytes=100", flows)), &c); err != nil {
		t.Fatal(err)
	}
	if c.VIPs != 1 || c.First != uint64(flows) || c.RouteBytes != uint64(flows)*100 {
		t.Fatalf("traffic: %+v, want %d flows of 100 bytes to one VIP", c, flows)
	}
}

func (fv *fakeVPPD) counted() listenerTotals {
	fv.mu.Lock()
	defer fv.mu.Unlock()
	return listenerTotals{RX: fv.bytes, TotConns: fv.first}
}

// statsReceiver sums listener l1's deltas over every heartbeat it gets.
type statsReceiver struct {
	addr string
	mu   sync.Mutex
	sum  listenerTotals
	n    int
}

func receiveListenerStats(t *testing.T) *statsReceiver {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	kr, err := heartbeat.NewKeyring(heartbeat.KeyringConfig{Keys: []string{"k"}})
	if err != nil {
		t.Fatal(err)
	}
	r := &statsReceiver{addr: pc.LocalAddr().String()}
	go func() {
		buf := make([]byte, 65536)
		for {
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			msg, _, err := kr.Open(buf[:n])
			if err != nil {
				continue
			}
			r.mu.Lock()
			r.n++
			for _, l := range msg.Listeners {
				if l.ID == "l1" {
					r.sum.RX += l.Stats.RX
					r.sum.TotConns += l.Stats.TotConns
				}
			}
			r.mu.Unlock()
		}
	}()
	return r
}

func (r *statsReceiver) reported() listenerTotals {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sum
}

func (r *statsReceiver) heartbeats() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

func (r *statsReceiver) waitHeartbeats(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for r.heartbeats() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d heartbeats, waited for %d", r.heartbeats(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitReported waits until the heartbeats reported want, failing at once
// if they report more.
func (r *statsReceiver) waitReported(t *testing.T, want listenerTotals) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := r.reported()
		if got.RX > want.RX || got.TotConns > want.TotConns {
			t.Fatalf("reported %+v, VPP counted %+v: deltas reported twice", got, want)
		}
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("reported %+v, VPP counted %+v", got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// govppAgent is an agent with its Govpp dataplane, as the binary runs them.
type govppAgent struct {
	*Agent
	cancel context.CancelFunc
	done   sync.WaitGroup
}

func startGovppAgent(t *testing.T, dir string, fv *fakeVPPD, controller string) *govppAgent {
	t.Helper()
	g, err := vpp.NewGovpp(vpp.GovppConfig{APISocket: fv.api, Stats: vpp.StatsSocketDialer(fv.stats), Logger: quietLogger(),
		CallTimeout: 2 * time.Second, ScrapeInterval: 20 * time.Millisecond, PingInterval: 100 * time.Millisecond,
		ReconnectMin: 20 * time.Millisecond, ReconnectMax: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.AmphoraID, cfg.HeartbeatKey = "amp", "k"
	cfg.Controllers = []string{controller}
	cfg.HeartbeatInterval = 50 * time.Millisecond
	cfg.BasePath, cfg.SpoolDir = dir, filepath.Join(dir, "marks")
	cfg.VPP.LBConfigFile = filepath.Join(dir, "lb.json")
	cfg.VPP.IP4Src = netip.MustParseAddr("192.0.2.1")
	cfg.VPP.StartupMinDelay, cfg.VPP.StartupMaxDelay = 0, 5*time.Second
	cfg.VPP.SyncInterval = 100 * time.Millisecond
	writeTestFile(t, cfg.VPP.LBConfigFile, []byte(`{"loadbalancer_id": "lb", "vip_addresses": ["192.0.2.10"],
 "listeners": [{"id": "l1", "protocol": "TCP", "protocol_port": 80, "default_pool_id": "p1"}],
 "pools": [{"id": "p1", "members": [{"id": "m1", "address": "10.0.0.1", "protocol_port": 80}]}]}`))
	p := newFakeProber()
	p.set("10.0.0.1", "pass")
	a, err := New(Options{Config: &cfg, Dataplane: g, Logger: quietLogger(), Registry: prometheus.NewRegistry(),
		Prober: p.probe, Tick: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ga := &govppAgent{Agent: a, cancel: cancel}
	ga.done.Add(2)
	go func() { defer ga.done.Done(); _ = g.Run(ctx) }()
	go func() { defer ga.done.Done(); _ = a.Run(ctx) }()
	t.Cleanup(ga.crash)
	return ga
}

func (ga *govppAgent) syncs() int {
	ga.hbMu.Lock()
	defer ga.hbMu.Unlock()
	return ga.counterSyncs
}

// crash stops the agent and its dataplane; neither writes anything on the
// way out.
func (ga *govppAgent) crash() {
	ga.cancel()
	ga.done.Wait()
}
