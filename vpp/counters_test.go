package vpp

import (
	"net/netip"
	"testing"
	"time"

	"go.fd.io/govpp/adapter"
)

func TestReduceSimple(t *testing.T) {
	tests := []struct {
		name string
		s    adapter.SimpleCounterStat
		i    int
		want uint64
	}{
		{"nil stat", nil, 0, 0},
		{"main thread only", adapter.SimpleCounterStat{{1, 2, 3}}, 2, 3},
		{"three workers", adapter.SimpleCounterStat{{0, 0}, {5, 10}, {1, 20}, {0, 30}}, 1, 60},
		{"short worker vector is skipped", adapter.SimpleCounterStat{{1, 2, 3}, {4}, {5, 6, 7}}, 2, 10},
		{"nil worker vector is skipped", adapter.SimpleCounterStat{nil, {0, 9}}, 1, 9},
		{"index past every vector", adapter.SimpleCounterStat{{1}, {2}}, 7, 0},
		{"negative index", adapter.SimpleCounterStat{{1}}, -1, 0},
		{"empty threads", adapter.SimpleCounterStat{{}, {}}, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := reduceSimple(tc.s, tc.i); got != tc.want {
				t.Fatalf("got %d want %d", got, tc.want)
			}
		})
	}
}

func TestReduceCombined(t *testing.T) {
	tests := []struct {
		name       string
		s          adapter.CombinedCounterStat
		i          int
		pkts, byts uint64
	}{
		{"nil", nil, 3, 0, 0},
		{"two workers", adapter.CombinedCounterStat{{{1, 100}, {2, 200}}, {{3, 300}, {4, 400}}}, 1, 6, 600},
		{"short vector", adapter.CombinedCounterStat{{{1, 100}}, {{3, 300}, {4, 400}}}, 1, 4, 400},
		{"negative", adapter.CombinedCounterStat{{{1, 1}}}, -2, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, b := reduceCombined(tc.s, tc.i)
			if p != tc.pkts || b != tc.byts {
				t.Fatalf("got %d/%d want %d/%d", p, b, tc.pkts, tc.byts)
			}
		})
	}
}

