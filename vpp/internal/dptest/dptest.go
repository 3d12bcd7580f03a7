// Package dptest is the behavioural test suite every vpp.Dataplane must
// pass: one table of cases run against the simulator and against the
// govpp implementation on a fake VPP (both dialects).
package dptest

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/octavia-vpp/health/vpp"
)

// Harness wraps one fresh Dataplane for one case.
type Harness struct {
	DP vpp.Dataplane
	// Weighted says whether the implementation applies weights other than
	// 0 and 100; cases that need them are skipped otherwise.
	Weighted bool
	// SendFlows sends n new flows of 2 packets of 100 bytes to a VIP.
	SendFlows func(k vpp.VIPKey, n int)
	// Scrape makes DP.Counters() reflect everything sent so far.
	Scrape func()
	// Restart restarts the (simulated) VPP and returns once the desired
	// state has been pushed again.
	Restart func()
}

var (
	k80  = vpp.VIPKey{Prefix: netip.MustParsePrefix("192.0.2.10/32"), Protocol: vpp.ProtoTCP, Port: 80}
	k443 = vpp.VIPKey{Prefix: netip.MustParsePrefix("192.0.2.10/32"), Protocol: vpp.ProtoTCP, Port: 443}
	kAll = vpp.VIPKey{Prefix: netip.MustParsePrefix("192.0.2.10/32"), Protocol: vpp.ProtoAny}
	k6   = vpp.VIPKey{Prefix: netip.MustParsePrefix("2001:db8::10/128"), Protocol: vpp.ProtoUDP, Port: 53}
	b1   = netip.MustParseAddr("10.0.0.1")
	b2   = netip.MustParseAddr("10.0.0.2")
	b3   = netip.MustParseAddr("10.0.0.3")
)

func vip(k vpp.VIPKey, bs ...vpp.Backend) vpp.VIP { return vpp.VIP{Key: k, Backends: bs} }
func be(a netip.Addr, w uint8) vpp.Backend        { return vpp.Backend{Addr: a, Weight: w} }

// flushed is a backend at weight 0 whose flows are evicted.
func flushed(a netip.Addr) vpp.Backend { return vpp.Backend{Addr: a, Flush: true} }

// Case is one behavioural case.
type Case struct {
	Name         string
	NeedsWeights bool
	Run          func(t *testing.T, h *Harness)
}

