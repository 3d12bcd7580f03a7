package fakevpp

import (
	"errors"
	"regexp"
	"slices"
	"sync"

	"go.fd.io/govpp/adapter"

	"github.com/octavia-vpp/health/vpp/internal/lbcli"
)

// Stats is a fake stats segment over a Server's current model. Like the
// real client it matches patterns as regular expressions anywhere in the
// name, so callers must anchor them. Per-thread vectors are only as long
// as the last index that thread counted, as happens in VPP for threads
// that never saw a VIP's traffic.
type Stats struct {
	s *Server

	mu       sync.Mutex
	closed   bool
	busy     int // the next busy reads answer ErrStatsDataBusy
	patterns [][]string
}

// PatternsSeen returns the pattern lists of every DumpStats call.
func (st *Stats) PatternsSeen() [][]string {
	st.mu.Lock()
	defer st.mu.Unlock()
	return slices.Clone(st.patterns)
}

// Stats returns a stats source reading this server's model.
func (s *Server) Stats() *Stats { return &Stats{s: s} }

// Busy makes the next n reads fail with adapter.ErrStatsDataBusy.
func (st *Stats) Busy(n int) {
	st.mu.Lock()
	st.busy = n
	st.mu.Unlock()
}

// Disconnect implements vpp.StatsSource.
func (st *Stats) Disconnect() error {
	st.mu.Lock()
	st.closed = true
	st.mu.Unlock()
	return nil
}

// DumpStats implements vpp.StatsSource.
func (st *Stats) DumpStats(patterns ...string) ([]adapter.StatEntry, error) {
	st.mu.Lock()
	st.patterns = append(st.patterns, slices.Clone(patterns))
	if st.closed {
		st.mu.Unlock()
		return nil, adapter.ErrStatsDisconnected
	}
	if st.busy > 0 {
		st.busy--
		st.mu.Unlock()
		return nil, adapter.ErrStatsDataBusy
	}
	st.mu.Unlock()
	res := make([]*regexp.Regexp, 0, len(patterns))
	for _, p := range patterns {
		re, err := regexp.Compile(p)
		if err != nil {
			return nil, errors.Join(adapter.ErrStatsAccessFailed, err)
		}
		res = append(res, re)
	}
	m := st.s.Model()
	m.mu.Lock()
	defer m.mu.Unlock()
	var all []adapter.StatEntry
	add := func(name string, t adapter.StatType, d adapter.Stat) {
		all = append(all, adapter.StatEntry{StatIdentifier: adapter.StatIdentifier{Name: []byte(name)}, Type: t, Data: d})
	}
	for c, name := range lbcli.CounterNames {
		var s adapter.SimpleCounterStat
		for t := range m.counters[c] {
			vec := make([]adapter.Counter, len(m.counters[c][t]))
			for i, v := range m.counters[c][t] {
				vec[i] = adapter.Counter(v)
			}
			s = append(s, vec)
		}
		add(name, adapter.SimpleCounterVector, s)
	}
	route := make([]adapter.CombinedCounter, len(m.routeCtr))
	for i, v := range m.routeCtr {
		route[i] = adapter.CombinedCounter(v)
	}
	add("/net/route/to", adapter.CombinedCounterVector, adapter.CombinedCounterStat{route})
	add("/net/route/via", adapter.CombinedCounterVector, adapter.CombinedCounterStat{route})
	add("/sys/boottime", adapter.ScalarIndex, adapter.ScalarStat(float64(m.bootTime.Unix())))
	add("/sys/heartbeat", adapter.ScalarIndex, adapter.ScalarStat(1))
	if len(res) == 0 {
		return all, nil
	}
	var out []adapter.StatEntry
	for _, e := range all {
		for _, re := range res {
			if re.Match(e.Name) {
				out = append(out, e)
				break
			}
		}
	}
	return out, nil
}