func TestCounterTracker(t *testing.T) {
	k := VIPKey{Prefix: netip.MustParsePrefix("192.0.2.10/32"), Protocol: ProtoTCP, Port: 80}
	b1, b2 := time.Unix(1_700_000_000, 0), time.Unix(1_700_001_000, 0)
	var unknown time.Time
	type step struct {
		boot            time.Time
		lbIdx, routeIdx int
		epoch           uint64
		raw             rawCounters
		want            rawCounters
		// the scrape could not read these (no stats socket, route unknown)
		lbUnknown, routeUnknown bool
	}
	tests := []struct {
		name    string
		restore *CounterBase // a previous process's base, installed first
		steps   []step
	}{
		{"monotonic passthrough", nil, []step{
			{b1, 1, 7, 0, rawCounters{1, 2, 3, 4, 5, 6}, rawCounters{1, 2, 3, 4, 5, 6}, false, false},
			{b1, 1, 7, 0, rawCounters{10, 20, 3, 4, 50, 60}, rawCounters{10, 20, 3, 4, 50, 60}, false, false},
		}},
		{"value going backwards is a reset", nil, []step{
			{b1, 1, 7, 0, rawCounters{100, 10, 0, 0, 1000, 9000}, rawCounters{100, 10, 0, 0, 1000, 9000}, false, false},
			{b1, 1, 7, 0, rawCounters{5, 1, 0, 0, 10, 90}, rawCounters{105, 11, 0, 0, 1010, 9090}, false, false},
			{b1, 1, 7, 0, rawCounters{7, 2, 0, 0, 20, 100}, rawCounters{107, 12, 0, 0, 1020, 9100}, false, false},
		}},
		{"VIP re-created by this process, new counters already past the old ones", nil, []step{
			{b1, 1, 7, 0, rawCounters{10, 10, 0, 0, 0, 0}, rawCounters{10, 10, 0, 0, 0, 0}, false, false},
			// epoch changed: the 50 are all new, nothing looked backwards.
			{b1, 1, 7, 2, rawCounters{50, 50, 0, 0, 0, 0}, rawCounters{60, 60, 0, 0, 0, 0}, false, false},
			{b1, 1, 7, 2, rawCounters{51, 50, 0, 0, 0, 0}, rawCounters{61, 60, 0, 0, 0, 0}, false, false},
		}},
		{"VIP pool index changed", nil, []step{
			{b1, 1, 7, 0, rawCounters{10, 10, 0, 0, 0, 0}, rawCounters{10, 10, 0, 0, 0, 0}, false, false},
			{b1, 4, 7, 0, rawCounters{30, 30, 0, 0, 0, 0}, rawCounters{40, 40, 0, 0, 0, 0}, false, false},
		}},
		{"route index change only touches route counters", nil, []step{
			{b1, 1, 7, 0, rawCounters{1, 1, 1, 1, 100, 1000}, rawCounters{1, 1, 1, 1, 100, 1000}, false, false},
			{b1, 1, 8, 0, rawCounters{2, 2, 2, 2, 300, 3000}, rawCounters{2, 2, 2, 2, 400, 4000}, false, false},
		}},
		{"VPP restart: boot time changes, counters restart at zero", nil, []step{
			{b1, 1, 7, 0, rawCounters{9, 9, 9, 9, 9, 9}, rawCounters{9, 9, 9, 9, 9, 9}, false, false},
			{b2, 1, 7, 0, rawCounters{0, 0, 0, 0, 0, 0}, rawCounters{9, 9, 9, 9, 9, 9}, false, false},
			{b2, 1, 7, 0, rawCounters{1, 0, 0, 0, 0, 2}, rawCounters{10, 9, 9, 9, 9, 11}, false, false},
		}},
		{"VPP restart whose new counters passed the old ones", nil, []step{
			{b1, 1, 7, 0, rawCounters{9, 9, 9, 9, 9, 9}, rawCounters{9, 9, 9, 9, 9, 9}, false, false},
			{b2, 1, 7, 0, rawCounters{20, 20, 20, 20, 20, 20}, rawCounters{29, 29, 29, 29, 29, 29}, false, false},
		}},
		{"same VPP read again (a reconnect) is no reset", nil, []step{
			{b1, 1, 7, 0, rawCounters{10, 10, 0, 0, 10, 1000}, rawCounters{10, 10, 0, 0, 10, 1000}, false, false},
			{b1, 1, 7, 0, rawCounters{10, 10, 0, 0, 10, 1000}, rawCounters{10, 10, 0, 0, 10, 1000}, false, false},
			{b1, 1, 7, 0, rawCounters{12, 12, 0, 0, 12, 1200}, rawCounters{12, 12, 0, 0, 12, 1200}, false, false},
		}},
		{"a boot time that becomes unknown is no reset", nil, []step{
			{b1, 1, 7, 0, rawCounters{10, 10, 0, 0, 10, 1000}, rawCounters{10, 10, 0, 0, 10, 1000}, false, false},
			{unknown, 1, 7, 0, rawCounters{11, 11, 0, 0, 0, 0}, rawCounters{11, 11, 0, 0, 10, 1000}, false, true},
			{b1, 1, 7, 0, rawCounters{12, 12, 0, 0, 12, 1200}, rawCounters{12, 12, 0, 0, 12, 1200}, false, false},
			{b2, 1, 7, 0, rawCounters{1, 1, 0, 0, 1, 100}, rawCounters{13, 13, 0, 0, 13, 1300}, false, false},
		}},
		{"an unreadable counter is not a reset", nil, []step{
			{b1, 1, 7, 0, rawCounters{5, 5, 0, 0, 2, 100}, rawCounters{5, 5, 0, 0, 2, 100}, false, false},
			{b1, 1, -1, 0, rawCounters{6, 6, 0, 0, 0, 0}, rawCounters{6, 6, 0, 0, 2, 100}, false, true},
			{b1, 1, 7, 0, rawCounters{0, 0, 0, 0, 4, 200}, rawCounters{6, 6, 0, 0, 4, 200}, true, false},
			{b1, 1, 7, 0, rawCounters{7, 7, 0, 0, 4, 200}, rawCounters{7, 7, 0, 0, 4, 200}, false, false},
		}},
		{"first reading keeps VPP's totals", nil, []step{
			{b1, 3, 7, 0, rawCounters{1000, 0, 0, 0, 0, 0}, rawCounters{1000, 0, 0, 0, 0, 0}, false, false},
		}},
		{"restored: same VPP continues the previous process's totals", &CounterBase{
			LB:    SourceBase{Seen: true, BootTime: b2, Index: 1, Raw: [4]uint64{50, 5}, Total: [4]uint64{1050, 105}},
			Route: SourceBase{Seen: true, BootTime: b2, Index: 7, Raw: [4]uint64{5, 500}, Total: [4]uint64{105, 10500}},
		}, []step{
			{b2, 1, 7, 0, rawCounters{80, 8, 0, 0, 8, 800}, rawCounters{1080, 108, 0, 0, 108, 10800}, false, false},
		}},
		{"restored: VPP restarted while the agent was down", &CounterBase{
			LB:    SourceBase{Seen: true, BootTime: b1, Index: 1, Raw: [4]uint64{50, 5}, Total: [4]uint64{1050, 105}},
			Route: SourceBase{Seen: true, BootTime: b1, Index: 7, Raw: [4]uint64{5, 500}, Total: [4]uint64{105, 10500}},
		}, []step{
			{b2, 1, 7, 1, rawCounters{80, 8, 0, 0, 8, 800}, rawCounters{1130, 113, 0, 0, 113, 11300}, false, false},
		}},
		{"restored: VIP re-created by this process at the same index", &CounterBase{
			LB: SourceBase{Seen: true, BootTime: b1, Index: 1, Raw: [4]uint64{50, 5}, Total: [4]uint64{1050, 105}},
		}, []step{
			{b1, 1, 7, 2, rawCounters{80, 8, 0, 0, 8, 800}, rawCounters{1130, 113, 0, 0, 8, 800}, false, false},
		}},
		{"restored without boot time (no stats socket), same VIP", &CounterBase{
			LB: SourceBase{Seen: true, Index: 1, Raw: [4]uint64{50, 5}, Total: [4]uint64{1050, 105}},
		}, []step{
			{unknown, 1, -1, 0, rawCounters{60, 6}, rawCounters{1060, 106}, false, true},
		}},
		{"restored record with totals below raw keeps VPP's values", &CounterBase{
			LB: SourceBase{Seen: true, BootTime: b1, Index: 1, Raw: [4]uint64{50, 5}, Total: [4]uint64{10, 1}},
		}, []step{
			{b1, 1, -1, 0, rawCounters{60, 6}, rawCounters{60, 6}, false, true},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := newCounterTracker()
			if tc.restore != nil {
				if skipped := tr.restore(map[VIPKey]CounterBase{k: *tc.restore}); len(skipped) != 0 {
					t.Fatalf("skipped %v", skipped)
				}
			}
			for i, s := range tc.steps {
				got := tr.observe(vipObs{key: k, bootTime: s.boot, lbIndex: s.lbIdx, routeIndex: s.routeIdx, epoch: s.epoch,
					lbKnown: !s.lbUnknown, routeKnown: !s.routeUnknown}, s.raw)
				if got != s.want {
					t.Fatalf("step %d: got %v want %v", i, got, s.want)
				}
			}
			// What this process would persist restores the same totals.
			last := tc.steps[len(tc.steps)-1]
			again := newCounterTracker()
			again.restore(map[VIPKey]CounterBase{k: tr.base(k)})
			got := again.observe(vipObs{key: k, bootTime: last.boot, lbIndex: last.lbIdx, routeIndex: last.routeIdx,
				lbKnown: !last.lbUnknown, routeKnown: !last.routeUnknown}, last.raw)
			if got != last.want {
				t.Fatalf("after restore: got %v want %v", got, last.want)
			}
		})
	}
}