// Run runs every case against a fresh harness from newHarness.
func Run(t *testing.T, newHarness func(t *testing.T) *Harness) {
	for _, c := range Cases {
		t.Run(c.Name, func(t *testing.T) {
			h := newHarness(t)
			if c.NeedsWeights && !h.Weighted {
				t.Skip("dialect has no weights")
			}
			c.Run(t, h)
		})
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func sync(t *testing.T, h *Harness, v vpp.VIP) vpp.SyncResult {
	t.Helper()
	r, err := h.DP.SyncVIP(ctx(t), v)
	must(t, err)
	return r
}

// effective reads the VIP and returns, per backend, the weight new flows
// see: 0 for drained, removed or absent backends, 100 for in-service
// backends of unweighted dialects.
func effective(t *testing.T, h *Harness, k vpp.VIPKey) (map[netip.Addr]uint8, vpp.VIPStatus, bool) {
	t.Helper()
	vips, err := h.DP.VIPs(ctx(t))
	must(t, err)
	for _, v := range vips {
		if v.Key == k {
			m := map[netip.Addr]uint8{}
			for _, b := range v.Backends {
				if b.Active && b.Weight > 0 {
					m[b.Addr] = b.Weight
				}
			}
			return m, v, true
		}
	}
	return nil, vpp.VIPStatus{}, false
}

func flows(st vpp.VIPStatus, a netip.Addr) uint64 {
	for _, b := range st.Backends {
		if b.Addr == a {
			return b.Flows
		}
	}
	return 0
}

func wantEffective(t *testing.T, h *Harness, k vpp.VIPKey, want map[netip.Addr]uint8) vpp.VIPStatus {
	t.Helper()
	got, st, ok := effective(t, h, k)
	if !ok {
		t.Fatalf("vip %v missing", k)
	}
	if len(got) != len(want) {
		t.Fatalf("vip %v effective weights %v, want %v", k, got, want)
	}
	for a, w := range want {
		gw, ok := got[a]
		if !ok || (h.Weighted && gw != w) {
			t.Fatalf("vip %v effective weights %v, want %v", k, got, want)
		}
	}
	return st
}

func counters(t *testing.T, h *Harness, k vpp.VIPKey) vpp.VIPCounters {
	t.Helper()
	h.Scrape()
	c, ok := h.DP.Counters().VIP(k)
	if !ok {
		t.Fatalf("no counters for %v", k)
	}
	return c
}

func wantErr(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error %v, want %v", err, target)
	}
}

// Cases is the shared table.
var Cases = []Case{
	{Name: "create then re-sync writes nothing", Run: func(t *testing.T, h *Harness) {
		r := sync(t, h, vip(k80, be(b2, 100), be(b1, 100)))
		if !r.Created || r.Added != 2 {
			t.Fatalf("first sync %+v", r)
		}
		wantEffective(t, h, k80, map[netip.Addr]uint8{b1: 100, b2: 100})
		if r := sync(t, h, vip(k80, be(b1, 100), be(b2, 100))); r.Changed() {
			t.Fatalf("second sync changed %+v", r)
		}
	}},
	{Name: "backends added and removed", Run: func(t *testing.T, h *Harness) {
		sync(t, h, vip(k80, be(b1, 100), be(b2, 100)))
		r := sync(t, h, vip(k80, be(b2, 100), be(b3, 100)))
		if r.Added != 1 || r.Removed != 1 || r.Created {
			t.Fatalf("sync %+v", r)
		}
		wantEffective(t, h, k80, map[netip.Addr]uint8{b2: 100, b3: 100})
	}},
	{Name: "removed backend loses its flows", Run: func(t *testing.T, h *Harness) {
		sync(t, h, vip(k80, be(b1, 100), be(b2, 100)))
		h.SendFlows(k80, 4)
		sync(t, h, vip(k80, be(b2, 100)))
		_, st, _ := effective(t, h, k80)
		if f := flows(st, b1); f != 0 {
			t.Fatalf("removed backend keeps %d flows", f)
		}
	}},
	{Name: "weight 0 drains softly, flush evicts, weight back restores", Run: func(t *testing.T, h *Harness) {
		sync(t, h, vip(k80, be(b1, 100), be(b2, 100)))
		h.SendFlows(k80, 4)
		_, st, _ := effective(t, h, k80)
		f1, f2 := flows(st, b1), flows(st, b2)
		if f1 == 0 || f2 == 0 || f1+f2 != 4 {
			t.Fatalf("flows not spread: %d %d", f1, f2)
		}
		sync(t, h, vip(k80, be(b1, 0), be(b2, 100)))
		h.SendFlows(k80, 4)
		st = wantEffective(t, h, k80, map[netip.Addr]uint8{b2: 100})
		if flows(st, b1) != f1 || flows(st, b2) != f2+4 {
			t.Fatalf("soft drain: flows %d %d, want %d %d", flows(st, b1), flows(st, b2), f1, f2+4)
		}
		sync(t, h, vip(k80, flushed(b1), be(b2, 100)))
		_, st, _ = effective(t, h, k80)
		if flows(st, b1) != 0 {
			t.Fatalf("flush left %d flows", flows(st, b1))
		}
		sync(t, h, vip(k80, be(b1, 100), be(b2, 100)))
		wantEffective(t, h, k80, map[netip.Addr]uint8{b1: 100, b2: 100})
		h.SendFlows(k80, 2)
		_, st, _ = effective(t, h, k80)
		if flows(st, b1) == 0 {
			t.Fatal("restored backend gets no new flows")
		}
	}},
	{Name: "weight 0 in SyncVIP with flush evicts", Run: func(t *testing.T, h *Harness) {
		sync(t, h, vip(k80, be(b1, 100), be(b2, 100)))
		h.SendFlows(k80, 4)
		r := sync(t, h, vip(k80, vpp.Backend{Addr: b1, Weight: 0, Flush: true}, be(b2, 100)))
		if !r.Changed() {
			t.Fatal("no change reported")
		}
		_, st, _ := effective(t, h, k80)
		if flows(st, b1) != 0 {
			t.Fatalf("flows %d after flush", flows(st, b1))
		}
	}},
	{Name: "no usable backend counts no-server drops", Run: func(t *testing.T, h *Harness) {
		sync(t, h, vip(k80, be(b1, 0)))
		h.SendFlows(k80, 3)
		c := counters(t, h, k80)
		if c.NoServerPackets != 3 || c.FirstPackets != 0 {
			t.Fatalf("counters %+v", c)
		}
	}},
	{Name: "counters count flows and packets", Run: func(t *testing.T, h *Harness) {
		sync(t, h, vip(k80, be(b1, 100), be(b2, 100)))
		sync(t, h, vip(k6, vpp.Backend{Addr: b3, Weight: 100}))
		h.SendFlows(k80, 5)
		h.SendFlows(k6, 1)
		c := counters(t, h, k80)
		if c.FirstPackets != 5 || c.NextPackets != 5 || c.NoServerPackets != 0 {
			t.Fatalf("lb counters %+v", c)
		}
		if c.Flows[b1]+c.Flows[b2] != 5 {
			t.Fatalf("per-backend flows %v", c.Flows)
		}
		if c6 := counters(t, h, k6); c6.FirstPackets != 1 {
			t.Fatalf("v6 counters %+v", c6)
		}
	}},
	{Name: "sticky flip recreates and counters stay monotonic", Run: func(t *testing.T, h *Harness) {
		sync(t, h, vip(k80, be(b1, 100)))
		h.SendFlows(k80, 3)
		before := counters(t, h, k80)
		v := vip(k80, be(b1, 100))
		v.SrcIPSticky = true
		r := sync(t, h, v)
		if !r.Recreated || r.Created {
			t.Fatalf("sync %+v", r)
		}
		_, st, _ := effective(t, h, k80)
		if !st.SrcIPSticky {
			t.Fatal("sticky not applied")
		}
		h.SendFlows(k80, 2)
		after := counters(t, h, k80)
		if after.FirstPackets != before.FirstPackets+2 {
			t.Fatalf("first packets %d after %d + 2", after.FirstPackets, before.FirstPackets)
		}
	}},
	{Name: "flow table length change recreates", Run: func(t *testing.T, h *Harness) {
		sync(t, h, vip(k80, be(b1, 100)))
		v := vip(k80, be(b1, 100))
		v.FlowTableLength = 4096
		if r := sync(t, h, v); !r.Recreated {
			t.Fatalf("sync %+v", r)
		}
		_, st, _ := effective(t, h, k80)
		if st.FlowTableLength != 4096 {
			t.Fatalf("length %d", st.FlowTableLength)
		}
	}},
	{Name: "remove vip", Run: func(t *testing.T, h *Harness) {
		sync(t, h, vip(k80, be(b1, 100)))
		sync(t, h, vip(k443, be(b1, 100)))
		must(t, h.DP.RemoveVIP(ctx(t), k80))
		if _, _, ok := effective(t, h, k80); ok {
			t.Fatal("vip still there")
		}
		if _, _, ok := effective(t, h, k443); !ok {
			t.Fatal("sibling vip gone")
		}
		wantErr(t, h.DP.RemoveVIP(ctx(t), k80), vpp.ErrNotFound)
	}},
	{Name: "errors", Run: func(t *testing.T, h *Harness) {
		sync(t, h, vip(k80, be(b1, 100)))
		_, err := h.DP.SyncVIP(ctx(t), vip(k80, be(b1, 101)))
		wantErr(t, err, vpp.ErrInvalid)
		wantErr(t, h.DP.RemoveVIP(ctx(t), k6), vpp.ErrNotFound)
		_, err = h.DP.SyncVIP(ctx(t), vip(kAll, be(b1, 100)))
		wantErr(t, err, vpp.ErrExists)
		_, err = h.DP.SyncVIP(ctx(t), vip(k443, be(netip.MustParseAddr("2001:db8::1"), 100)))
		wantErr(t, err, vpp.ErrInvalid)
		v := vip(k443)
		v.Encap = vpp.EncapL3DSR
		_, err = h.DP.SyncVIP(ctx(t), v)
		wantErr(t, err, vpp.ErrInvalid)
		wantErr(t, h.DP.Configure(ctx(t), vpp.Conf{StickyBucketsPerWorker: 3}), vpp.ErrInvalid)
		// The refused VIPs left nothing behind.
		vips, err := h.DP.VIPs(ctx(t))
		must(t, err)
		if len(vips) != 1 || vips[0].Key != k80 {
			t.Fatalf("vips %+v", vips)
		}
	}},
	{Name: "configure", Run: func(t *testing.T, h *Harness) {
		must(t, h.DP.Configure(ctx(t), vpp.Conf{IP4Src: netip.MustParseAddr("192.0.2.1"),
			IP6Src: netip.MustParseAddr("2001:db8::1"), StickyBucketsPerWorker: 1 << 16, FlowTimeout: 30 * time.Second}))
	}},
	{Name: "restart re-pushes desired state and counters stay monotonic", Run: func(t *testing.T, h *Harness) {
		must(t, h.DP.Configure(ctx(t), vpp.Conf{IP4Src: netip.MustParseAddr("192.0.2.1")}))
		sync(t, h, vip(k80, be(b1, 100), be(b2, 100)))
		sync(t, h, vip(k6, be(b3, 100)))
		sync(t, h, vip(k80, be(b1, 100), be(b2, 0)))
		h.SendFlows(k80, 4)
		before := counters(t, h, k80)
		gen := h.DP.State().Generation
		h.Restart()
		if s := h.DP.State(); !s.Connected || s.Generation <= gen {
			t.Fatalf("state after restart %+v (generation before %d)", s, gen)
		}
		wantEffective(t, h, k80, map[netip.Addr]uint8{b1: 100})
		wantEffective(t, h, k6, map[netip.Addr]uint8{b3: 100})
		h.SendFlows(k80, 1)
		after := counters(t, h, k80)
		if after.FirstPackets != before.FirstPackets+1 {
			t.Fatalf("first packets %d, want %d", after.FirstPackets, before.FirstPackets+1)
		}
	}},
	{Name: "backend synced at weight 0 is restored by a sync at weight 100", Run: func(t *testing.T, h *Harness) {
		sync(t, h, vip(k80, be(b1, 100), be(b2, 0)))
		wantEffective(t, h, k80, map[netip.Addr]uint8{b1: 100})
		if r := sync(t, h, vip(k80, be(b1, 100), be(b2, 100))); !r.Changed() {
			t.Fatalf("restoring sync changed nothing: %+v", r)
		}
		wantEffective(t, h, k80, map[netip.Addr]uint8{b1: 100, b2: 100})
		// SyncVIP with the same desired state is then a no-op.
		if r := sync(t, h, vip(k80, be(b1, 100), be(b2, 100))); r.Changed() {
			t.Fatalf("re-sync changed %+v", r)
		}
	}},
	{Name: "encaps: l3dsr, nat4, gre6", Run: func(t *testing.T, h *Harness) {
		dsr := vip(vpp.VIPKey{Prefix: netip.MustParsePrefix("192.0.2.20/32"), Protocol: vpp.ProtoAny}, be(b1, 100))
		dsr.Encap, dsr.DSCP = vpp.EncapL3DSR, 12
		nat := vip(vpp.VIPKey{Prefix: netip.MustParsePrefix("192.0.2.30/32"), Protocol: vpp.ProtoTCP, Port: 443}, be(b2, 100))
		nat.Encap, nat.TargetPort = vpp.EncapNAT4, 8443
		g6 := vip(vpp.VIPKey{Prefix: netip.MustParsePrefix("2001:db8::20/128"), Protocol: vpp.ProtoAny}, be(netip.MustParseAddr("2001:db8:1::7"), 100))
		g6.Encap = vpp.EncapGRE6
		for _, v := range []vpp.VIP{dsr, nat, g6} {
			if r := sync(t, h, v); !r.Created {
				t.Fatalf("%v: %+v", v.Key, r)
			}
			_, st, ok := effective(t, h, v.Key)
			if !ok || st.Encap != v.Encap || len(st.Backends) != 1 {
				t.Fatalf("%v read back as %+v", v.Key, st)
			}
			if r := sync(t, h, v); r.Changed() {
				t.Fatalf("%v re-sync changed %+v", v.Key, r)
			}
		}
	}},
	{Name: "weights are applied", NeedsWeights: true, Run: func(t *testing.T, h *Harness) {
		r := sync(t, h, vip(k80, be(b1, 100), be(b2, 50), be(b3, 0)))
		if r.Added != 3 {
			t.Fatalf("sync %+v", r)
		}
		wantEffective(t, h, k80, map[netip.Addr]uint8{b1: 100, b2: 50})
		r = sync(t, h, vip(k80, be(b1, 100), be(b2, 20), be(b3, 10)))
		if r.Reweighted != 2 || r.Added != 0 {
			t.Fatalf("sync %+v", r)
		}
		sync(t, h, vip(k80, be(b1, 30), be(b2, 20), be(b3, 10)))
		wantEffective(t, h, k80, map[netip.Addr]uint8{b1: 30, b2: 20, b3: 10})
	}},
}
