package statsdriver

import (
	"context"
	"errors"
	"log/slog"
	"sort"
	"sync"
	"time"
)

// Aggregator sits in front of a driver that writes rows (stats_db) and
// turns a stream of heartbeats into one write per (listener, amphora) per
// flush, with the same final row as applying each heartbeat in turn:
//
//   - a run of V3 deltas becomes one increment by their sum, with the
//     latest active_connections;
//   - an absolute report (version 0-2) replaces everything before it, and
//     deltas after it are added to it, so the pair becomes one replace.
//
// When a flush fails (the database is down) the aggregate is kept and
// retried at the next flush, and new heartbeats keep folding into it, so
// no delta is lost. Memory is bounded by MaxPairs distinct pairs; past it,
// statistics for new pairs are discarded, counted and logged.
type Aggregator struct {
	cfg AggregatorConfig

	mu      sync.Mutex
	pending map[pairKey]*pendingRow
	// flushing serialises flushes: a flush owns the rows it took until it
	// either writes them or merges them back.
	flushing sync.Mutex
	rejected uint64
}

// AggregatorConfig configures an Aggregator.
type AggregatorConfig struct {
	// Sink receives the aggregated rows: replaces with deltas=false, then
	// increments with deltas=true.
	Sink Driver
	// MaxPairs bounds the distinct (listener, amphora) pairs held while the
	// sink is unavailable. Default 1,000,000.
	MaxPairs int
	Logger   *slog.Logger
	// OnFlush, if set, is told each flush's outcome (for metrics).
	OnFlush func(rows int, took time.Duration, err error)
}

type pairKey struct{ listener, amphora string }

// pendingRow is what a pair's row must become. With replace, base is the
// last absolute report and sum what came after it; without, sum is added
// to whatever the row holds.
type pendingRow struct {
	replace  bool
	base     ListenerStats
	sum      ListenerStats // the four counters only
	active   int64
	received time.Time
}

// NewAggregator returns an empty aggregator.
func NewAggregator(cfg AggregatorConfig) *Aggregator {
	if cfg.MaxPairs <= 0 {
		cfg.MaxPairs = 1_000_000
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Aggregator{cfg: cfg, pending: map[pairKey]*pendingRow{}}
}

// Update folds one heartbeat's statistics in. It never blocks on the sink.
func (a *Aggregator) Update(_ context.Context, stats []ListenerStats, deltas bool) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	var rejected int
	for i := range stats {
		s := &stats[i]
		k := pairKey{s.ListenerID, s.AmphoraID}
		p := a.pending[k]
		if p == nil {
			if len(a.pending) >= a.cfg.MaxPairs {
				rejected++
				continue
			}
			p = &pendingRow{}
			a.pending[k] = p
		}
		p.fold(s, deltas)
	}
	if rejected > 0 {
		a.rejected += uint64(rejected)
		a.cfg.Logger.Error("statistics discarded: too many listener/amphora pairs are waiting to be written",
			"discarded", rejected, "max_pairs", a.cfg.MaxPairs)
		return errors.New("statistics aggregate is full")
	}
	return nil
}

func (p *pendingRow) fold(s *ListenerStats, deltas bool) {
	p.active = s.ActiveConnections
	p.received = s.ReceivedTime
	if !deltas {
		p.replace = true
		p.base = *s
		p.sum = ListenerStats{}
		return
	}
	p.sum.BytesIn += s.BytesIn
	p.sum.BytesOut += s.BytesOut
	p.sum.TotalConnections += s.TotalConnections
	p.sum.RequestErrors += s.RequestErrors
}

// merge folds a newer pending row q into p (q arrived after p).
func (p *pendingRow) merge(q *pendingRow) {
	if q.replace {
		*p = *q
		return
	}
	p.sum.BytesIn += q.sum.BytesIn
	p.sum.BytesOut += q.sum.BytesOut
	p.sum.TotalConnections += q.sum.TotalConnections
	p.sum.RequestErrors += q.sum.RequestErrors
	p.active = q.active
	p.received = q.received
}

// Pending is the number of pairs waiting to be written.
func (a *Aggregator) Pending() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.pending)
}

// Discarded counts statistics dropped because MaxPairs was reached or the
// sink refused them.
func (a *Aggregator) Discarded() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.rejected
}

