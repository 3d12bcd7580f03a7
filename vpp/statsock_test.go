//go:build linux

package vpp

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/octavia-vpp/health/vpp/internal/fakevpp"
)

// TestStatsSocketClientOnFakeSegment reads the fake VPP's counters through
// govpp's real stats client (socket, descriptor passing, shared memory),
// across an API reconnect and a VPP restart.
func TestStatsSocketClientOnFakeSegment(t *testing.T) {
	statsPath := filepath.Join(filepath.Dir(sockPath(t)), "stats.sock")
	var ss *fakevpp.StatsSocket
	e := startFakeWith(t, fakeSetup{flavor: fakevpp.Master, wait: true, tweak: func(c *GovppConfig) {
		c.Stats = StatsSocketDialer(statsPath)
	}})
	ss = fakevpp.NewStatsSocket(e.srv, statsPath)
	if err := ss.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ss.Stop)
	k := VIPKey{Prefix: p("192.0.2.10/32"), Protocol: ProtoTCP, Port: 80}
	fk := fakevpp.Key{Prefix: k.Prefix, Protocol: 6, Port: 80}
	if _, err := e.g.SyncVIP(context.Background(), VIP{Key: k, Backends: []Backend{{Addr: a("10.0.0.1"), Weight: 100}}}); err != nil {
		t.Fatal(err)
	}
	send := func(n int) {
		t.Helper()
		if err := e.srv.Model().SendFlows(fk, n, 2, 100); err != nil {
			t.Fatal(err)
		}
		if err := ss.Refresh(); err != nil {
			t.Fatal(err)
		}
	}
	expect := func(first, bytes uint64) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			e.scrapeNow()
			c, _ := e.g.Counters().VIP(k)
			if c.FirstPackets == first && c.RouteBytes == bytes && !c.Base.Route.BootTime.IsZero() {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("counters %+v, want first %d bytes %d", c, first, bytes)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	send(3)
	expect(3, 600)
	// API socket away and back: nothing recounted.
	e.srv.Stop()
	for e.g.State().Connected {
		time.Sleep(5 * time.Millisecond)
	}
	send(1)
	if err := e.srv.Resume(); err != nil {
		t.Fatal(err)
	}
	e.waitConnected(2)
	expect(4, 800)
	// VPP restart: new segment, new boot time, counters from zero.
	ss.Stop()
	e.restart()
	if err := ss.Start(); err != nil {
		t.Fatal(err)
	}
	send(2)
	expect(6, 1200)
}
