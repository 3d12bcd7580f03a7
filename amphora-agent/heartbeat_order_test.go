package agent

import (
	"net"
	"testing"
	"time"

	"github.com/octavia-vpp/health/vpp/sim"
)

// Every delta a sent heartbeat carries is already in the counter file
// when the datagram arrives: the file is written and synced before the
// send (outside the agent's main lock), so a crash at any point never
// makes the next process report those deltas again.
func TestCounterFileOnDiskBeforeHeartbeatLeaves(t *testing.T) {
	p := newFakeProber()
	p.set("10.0.0.1", "pass")
	p.set("10.0.0.2", "pass")
	dp := sim.New(sim.Config{Logger: quietLogger()})
	hm, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hm.Close()
	ta := newTestAgent(t, agentLB, dp, p, func(c *Config) {
		c.Controllers = []string{hm.LocalAddr().String()}
		c.HeartbeatInterval = 20 * time.Millisecond
	})
	eventually(t, "the VIP", func() bool { return backendWeights(t, dp, vip80) != nil })
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(3 * time.Millisecond):
				_ = dp.SendFlows(vip80, 1, 1, 100)
			}
		}
	}()
	var reported, withTraffic int64
	buf := make([]byte, 65536)
	_ = hm.SetReadDeadline(time.Now().Add(20 * time.Second))
	for n := 0; n < 40; n++ {
		size, _, err := hm.ReadFrom(buf)
		if err != nil {
			t.Fatal(err)
		}
		// Read the file before anything else: the next heartbeat may
		// move it on, never back.
		f, ferr := LoadCounterFile(ta.cfg.CounterFile())
		msg, _, err := ta.keyring.Open(buf[:size])
		if err != nil {
			t.Fatal(err)
		}
		if ferr != nil {
			t.Fatalf("heartbeat %d: %v", msg.Seq, ferr)
		}
		for _, l := range msg.Listeners {
			reported += l.Stats.RX
			if l.Stats.RX > 0 {
				withTraffic++
			}
		}
		if onDisk := f.Listeners["l1"].Bin; onDisk < reported {
			t.Fatalf("heartbeat %d arrived with %d bytes reported in all, the counter file holds %d", msg.Seq, reported, onDisk)
		}
	}
	if withTraffic < 10 {
		t.Fatalf("only %d heartbeats carried traffic", withTraffic)
	}
}
