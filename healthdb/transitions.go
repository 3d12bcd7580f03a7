package healthdb

import "sort"

// MaxTransitionsPerBatch bounds BatchResult.Transitions: a batch after a
// restart may change thousands of members, and the consumers (the status
// page) keep only the latest few hundred anyway.
const MaxTransitionsPerBatch = 256

// Transition is one operating_status change a batch wrote.
type Transition struct {
	// Entity is "load_balancer", "listener", "pool" or "member".
	Entity   string
	ID       string
	From, To string
}

// transitions lists the net changes, at most limit of them, load
// balancers first, in a stable order.
func (s *batchState) transitions(limit int) []Transition {
	var out []Transition
	for _, e := range []struct {
		entity string
		m      map[string]*tracked
	}{{"load_balancer", s.lbs}, {"listener", s.listeners}, {"pool", s.pools}, {"member", s.members}} {
		start := len(out)
		for id, t := range e.m {
			if !equalStatus(t.original, t.current) {
				out = append(out, Transition{Entity: e.entity, ID: id, From: t.original, To: t.current})
			}
		}
		added := out[start:]
		sort.Slice(added, func(i, j int) bool { return added[i].ID < added[j].ID })
		if len(out) >= limit {
			return out[:limit]
		}
	}
	return out
}
