package vpp

import (
	"context"
	"testing"
	"time"

	"github.com/octavia-vpp/health/vpp/internal/fakevpp"
)

// TestReconnectDoesNotRecountLifetimeCounters: the API connection drops
// while VPP keeps running and forwarding (same boot time, same VIP
// indices). A new connection is not a VPP reset: with no new traffic the
// totals must not move, and new traffic must be counted once.
func TestReconnectDoesNotRecountLifetimeCounters(t *testing.T) {
	for _, tc := range []struct {
		name   string
		flavor fakevpp.Flavor
		stats  bool
	}{
		{"master with stats", fakevpp.Master, true},
		{"released with stats", fakevpp.Released, true},
		{"released without stats", fakevpp.Released, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := startFake(t, tc.flavor, tc.stats)
			k := VIPKey{Prefix: p("192.0.2.10/32"), Protocol: ProtoTCP, Port: 80}
			fk := fakevpp.Key{Prefix: k.Prefix, Protocol: 6, Port: 80}
			if _, err := e.g.SyncVIP(context.Background(), VIP{Key: k, Backends: []Backend{{Addr: a("10.0.0.1"), Weight: 100}}}); err != nil {
				t.Fatal(err)
			}
			// 10 flows of one 100-byte packet: 10 packets, 1,000 bytes.
			if err := e.srv.Model().SendFlows(fk, 10, 1, 100); err != nil {
				t.Fatal(err)
			}
			e.scrapeNow()
			before, _ := e.g.Counters().VIP(k)

			for round := range 2 {
				e.srv.Stop()
				for deadline := time.Now().Add(5 * time.Second); e.g.State().Connected; time.Sleep(5 * time.Millisecond) {
					if time.Now().After(deadline) {
						t.Fatal("never noticed the disconnect")
					}
				}
				if err := e.srv.Resume(); err != nil {
					t.Fatal(err)
				}
				e.waitConnected(uint64(round) + 2)
				e.scrapeNow()
				after, _ := e.g.Counters().VIP(k)
				if after.FirstPackets != before.FirstPackets || after.RoutePackets != before.RoutePackets ||
					after.RouteBytes != before.RouteBytes || after.NextPackets != before.NextPackets {
					t.Fatalf("reconnect %d without traffic moved the totals: before %+v after %+v", round+1, before, after)
				}
			}
			if err := e.srv.Model().SendFlows(fk, 3, 1, 100); err != nil {
				t.Fatal(err)
			}
			e.scrapeNow()
			after, _ := e.g.Counters().VIP(k)
			wantBytes := uint64(1300)
			if !tc.stats {
				wantBytes = 0 // no route counters without a stats socket
			}
			if after.FirstPackets != 13 || after.RouteBytes != wantBytes {
				t.Fatalf("new traffic after reconnects: %+v", after)
			}
		})
	}
}
