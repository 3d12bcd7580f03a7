package vpp

import (
	"math"
	"net/netip"
	"slices"
	"time"

	"go.fd.io/govpp/adapter"

	"github.com/octavia-vpp/health/vpp/internal/lbcli"
)

// Stats-segment names read on every scrape. VPP registers the lb plugin's
// four per-VIP counters under their bare names (no leading slash), so the
// patterns are anchored to avoid matching anything else.
const (
	statRouteTo  = "/net/route/to"
	statBootTime = "/sys/boottime"
)

// statsPatterns are the anchored regular expressions of one scrape (the
// stats client matches patterns anywhere in a name).
func statsPatterns() []string {
	n := lbcli.CounterNames
	return []string{
		"^(" + n[0] + "|" + n[1] + "|" + n[2] + "|" + n[3] + ")$",
		"^" + statRouteTo + "$",
		"^" + statBootTime + "$",
	}
}

// reduceSimple sums index i over every thread's vector. Threads whose vector
// is too short (or nil) contribute nothing; govpp's own reducer would panic.
func reduceSimple(s adapter.SimpleCounterStat, i int) uint64 {
	if i < 0 {
		return 0
	}
	var sum uint64
	for _, thread := range s {
		if i < len(thread) {
			sum += uint64(thread[i])
		}
	}
	return sum
}

// reduceCombined is reduceSimple for packet/byte pairs.
func reduceCombined(s adapter.CombinedCounterStat, i int) (packets, bytes uint64) {
	if i < 0 {
		return 0, 0
	}
	for _, thread := range s {
		if i < len(thread) {
			packets += thread[i][0]
			bytes += thread[i][1]
		}
	}
	return packets, bytes
}

// raw counter positions.
const (
	rNext = iota
	rFirst
	rUntracked
	rNoServer
	rRoutePackets
	rRouteBytes
	nRaw
)

type rawCounters [nRaw]uint64

// vipObs is what one scrape learnt about one VIP.
type vipObs struct {
	key VIPKey
	// lbIndex is the VIP's pool index (the index of its lb counters), -1
	// when unknown. lbInstance changes whenever the VIP was (re)created or
	// VPP restarted: the lb counters then start again from zero.
	lbIndex    int
	lbInstance uint64
	// routeIndex is the stats index of the VIP's FIB entry, -1 when
	// unknown; routeInstance plays lbInstance's role for it.
	routeIndex    int
	routeInstance uint64
	// lbKnown and routeKnown say whether this scrape could read the
	// counters at all; an unknown reading leaves the totals untouched
	// (it is not a reset to zero).
	lbKnown, routeKnown bool
	flows               map[netip.Addr]uint64
}

// statSet is one stats dump reduced to the entries a scrape needs.
type statSet struct {
	lb       [4]adapter.SimpleCounterStat
	routeTo  adapter.CombinedCounterStat
	bootTime float64 // seconds since the epoch; 0 when absent
}

// pickStats finds the entries of one dump by exact name.
func pickStats(entries []adapter.StatEntry) statSet {
	var s statSet
	for _, e := range entries {
		name := string(e.Name)
		for i, n := range lbcli.CounterNames {
			if name == n {
				if d, ok := e.Data.(adapter.SimpleCounterStat); ok {
					s.lb[i] = d
				}
			}
		}
		switch name {
		case statRouteTo:
			if d, ok := e.Data.(adapter.CombinedCounterStat); ok {
				s.routeTo = d
			}
		case statBootTime:
			if d, ok := e.Data.(adapter.ScalarStat); ok {
				s.bootTime = float64(d)
			}
		}
	}
	return s
}

// rawFor reduces the counters of one VIP.
func (s statSet) rawFor(o vipObs) rawCounters {
	var r rawCounters
	if o.lbIndex >= 0 {
		for i := range s.lb {
			r[i] = reduceSimple(s.lb[i], o.lbIndex)
		}
	}
	if o.routeIndex >= 0 {
		r[rRoutePackets], r[rRouteBytes] = reduceCombined(s.routeTo, o.routeIndex)
	}
	return r
}

