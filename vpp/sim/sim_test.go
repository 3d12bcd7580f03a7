package sim

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"testing"

	"github.com/octavia-vpp/health/vpp"
	"github.com/octavia-vpp/health/vpp/internal/dptest"
)

func newSim() *Sim {
	return New(Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
}

// TestConformance runs the shared Dataplane table against the simulator.
func TestConformance(t *testing.T) {
	dptest.Run(t, func(t *testing.T) *dptest.Harness {
		s := newSim()
		return &dptest.Harness{
			DP:       s,
			Weighted: true,
			SendFlows: func(k vpp.VIPKey, n int) {
				if err := s.SendFlows(k, n, 2, 100); err != nil {
					t.Fatal(err)
				}
			},
			Scrape:  func() {},
			Restart: s.Restart,
		}
	})
}

func TestUnreachable(t *testing.T) {
	s := newSim()
	ctx := context.Background()
	k := vpp.VIPKey{Prefix: netip.MustParsePrefix("192.0.2.10/32"), Protocol: vpp.ProtoTCP, Port: 80}
	b := netip.MustParseAddr("10.0.0.1")
	s.SetReachable(false)
	if st := s.State(); st.Connected || st.LastError == "" {
		t.Fatalf("state %+v", st)
	}
	if _, err := s.SyncVIP(ctx, vpp.VIP{Key: k, Backends: []vpp.Backend{{Addr: b, Weight: 100}}}); !errors.Is(err, vpp.ErrNotConnected) {
		t.Fatalf("sync: %v", err)
	}
	if _, err := s.SyncVIP(ctx, vpp.VIP{Key: k, Backends: []vpp.Backend{{Addr: b, Weight: 0}}}); !errors.Is(err, vpp.ErrNotConnected) {
		t.Fatalf("reweigh: %v", err)
	}
	if _, err := s.VIPs(ctx); !errors.Is(err, vpp.ErrNotConnected) {
		t.Fatalf("vips: %v", err)
	}
	gen := s.State().Generation
	s.SetReachable(true)
	// The desired state (the weight of the last sync while down) was pushed on reconnect.
	vips, err := s.VIPs(ctx)
	if err != nil || len(vips) != 1 || vips[0].Backends[0].Weight != 0 || s.State().Generation != gen+1 {
		t.Fatalf("after reconnect: %+v %v %+v", vips, err, s.State())
	}
}

func TestWeightedSpread(t *testing.T) {
	s := newSim()
	k := vpp.VIPKey{Prefix: netip.MustParsePrefix("192.0.2.10/32")}
	b1, b2 := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	if _, err := s.SyncVIP(context.Background(), vpp.VIP{Key: k, Backends: []vpp.Backend{{Addr: b1, Weight: 75}, {Addr: b2, Weight: 25}}}); err != nil {
		t.Fatal(err)
	}
	if err := s.SendFlows(k, 100, 1, 60); err != nil {
		t.Fatal(err)
	}
	c, _ := s.Counters().VIP(k)
	if c.Flows[b1] != 75 || c.Flows[b2] != 25 || c.RouteBytes != 6000 || c.RoutePackets != 100 || c.NextPackets != 0 {
		t.Fatalf("counters %+v", c)
	}
	if err := s.SendFlows(vpp.VIPKey{Prefix: netip.MustParsePrefix("192.0.2.11/32")}, 1, 1, 1); !errors.Is(err, vpp.ErrNotFound) {
		t.Fatalf("unknown vip: %v", err)
	}
}

func TestRemoveWhileUnreachable(t *testing.T) {
	s := newSim()
	ctx := context.Background()
	k := vpp.VIPKey{Prefix: netip.MustParsePrefix("192.0.2.10/32")}
	if _, err := s.SyncVIP(ctx, vpp.VIP{Key: k}); err != nil {
		t.Fatal(err)
	}
	s.SetReachable(false)
	if err := s.RemoveVIP(ctx, k); !errors.Is(err, vpp.ErrNotConnected) {
		t.Fatalf("remove: %v", err)
	}
	s.SetReachable(true)
	if vips, err := s.VIPs(ctx); err != nil || len(vips) != 0 {
		t.Fatalf("vips after reconnect: %+v %v", vips, err)
	}
}