func TestCounterTrackerRestoreSkipsObservedKeys(t *testing.T) {
	k1 := VIPKey{Prefix: netip.MustParsePrefix("192.0.2.10/32"), Protocol: ProtoTCP, Port: 80}
	k2 := VIPKey{Prefix: netip.MustParsePrefix("192.0.2.11/32"), Protocol: ProtoTCP, Port: 80}
	tr := newCounterTracker()
	tr.observe(vipObs{key: k1, lbIndex: 0, lbKnown: true}, rawCounters{5})
	b := CounterBase{LB: SourceBase{Seen: true, Raw: [4]uint64{1}, Total: [4]uint64{100}}}
	skipped := tr.restore(map[VIPKey]CounterBase{k1: b, k2: b})
	if len(skipped) != 1 || skipped[0] != k1 {
		t.Fatalf("skipped %v", skipped)
	}
	if got := tr.observe(vipObs{key: k1, lbIndex: 0, lbKnown: true}, rawCounters{6}); got[rNext] != 6 {
		t.Fatalf("observed key overwritten by restore: %v", got)
	}
	if got := tr.observe(vipObs{key: k2, lbIndex: 0, lbKnown: true}, rawCounters{3}); got[rNext] != 102 {
		t.Fatalf("restored key: %v", got)
	}
}