// counterTracker turns raw VPP counters, which reset when a VIP is
// recreated or VPP restarts, into totals that never go backwards. It keeps
// an offset per VIP key; keys are kept after the VIP goes away so that a
// VIP that comes back continues from where it stopped.
type counterTracker struct {
	vips map[VIPKey]*trackState
}

type trackState struct {
	lbInstance, routeInstance uint64
	lbSeen, routeSeen         bool
	last, offset              rawCounters
}

func newCounterTracker() *counterTracker {
	return &counterTracker{vips: make(map[VIPKey]*trackState)}
}

// observe records one raw reading and returns the monotonic totals.
// A new instance resets the baseline; a value lower than the previous
// reading is a reset nobody announced (both fold the last reading into
// the offset). Counters the scrape could not read keep their totals.
func (t *counterTracker) observe(o vipObs, raw rawCounters) rawCounters {
	st := t.vips[o.key]
	if st == nil {
		st = &trackState{}
		t.vips[o.key] = st
	}
	update := func(from, to int, seen *bool, inst *uint64, newInst uint64) {
		if *seen && *inst != newInst {
			for i := from; i <= to; i++ {
				st.offset[i] += st.last[i]
				st.last[i] = 0
			}
		}
		*seen, *inst = true, newInst
		for i := from; i <= to; i++ {
			if raw[i] < st.last[i] {
				st.offset[i] += st.last[i]
			}
			st.last[i] = raw[i]
		}
	}
	if o.lbKnown {
		update(rNext, rNoServer, &st.lbSeen, &st.lbInstance, o.lbInstance)
	}
	if o.routeKnown {
		update(rRoutePackets, rRouteBytes, &st.routeSeen, &st.routeInstance, o.routeInstance)
	}
	var out rawCounters
	for i := range out {
		out[i] = st.offset[i] + st.last[i]
	}
	return out
}

// snapshot builds the immutable Counters of one scrape.
func (t *counterTracker) snapshot(now time.Time, s statSet, obs []vipObs) *Counters {
	return t.snapshotWith(now, s, obs, nil)
}

// snapshotWith is snapshot where the lb packet counters of VIPs without a
// known pool index come from text (the CLI's per-VIP sums), used when no
// stats socket is available.
func (t *counterTracker) snapshotWith(now time.Time, s statSet, obs []vipObs, text map[VIPKey][4]uint64) *Counters {
	c := &Counters{Taken: now, VIPs: make([]VIPCounters, 0, len(obs))}
	for _, o := range obs {
		raw := s.rawFor(o)
		if tc, ok := text[o.key]; ok && o.lbIndex < 0 {
			copy(raw[:4], tc[:])
			o.lbKnown = true
		}
		tot := t.observe(o, raw)
		vc := VIPCounters{
			Key:              o.key,
			NextPackets:      tot[rNext],
			FirstPackets:     tot[rFirst],
			UntrackedPackets: tot[rUntracked],
			NoServerPackets:  tot[rNoServer],
			RoutePackets:     tot[rRoutePackets],
			RouteBytes:       tot[rRouteBytes],
		}
		if o.flows != nil {
			vc.Flows = make(map[netip.Addr]uint64, len(o.flows))
			for a, f := range o.flows {
				vc.Flows[a] = f
			}
		}
		c.VIPs = append(c.VIPs, vc)
	}
	slices.SortFunc(c.VIPs, func(a, b VIPCounters) int { return compareKeys(a.Key, b.Key) })
	return c
}

// bootTimeOf converts the /sys/boottime scalar. Zero, negative, NaN and
// values beyond what nanoseconds since the epoch can hold are no boot time.
func bootTimeOf(sec float64) time.Time {
	if !(sec > 0 && sec < math.MaxInt64/1e9) {
		return time.Time{}
	}
	return time.Unix(0, int64(sec*1e9)).UTC()
}
