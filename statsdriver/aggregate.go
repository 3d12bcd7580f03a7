package statsdriver

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
)

// Aggregator sits in front of stats_db and turns a stream of heartbeats
// into one write per (listener, amphora) per flush, with the same final
// row as applying each heartbeat in turn:
//
//   - a run of V3 deltas becomes one increment by their sum, with the
//     latest active_connections;
//   - an absolute report (version 0-2) replaces everything before it, and
//     deltas after it are added to it, so the pair becomes one replace.
//
// Each flush is a numbered batch that the sink applies exactly once
// (FlushSink). A batch that fails is kept as it is, apart from what
// arrives meanwhile, and retried under the same number before anything
// newer, until the sink has an answer for it: applied now, or found
// applied by an earlier attempt whose COMMIT was cut off. So no delta is
// lost, and none is applied twice, even when an error is misjudged as
// "nothing committed". Memory is bounded by MaxPairs distinct pairs;
// past it, statistics for new pairs are discarded, counted and logged.
type Aggregator struct {
	cfg AggregatorConfig

	mu      sync.Mutex
	pending map[pairKey]*pendingRow
	// unsettledKeys are the pairs of the unsettled batch (the pending map
	// it was made from); pendingAlso counts those of them also in pending,
	// so that a pair counts once against MaxPairs.
	unsettledKeys map[pairKey]*pendingRow
	pendingAlso   int
	rejected      uint64
	// slab is where new pendingRows are taken from, many per allocation.
	slab []pendingRow
	// unsettled is the batch being written, or one that failed, retried
	// before anything newer. It is written under mu and flushing both.
	unsettled *FlushBatch
	// flushing serialises flushes, and guards nextSeq.
	flushing sync.Mutex
	nextSeq  uint64
}

// AggregatorConfig configures an Aggregator.
type AggregatorConfig struct {
	// Sink applies each flush exactly once (stats_db's DB).
	Sink FlushSink
	// MaxPairs bounds the distinct (listener, amphora) pairs held while the
	// sink is unavailable. Default 1,000,000.
	MaxPairs int
	Logger   *slog.Logger
	// OnFlush, if set, is told each flush's outcome (for metrics).
	OnFlush func(rows int, took time.Duration, err error)
}

type pairKey struct{ listener, amphora string }

// pendingRow is what a pair's row must become. With replace, base is the
// last absolute report's counters and sum what came after it; without,
// sum is added to whatever the row holds.
type pendingRow struct {
	replace   bool
	base, sum counters
	active    int64
	received  time.Time
}

// pendingSlab is how many pendingRows one allocation holds.
const pendingSlab = 256

// NewAggregator returns an empty aggregator.
func NewAggregator(cfg AggregatorConfig) *Aggregator {
	if cfg.MaxPairs <= 0 {
		cfg.MaxPairs = 1_000_000
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Aggregator{cfg: cfg, pending: map[pairKey]*pendingRow{}, nextSeq: 1}
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
			_, also := a.unsettledKeys[k]
			if !also && a.pairsLocked() >= a.cfg.MaxPairs {
				rejected++
				continue
			}
			if also {
				a.pendingAlso++
			}
			if len(a.slab) == 0 {
				a.slab = make([]pendingRow, pendingSlab)
			}
			p = &a.slab[0]
			a.slab = a.slab[1:]
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
		p.base = counters{s.BytesIn, s.BytesOut, s.TotalConnections, s.RequestErrors}
		p.sum = counters{}
		return
	}
	p.sum.bytesIn += s.BytesIn
	p.sum.bytesOut += s.BytesOut
	p.sum.totalConns += s.TotalConnections
	p.sum.requestErrors += s.RequestErrors
}

// Pending is the number of distinct pairs waiting to be written, counting
// those of the flush being written or of a failed one (which may have
// been written, see Flush).
func (a *Aggregator) Pending() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.pairsLocked()
}

func (a *Aggregator) pairsLocked() int {
	return len(a.pending) + len(a.unsettledKeys) - a.pendingAlso
}

// Discarded counts statistics dropped because MaxPairs was reached, the
// sink refused them, or a flush in doubt could not be resolved.
func (a *Aggregator) Discarded() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.rejected
}

// Flush writes everything pending: first a batch left unsettled by an
// earlier call, then what has been aggregated since. On failure the rows
// are kept for the next flush.
func (a *Aggregator) Flush(ctx context.Context) error {
	a.flushing.Lock()
	defer a.flushing.Unlock()
	if b := a.unsettled; b != nil {
		if err := a.apply(ctx, b); err != nil {
			return err
		}
		a.settled()
	}

	a.mu.Lock()
	taken := a.pending
	if len(taken) == 0 {
		a.mu.Unlock()
		return nil
	}
	b := &FlushBatch{Seq: a.nextSeq}
	a.nextSeq++
	b.Replaces, b.Increments = rowsOf(taken)
	// The batch is unsettled until the sink has an answer for it. If it
	// fails, it stays so, whole and under its number: merged into newer
	// rows, a retry that finds it committed could not tell the newer
	// deltas apart. Its pairs count against MaxPairs meanwhile.
	a.pending = make(map[pairKey]*pendingRow, len(taken))
	a.unsettled = b
	a.unsettledKeys = taken // no longer written
	a.pendingAlso = 0
	a.mu.Unlock()
	if err := a.apply(ctx, b); err != nil {
		return err
	}
	a.settled()
	return nil
}