func TestSnapshotFromStats(t *testing.T) {
	k1 := VIPKey{Prefix: netip.MustParsePrefix("192.0.2.10/32"), Protocol: ProtoTCP, Port: 80}
	k2 := VIPKey{Prefix: netip.MustParsePrefix("2001:db8::10/128"), Protocol: ProtoAny}
	k3 := VIPKey{Prefix: netip.MustParsePrefix("192.0.2.9/32"), Protocol: ProtoAny}
	entries := []adapter.StatEntry{
		{StatIdentifier: adapter.StatIdentifier{Name: []byte("packet from existing sessions")},
			Data: adapter.SimpleCounterStat{{0, 1, 2}, {0, 10, 20}, {0}}},
		{StatIdentifier: adapter.StatIdentifier{Name: []byte("first session packet")},
			Data: adapter.SimpleCounterStat{{0, 3, 4}, {0, 30}}},
		{StatIdentifier: adapter.StatIdentifier{Name: []byte("untracked packet")},
			Data: adapter.SimpleCounterStat{{0, 0, 1}}},
		// wrong type under a known name must be ignored, not panic
		{StatIdentifier: adapter.StatIdentifier{Name: []byte("no server configured")},
			Data: adapter.ScalarStat(3)},
		{StatIdentifier: adapter.StatIdentifier{Name: []byte("/net/route/to")},
			Data: adapter.CombinedCounterStat{{{0, 0}, {7, 700}}, {{0, 0}, {1, 100}, {2, 200}}}},
		{StatIdentifier: adapter.StatIdentifier{Name: []byte("/sys/boottime")}, Data: adapter.ScalarStat(1.7e9)},
		{StatIdentifier: adapter.StatIdentifier{Name: []byte("/net/route/to/extra")}, Data: adapter.ScalarStat(1)},
	}
	s := pickStats(entries)
	if got := bootTimeOf(s.bootTime); !got.Equal(time.Unix(1.7e9, 0)) {
		t.Fatalf("boot time %v", got)
	}
	tr := newCounterTracker()
	flows := map[netip.Addr]uint64{netip.MustParseAddr("10.0.0.5"): 4}
	snap := tr.snapshot(time.Unix(10, 0), s, []vipObs{
		{key: k2, lbIndex: 2, routeIndex: 2, lbKnown: true, routeKnown: true},
		{key: k1, lbIndex: 1, routeIndex: 1, lbKnown: true, routeKnown: true, flows: flows},
		{key: k3, lbIndex: -1, routeIndex: -1},
	})
	flows[netip.MustParseAddr("10.0.0.5")] = 99 // the snapshot must not alias caller maps
	want := []VIPCounters{
		{Key: k3},
		{Key: k1, NextPackets: 11, FirstPackets: 33, RoutePackets: 8, RouteBytes: 800,
			Flows: map[netip.Addr]uint64{netip.MustParseAddr("10.0.0.5"): 4}},
		{Key: k2, NextPackets: 22, FirstPackets: 4, UntrackedPackets: 1, RoutePackets: 2, RouteBytes: 200},
	}
	if len(snap.VIPs) != len(want) {
		t.Fatalf("got %d VIPs", len(snap.VIPs))
	}
	for i := range want {
		g := snap.VIPs[i]
		w := want[i]
		if g.Key != w.Key || g.NextPackets != w.NextPackets || g.FirstPackets != w.FirstPackets ||
			g.UntrackedPackets != w.UntrackedPackets || g.NoServerPackets != w.NoServerPackets ||
			g.RoutePackets != w.RoutePackets || g.RouteBytes != w.RouteBytes || len(g.Flows) != len(w.Flows) {
			t.Fatalf("vip %d: got %+v want %+v", i, g, w)
		}
		for a, f := range w.Flows {
			if g.Flows[a] != f {
				t.Fatalf("vip %d flows %v: got %d want %d", i, a, g.Flows[a], f)
			}
		}
	}
	if c, ok := snap.VIP(VIPKey{Prefix: netip.MustParsePrefix("192.0.2.10/32"), Protocol: ProtoTCP, Port: 80}); !ok || c.FirstPackets != 33 {
		t.Fatalf("lookup: %+v %v", c, ok)
	}
	if _, ok := snap.VIP(VIPKey{Prefix: netip.MustParsePrefix("192.0.2.11/32")}); ok {
		t.Fatal("lookup of a missing VIP succeeded")
	}
	var nilSnap *Counters
	if _, ok := nilSnap.VIP(k1); ok {
		t.Fatal("nil snapshot lookup succeeded")
	}
}