// Flush writes everything pending. On failure the rows are kept, merged
// with whatever arrived meanwhile, for the next flush.
func (a *Aggregator) Flush(ctx context.Context) error {
	a.flushing.Lock()
	defer a.flushing.Unlock()
	a.mu.Lock()
	taken := a.pending
	a.pending = make(map[pairKey]*pendingRow, len(taken))
	a.mu.Unlock()
	if len(taken) == 0 {
		return nil
	}
	start := time.Now()
	replaces, increments := rowsOf(taken)
	err := a.write(ctx, replaces, increments)
	if a.cfg.OnFlush != nil {
		a.cfg.OnFlush(len(taken), time.Since(start), err)
	}
	if err == nil {
		return nil
	}
	// Put the rows back in front of what arrived while we were writing.
	a.mu.Lock()
	for k, newer := range a.pending {
		if old, ok := taken[k]; ok {
			old.merge(newer)
		} else {
			taken[k] = newer
		}
	}
	a.pending = taken
	a.mu.Unlock()
	return err
}

// partialWrite is implemented by a sink error that says how many leading
// rows were written before the sink refused one. A refusal is about the
// data (Octavia refuses a negative counter, for instance), so retrying the
// same row would fail again.
type partialWrite interface{ WrittenRows() int }

// write sends replaces, then increments. A refused row is dropped, logged
// and counted, and the rows after it are sent again at once: the sink
// stops at the first refusal, as Octavia does within one heartbeat, but
// aggregated rows come from unrelated heartbeats. Any other error means
// nothing was written and everything is kept for the next flush.
func (a *Aggregator) write(ctx context.Context, replaces, increments []ListenerStats) error {
	for _, part := range []struct {
		rows   []ListenerStats
		deltas bool
	}{{replaces, false}, {increments, true}} {
		rows := part.rows
		for len(rows) > 0 {
			err := a.cfg.Sink.Update(ctx, rows, part.deltas)
			if err == nil {
				break
			}
			var pw partialWrite
			switch {
			case errors.As(err, &pw):
				refused := rows[pw.WrittenRows()]
				a.cfg.Logger.Warn("listener statistics refused and dropped, as Octavia drops them",
					"listener_id", refused.ListenerID, "amphora_id", refused.AmphoraID, "err", err)
				a.countRefused(1)
				rows = rows[pw.WrittenRows()+1:]
			case errors.Is(err, ErrNotRecorded):
				// Some rows may be written and the error does not say which:
				// retrying could count them twice, so this flush's rows of
				// this kind are dropped.
				a.cfg.Logger.Error("listener statistics dropped: the sink refused a row without saying which",
					"rows", len(rows), "err", err)
				a.countRefused(len(rows))
				rows = nil
			default:
				// Nothing of this call was written. If the replaces before it
				// were, rewriting them on retry sets the same values, so
				// keeping them with the rest is safe.
				return err
			}
		}
	}
	return nil
}

func (a *Aggregator) countRefused(n int) {
	a.mu.Lock()
	a.rejected += uint64(n)
	a.mu.Unlock()
}

// rowsOf splits pending rows into replaces and increments, in a fixed
// order (listener, amphora) so that concurrent writers lock rows alike.
func rowsOf(pending map[pairKey]*pendingRow) (replaces, increments []ListenerStats) {
	keys := make([]pairKey, 0, len(pending))
	for k := range pending {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].listener != keys[j].listener {
			return keys[i].listener < keys[j].listener
		}
		return keys[i].amphora < keys[j].amphora
	})
	for _, k := range keys {
		p := pending[k]
		row := ListenerStats{ListenerID: k.listener, AmphoraID: k.amphora, ActiveConnections: p.active, ReceivedTime: p.received}
		if p.replace {
			row.BytesIn = p.base.BytesIn + p.sum.BytesIn
			row.BytesOut = p.base.BytesOut + p.sum.BytesOut
			row.TotalConnections = p.base.TotalConnections + p.sum.TotalConnections
			row.RequestErrors = p.base.RequestErrors + p.sum.RequestErrors
			replaces = append(replaces, row)
			continue
		}
		row.BytesIn, row.BytesOut = p.sum.BytesIn, p.sum.BytesOut
		row.TotalConnections, row.RequestErrors = p.sum.TotalConnections, p.sum.RequestErrors
		increments = append(increments, row)
	}
	return replaces, increments
}

// Run flushes every interval until ctx ends, then flushes once more with
// finalTimeout to write what is left.
func (a *Aggregator) Run(ctx context.Context, interval, finalTimeout time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			if err := a.Flush(ctx); err != nil && ctx.Err() == nil {
				a.cfg.Logger.Warn("statistics not written yet; kept for the next flush", "pairs", a.Pending(), "err", err)
			}
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.Background(), finalTimeout)
			if err := a.Flush(final); err != nil {
				a.cfg.Logger.Error("statistics lost at shutdown: the last flush failed", "pairs", a.Pending(), "err", err)
			}
			cancel()
			return
		}
	}
}