// settled forgets the unsettled batch, which the sink has answered for.
func (a *Aggregator) settled() {
	a.mu.Lock()
	a.unsettled, a.unsettledKeys, a.pendingAlso = nil, nil, 0
	a.mu.Unlock()
}

// apply sends one batch and settles it if the sink has an answer. A batch
// whose outcome is unknown is marked Retry.
func (a *Aggregator) apply(ctx context.Context, b *FlushBatch) error {
	start := time.Now()
	res, err := a.cfg.Sink.ApplyFlush(ctx, b)
	if a.cfg.OnFlush != nil {
		a.cfg.OnFlush(len(b.Replaces)+len(b.Increments), time.Since(start), err)
	}
	if errors.Is(err, ErrOutcomeUnknown) {
		b.Retry = true
	}
	if err != nil {
		return err
	}
	a.settle(b, res)
	return nil
}

// settle counts and logs what a batch that has an answer did not write.
func (a *Aggregator) settle(b *FlushBatch, res FlushResult) {
	switch {
	case res.AlreadyApplied && b.Retry:
		a.cfg.Logger.Info("statistics flush had been committed before the connection was lost; not applied again",
			"flush", b.Seq, "rows", len(b.Replaces)+len(b.Increments))
	case res.AlreadyApplied:
		// No attempt of it can have committed: the key was moved by
		// someone else. Whether these rows are in cannot be told.
		n := len(b.Replaces) + len(b.Increments)
		a.cfg.Logger.Error("statistics flush dropped: its key in ovh_stats_flush is already past it, "+
			"though no attempt of it can have committed", "flush", b.Seq, "rows", n)
		a.countRefused(n)
	}
	if res.Unresolvable {
		n := len(b.Replaces) + len(b.Increments)
		a.cfg.Logger.Error("statistics flush dropped: it may have been committed before the connection was lost, "+
			"and its key is gone, so applying it could count it twice", "flush", b.Seq, "rows", n)
		a.countRefused(n)
	}
	for _, r := range res.Refused {
		a.cfg.Logger.Warn("listener statistics refused and dropped",
			"listener_id", r.ListenerID, "amphora_id", r.AmphoraID, "flush", b.Seq, "err", r.Reason)
	}
	a.countRefused(len(res.Refused))
}

func (a *Aggregator) countRefused(n int) {
	a.mu.Lock()
	a.rejected += uint64(n)
	a.mu.Unlock()
}

// rowsOf splits pending rows into replaces and increments, in a fixed
// order (listener, amphora) so that concurrent writers lock rows alike.
func rowsOf(pending map[pairKey]*pendingRow) (replaces, increments []ListenerStats) {
	type entry struct {
		k pairKey
		p *pendingRow
	}
	entries := make([]entry, 0, len(pending))
	nReplaces := 0
	for k, p := range pending {
		entries = append(entries, entry{k, p})
		if p.replace {
			nReplaces++
		}
	}
	slices.SortFunc(entries, func(a, b entry) int {
		if c := strings.Compare(a.k.listener, b.k.listener); c != 0 {
			return c
		}
		return strings.Compare(a.k.amphora, b.k.amphora)
	})
	if nReplaces > 0 {
		replaces = make([]ListenerStats, 0, nReplaces)
	}
	if nReplaces < len(entries) {
		increments = make([]ListenerStats, 0, len(entries)-nReplaces)
	}
	for _, e := range entries {
		p := e.p
		row := ListenerStats{ListenerID: e.k.listener, AmphoraID: e.k.amphora, ActiveConnections: p.active, ReceivedTime: p.received}
		if p.replace {
			row.BytesIn = p.base.bytesIn + p.sum.bytesIn
			row.BytesOut = p.base.bytesOut + p.sum.bytesOut
			row.TotalConnections = p.base.totalConns + p.sum.totalConns
			row.RequestErrors = p.base.requestErrors + p.sum.requestErrors
			replaces = append(replaces, row)
			continue
		}
		row.BytesIn, row.BytesOut = p.sum.bytesIn, p.sum.bytesOut
		row.TotalConnections, row.RequestErrors = p.sum.totalConns, p.sum.requestErrors
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
				// A batch in doubt may have been written; the rest was not.
				a.flushing.Lock()
				inDoubt := 0
				if b := a.unsettled; b != nil && b.Retry {
					inDoubt = len(b.Replaces) + len(b.Increments)
				}
				a.flushing.Unlock()
				a.cfg.Logger.Error("statistics lost at shutdown: the last flush failed",
					"pairs", a.Pending(), "pairs_in_doubt", inDoubt, "err", err)
			}
			cancel()
			return
		}
	}
}
