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
	// bootTime is VPP's boot time read with the counters; zero when
	// unknown (no stats socket). A changed boot time is a VPP restart.
	bootTime time.Time
	// lbIndex is the VIP's pool index (the index of its lb counters);
	// epoch counts this process's adds and deletes of the VIP. A change of
	// either means the lb counters started again from zero.
	lbIndex int
	epoch   uint64
	// adopted: the VIP was found in VPP, not created by this process.
	adopted bool
	// lbText says the lb counters come from the CLI text, not from the
	// stats segment at lbIndex.
	lbText bool
	// routeIndex is the stats index of the VIP's FIB entry, -1 when
	// unknown; a change means the route counters started again.
	routeIndex int
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
	if o.lbIndex >= 0 && !o.lbText {
		for i := range s.lb {
			r[i] = reduceSimple(s.lb[i], o.lbIndex)
		}
	}
	if o.routeIndex >= 0 {
		r[rRoutePackets], r[rRouteBytes] = reduceCombined(s.routeTo, o.routeIndex)
	}
	return r
}

// CounterBase is what a new process needs to continue one VIP's totals
// where the previous one stopped: for each counter source, the last raw
// readings with the identity of the VPP instance they came from, next to
// the totals reported for them. The agent keeps it in its counter file.
type CounterBase struct {
	// LB holds the lb plugin's counters in the order next, first,
	// untracked, no-server; Index is the VIP's pool index.
	LB SourceBase
	// Route holds the route's packets and bytes in Raw[0:2] and
	// Total[0:2]; Index is the route's stats index.
	Route SourceBase
}

// SourceBase is one counter source of a CounterBase.
type SourceBase struct {
	Seen     bool      // false: never read, the rest is zero
	BootTime time.Time // VPP's boot time at the last reading; zero when unknown
	Index    int
	Raw      [4]uint64
	Total    [4]uint64
}

// counterTracker turns raw VPP counters, which reset when a VIP is
// recreated or VPP restarts, into totals that never go backwards. It keeps
// an offset per VIP key; keys are kept after the VIP goes away so that a
// VIP that comes back continues from where it stopped.
//
// Only a real reset starts a new baseline: VPP's boot time changed, the
// VIP's pool index (or route stats index) changed, this process added or
// deleted the VIP, or a value went backwards. A new API connection to a
// VPP that kept running is none of these.
type counterTracker struct {
	vips map[VIPKey]*trackState
}

type trackState struct {
	lb, route sourceState
}

// sourceState tracks one counter source (lb: 4 values, route: 2).
type sourceState struct {
	seen bool
	boot time.Time // last known boot time; zero until one was read
	// index and epoch identify the instance the last reading came from.
	// A restored state has epoch 0, the value every key has in a new
	// process until that process adds or deletes the VIP.
	index        int
	epoch        uint64
	last, offset [4]uint64
}

func newCounterTracker() *counterTracker {
	return &counterTracker{vips: make(map[VIPKey]*trackState)}
}

// observe folds one reading of n values into the source. A new instance
// or a value lower than the previous reading folds the last reading into
// the offset (counting from zero again); the first reading ever keeps
// VPP's values as they are.
func (s *sourceState) observe(boot time.Time, index int, epoch uint64, raw []uint64) {
	if s.seen {
		restarted := !boot.IsZero() && !s.boot.IsZero() && !boot.Equal(s.boot)
		if restarted || index != s.index || epoch != s.epoch {
			for i := range raw {
				s.offset[i] += s.last[i]
				s.last[i] = 0
			}
		}
	}
	s.seen, s.index, s.epoch = true, index, epoch
	if !boot.IsZero() {
		s.boot = boot
	}
	for i, v := range raw {
		if v < s.last[i] {
			s.offset[i] += s.last[i]
		}
		s.last[i] = v
	}
}

func (s *sourceState) base() SourceBase {
	b := SourceBase{Seen: s.seen, BootTime: s.boot, Index: s.index, Raw: s.last}
	for i := range b.Total {
		b.Total[i] = s.offset[i] + s.last[i]
	}
	return b
}

func restoreSource(b SourceBase) sourceState {
	s := sourceState{seen: b.Seen, boot: b.BootTime, index: b.Index, last: b.Raw}
	for i := range s.offset {
		// A total below its raw value is a broken record: keep the raw
		// value (the totals then continue from VPP's own count).
		if b.Total[i] > b.Raw[i] {
			s.offset[i] = b.Total[i] - b.Raw[i]
		}
	}
	return s
}

// observe records one raw reading and returns the monotonic totals.
// Counters the scrape could not read keep their totals.
func (t *counterTracker) observe(o vipObs, raw rawCounters) rawCounters {
	st := t.vips[o.key]
	if st == nil {
		st = &trackState{}
		t.vips[o.key] = st
	}
	if o.lbKnown {
		st.lb.observe(o.bootTime, o.lbIndex, o.epoch, raw[rNext:rNoServer+1])
	}
	if o.routeKnown {
		st.route.observe(o.bootTime, o.routeIndex, 0, raw[rRoutePackets:rRouteBytes+1])
	}
	var out rawCounters
	for i := rNext; i <= rNoServer; i++ {
		out[i] = st.lb.offset[i] + st.lb.last[i]
	}
	for i := range 2 {
		out[rRoutePackets+i] = st.route.offset[i] + st.route.last[i]
	}
	return out
}

// base returns the key's CounterBase (zero when never observed).
func (t *counterTracker) base(k VIPKey) CounterBase {
	st := t.vips[k]
	if st == nil {
		return CounterBase{}
	}
	return CounterBase{LB: st.lb.base(), Route: st.route.base()}
}

// restore installs the bases of a previous process for keys this one has
// not observed yet, and reports the keys it had to skip.
func (t *counterTracker) restore(bases map[VIPKey]CounterBase) (skipped []VIPKey) {
	for k, b := range bases {
		k = k.normalize()
		if _, ok := t.vips[k]; ok {
			skipped = append(skipped, k)
			continue
		}
		t.vips[k] = &trackState{lb: restoreSource(b.LB), route: restoreSource(b.Route)}
	}
	slices.SortFunc(skipped, compareKeys)
	return skipped
}

// snapshot builds the immutable Counters of one scrape.
func (t *counterTracker) snapshot(now time.Time, s statSet, obs []vipObs) *Counters {
	return t.snapshotWith(now, s, obs, nil)
}

// snapshotWith is snapshot where the lb packet counters of VIPs marked
// lbText come from text (the CLI's per-VIP sums), used when no stats
// socket is available.
func (t *counterTracker) snapshotWith(now time.Time, s statSet, obs []vipObs, text map[VIPKey][4]uint64) *Counters {
	c := &Counters{Taken: now, VIPs: make([]VIPCounters, 0, len(obs))}
	for _, o := range obs {
		raw := s.rawFor(o)
		if o.lbText {
			tc, ok := text[o.key]
			copy(raw[:4], tc[:])
			o.lbKnown = ok
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
			Base:             t.base(o.key),
			Adopted:          o.adopted,
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
