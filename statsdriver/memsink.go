package statsdriver

import (
	"context"
	"errors"
	"sync"
)

// StoredStats is one listener_statistics row.
type StoredStats struct {
	BytesIn, BytesOut, ActiveConnections, TotalConnections, RequestErrors int64
}

// MemorySink is an in-memory FlushSink: listener_statistics and one
// manager's flush key, with DB.ApplyFlush's rules (Octavia's arithmetic
// and refusals, each flush applied exactly once, a retried flush whose key
// is gone dropped). It is for tests of the Aggregator and the pipeline
// that do not test SQL; statsdriver/sinktest holds it and DB to the same
// results. It never loses a COMMIT's outcome, so it never returns
// ErrOutcomeUnknown.
type MemorySink struct {
	mu         sync.Mutex
	rows       map[statsKey]StoredStats
	key        *uint64 // the flush key's seq; nil when there is none
	registered bool
}

var _ FlushSink = (*MemorySink)(nil)

// NewMemorySink returns an empty sink.
func NewMemorySink() *MemorySink { return &MemorySink{rows: map[statsKey]StoredStats{}} }

// Row returns a listener_statistics row; an empty amphora id is the
// listener id, as stats_db files a provider driver's report.
func (m *MemorySink) Row(listenerID, amphoraID string) (StoredStats, bool) {
	if amphoraID == "" {
		amphoraID = listenerID
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.rows[statsKey{listenerID, amphoraID}]
	return r, ok
}

// DropKey deletes the flush key, as another manager's pruning of keys
// unused for a week does.
func (m *MemorySink) DropKey() {
	m.mu.Lock()
	m.key = nil
	m.mu.Unlock()
}

// ApplyFlush implements FlushSink as DB.ApplyFlush does.
func (m *MemorySink) ApplyFlush(_ context.Context, b *FlushBatch) (FlushResult, error) {
	if b.Seq == 0 {
		return FlushResult{}, errors.New("flush sequence numbers start at 1")
	}
	rows, refused := flushRows(b)
	m.mu.Lock()
	defer m.mu.Unlock()
	for attempt := 0; ; attempt++ {
		if !m.registered {
			// registerKey: created at Seq-1, or moved forward to it.
			if m.key == nil || *m.key < b.Seq-1 {
				at := b.Seq - 1
				m.key = &at
			}
			m.registered = true
		}
		switch {
		case m.key != nil && *m.key == b.Seq-1:
			res := FlushResult{Refused: append(refused, m.apply(rows)...)}
			*m.key = b.Seq
			return res, nil
		case m.key != nil && *m.key >= b.Seq:
			return FlushResult{AlreadyApplied: true, Refused: refused}, nil
		}
		// The key is gone or behind.
		m.registered = false
		if b.Retry {
			return FlushResult{Unresolvable: true}, nil
		}
		if attempt > 0 {
			return FlushResult{}, errKeyLost
		}
	}
}

// apply computes every row from the values before the flush, as
// applyRows does, and writes those Octavia would accept; m.mu is held.
func (m *MemorySink) apply(rows []flushRow) []RefusedRow {
	var refused []RefusedRow
	next := make(map[statsKey]StoredStats, len(rows))
	for _, r := range rows {
		old, found := m.rows[r.key]
		c, conns, err := nextCounters(r.s, old, found, r.deltas)
		if err != nil {
			refused = append(refused, RefusedRow{r.s.ListenerID, r.s.AmphoraID, err})
			continue
		}
		next[r.key] = StoredStats{BytesIn: c.bytesIn, BytesOut: c.bytesOut, ActiveConnections: conns,
			TotalConnections: c.totalConns, RequestErrors: c.requestErrors}
	}
	for k, v := range next {
		m.rows[k] = v
	}
	return refused
}

func nextCounters(s *ListenerStats, old StoredStats, found, deltas bool) (counters, int64, error) {
	return next(s, counters{old.BytesIn, old.BytesOut, old.TotalConnections, old.RequestErrors}, found, deltas)
}
