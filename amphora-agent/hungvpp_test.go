package agent

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/octavia-vpp/health/heartbeat"
	"github.com/octavia-vpp/health/vpp"
)

// The agent on the real dataplane layer (Govpp) and the project's fake
// VPP, run as a process of its own on a unix api.sock: when the fake stops
// answering but keeps the socket, VIP syncs wait for their deadline, and
// heartbeats keep their interval meanwhile.
func TestHungFakeVPPDoesNotDelayHeartbeats(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the fake VPP")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "fakevpp")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/octavia-vpp/health/vpp/internal/fakevpp/cmd/fakevpp").CombinedOutput(); err != nil {
		t.Fatalf("build fakevpp: %v\n%s", err, out)
	}
	socket := filepath.Join(dir, "api.sock")
	fake := exec.Command(bin, "-socket", socket)
	fake.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdin, err := fake.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := fake.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := fake.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); fake.Wait() }()
	replies := bufio.NewScanner(stdout)
	if !replies.Scan() || replies.Text() != "ready" {
		t.Fatalf("fakevpp: %q", replies.Text())
	}

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

	ctx, cancel := context.WithCancel(context.Background())
	g, err := vpp.NewGovpp(vpp.GovppConfig{APISocket: socket, Logger: quietLogger(), CallTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	gdone := make(chan error, 1)
	go func() { gdone <- g.Run(ctx) }()

	const interval = 50 * time.Millisecond
	cfg := DefaultConfig()
	cfg.AmphoraID, cfg.HeartbeatKey = "amp", "k"
	cfg.Controllers = []string{hm.LocalAddr().String()}
	cfg.HeartbeatInterval = interval
	cfg.BasePath, cfg.SpoolDir = dir, filepath.Join(dir, "marks")
	cfg.VPP.LBConfigFile = filepath.Join(dir, "lb.json")
	cfg.VPP.IP4Src = netip.MustParseAddr("192.0.2.1")
	cfg.VPP.StartupMinDelay, cfg.VPP.StartupMaxDelay = 0, time.Second
	cfg.VPP.SyncInterval = 100 * time.Millisecond
	// Three VIPs: each full sync waits on each.
	lb := `{"loadbalancer_id": "lb", "vip_addresses": ["192.0.2.10", "192.0.2.11", "192.0.2.12"],
 "listeners": [{"id": "l1", "protocol": "TCP", "protocol_port": 80, "default_pool_id": "p1"}],
 "pools": [{"id": "p1", "members": [{"id": "m1", "address": "10.0.0.1", "protocol_port": 80}]}]}`
	if err := os.WriteFile(cfg.VPP.LBConfigFile, []byte(lb), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := New(Options{Config: &cfg, Dataplane: g, Logger: quietLogger(), Tick: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() { cancel(); <-done; <-gdone }()
	eventually(t, "VIPs in VPP and heartbeats", func() bool {
		vips, err := g.VIPs(context.Background())
		return err == nil && len(vips) == 3 && !a.Sensor().Record().LastSend.IsZero()
	})

	if _, err := fmt.Fprintln(stdin, "hung"); err != nil {
		t.Fatal(err)
	}
	if !replies.Scan() || replies.Text() != "ok hung" {
		t.Fatalf("fakevpp hung: %q", replies.Text())
	}
	hungAt := time.Now()
	const window = 3 * time.Second
	time.Sleep(window)
	mu.Lock()
	var got []time.Time
	for _, at := range arrivals {
		if at.After(hungAt) {
			got = append(got, at)
		}
	}
	mu.Unlock()
	prev, maxGap := hungAt, time.Duration(0)
	for _, at := range append(got, hungAt.Add(window)) {
		maxGap = max(maxGap, at.Sub(prev))
		prev = at
	}
	t.Logf("%d heartbeats in %v while VPP hung, largest gap %v (interval %v)", len(got), window, maxGap, interval)
	// The VIP syncs did wait on the hung VPP in the window (each for its
	// 2 s deadline): their failures are counted once the deadline passes.
	eventually(t, "a VIP sync failing on the hung VPP", func() bool {
		return testutil.ToFloat64(a.m.syncs.WithLabelValues("error")) > 0
	})
	// 60 are due; the bounds leave room for a loaded machine, and stay far
	// below the 2 s one VPP call waits.
	if len(got) < 20 || maxGap > 10*interval {
		t.Errorf("%d heartbeats, largest gap %v, while VPP hung; want them every %v", len(got), maxGap, interval)
	}
}
