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
	type step struct {
		lbInst, routeInst uint64
		raw               rawCounters
		want              rawCounters
		// the scrape could not read these (no stats socket, route unknown)
		lbUnknown, routeUnknown bool
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"monotonic passthrough", []step{
			{1, 1, rawCounters{1, 2, 3, 4, 5, 6}, rawCounters{1, 2, 3, 4, 5, 6}, false, false},
			{1, 1, rawCounters{10, 20, 3, 4, 50, 60}, rawCounters{10, 20, 3, 4, 50, 60}, false, false},
		}},
		{"value going backwards is a reset", []step{
			{1, 1, rawCounters{100, 10, 0, 0, 1000, 9000}, rawCounters{100, 10, 0, 0, 1000, 9000}, false, false},
			{1, 1, rawCounters{5, 1, 0, 0, 10, 90}, rawCounters{105, 11, 0, 0, 1010, 9090}, false, false},
			{1, 1, rawCounters{7, 2, 0, 0, 20, 100}, rawCounters{107, 12, 0, 0, 1020, 9100}, false, false},
		}},
		{"re-created VIP whose new counters already passed the old ones", []step{
			{1, 1, rawCounters{10, 10, 0, 0, 0, 0}, rawCounters{10, 10, 0, 0, 0, 0}, false, false},
			// lb instance changed: the 50 are all new, nothing looked backwards.
			{2, 1, rawCounters{50, 50, 0, 0, 0, 0}, rawCounters{60, 60, 0, 0, 0, 0}, false, false},
			{2, 1, rawCounters{51, 50, 0, 0, 0, 0}, rawCounters{61, 60, 0, 0, 0, 0}, false, false},
		}},
		{"route instance change only touches route counters", []step{
			{1, 1, rawCounters{1, 1, 1, 1, 100, 1000}, rawCounters{1, 1, 1, 1, 100, 1000}, false, false},
			{1, 2, rawCounters{2, 2, 2, 2, 300, 3000}, rawCounters{2, 2, 2, 2, 400, 4000}, false, false},
		}},
		{"VPP restart: both instances change and counters restart at zero", []step{
			{1, 1, rawCounters{9, 9, 9, 9, 9, 9}, rawCounters{9, 9, 9, 9, 9, 9}, false, false},
			{5, 5, rawCounters{0, 0, 0, 0, 0, 0}, rawCounters{9, 9, 9, 9, 9, 9}, false, false},
			{5, 5, rawCounters{1, 0, 0, 0, 0, 2}, rawCounters{10, 9, 9, 9, 9, 11}, false, false},
		}},
		{"an unreadable counter is not a reset", []step{
			{1, 1, rawCounters{5, 5, 0, 0, 2, 100}, rawCounters{5, 5, 0, 0, 2, 100}, false, false},
			{1, 0, rawCounters{6, 6, 0, 0, 0, 0}, rawCounters{6, 6, 0, 0, 2, 100}, false, true},
			{1, 1, rawCounters{0, 0, 0, 0, 4, 200}, rawCounters{6, 6, 0, 0, 4, 200}, true, false},
			{1, 1, rawCounters{7, 7, 0, 0, 4, 200}, rawCounters{7, 7, 0, 0, 4, 200}, false, false},
		}},
		{"first reading keeps VPP's totals", []step{
			{3, 3, rawCounters{1000, 0, 0, 0, 0, 0}, rawCounters{1000, 0, 0, 0, 0, 0}, false, false},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := newCounterTracker()
			for i, s := range tc.steps {
				got := tr.observe(vipObs{key: k, lbInstance: s.lbInst, routeInstance: s.routeInst,
					lbKnown: !s.lbUnknown, routeKnown: !s.routeUnknown}, s.raw)
				if got != s.want {
					t.Fatalf("step %d: got %v want %v", i, got, s.want)
				}
			}
		})
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
