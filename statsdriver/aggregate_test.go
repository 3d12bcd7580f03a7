package statsdriver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"testing"
)

// memSink applies stats_db's row semantics in memory, and can fail. As a
// Driver it applies each heartbeat in turn (the reference); as a FlushSink
// it keeps a flush key as DB does.
type memSink struct {
	rows    map[pairKey]ListenerStats
	fail    error // returned with nothing applied
	unknown bool  // apply, then report the outcome unknown
	calls   int
	refuseL string // a listener whose rows it refuses
	applied uint64 // the flush key: the last batch committed
	seqs    []uint64
}

func (m *memSink) Update(_ context.Context, stats []ListenerStats, deltas bool) error {
	for i, s := range stats {
		if s.ListenerID == m.refuseL {
			return fmt.Errorf("refused after %d rows", i)
		}
		m.apply(s, deltas)
	}
	return nil
}

func (m *memSink) apply(s ListenerStats, deltas bool) {
	if m.rows == nil {
		m.rows = map[pairKey]ListenerStats{}
	}
	k := pairKey{s.ListenerID, s.AmphoraID}
	row, ok := m.rows[k]
	if !deltas || !ok {
		row = s
	} else {
		row.BytesIn += s.BytesIn
		row.BytesOut += s.BytesOut
		row.TotalConnections += s.TotalConnections
		row.RequestErrors += s.RequestErrors
		row.ActiveConnections = s.ActiveConnections
	}
	row.ReceivedTime = s.ReceivedTime
	m.rows[k] = row
}

func (m *memSink) ApplyFlush(_ context.Context, b *FlushBatch) (FlushResult, error) {
	m.calls++
	m.seqs = append(m.seqs, b.Seq)
	if m.fail != nil {
		return FlushResult{}, m.fail
	}
	if b.Seq <= m.applied {
		return FlushResult{AlreadyApplied: true}, nil
	}
	if b.Seq != m.applied+1 {
		return FlushResult{}, fmt.Errorf("flush %d after %d", b.Seq, m.applied)
	}
	var res FlushResult
	for _, part := range []struct {
		rows   []ListenerStats
		deltas bool
	}{{b.Replaces, false}, {b.Increments, true}} {
		for _, s := range part.rows {
			if s.ListenerID == m.refuseL {
				res.Refused = append(res.Refused, RefusedRow{s.ListenerID, s.AmphoraID, errors.New("refused")})
				continue
			}
			m.apply(s, part.deltas)
		}
	}
	m.applied = b.Seq
	if m.unknown {
		return FlushResult{}, fmt.Errorf("%w: connection lost", ErrOutcomeUnknown)
	}
	return res, nil
}

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

func lst(listener, amphora string, in, out, active, total, errs int64) ListenerStats {
	return ListenerStats{ListenerID: listener, AmphoraID: amphora, BytesIn: in, BytesOut: out,
		ActiveConnections: active, TotalConnections: total, RequestErrors: errs}
}

func TestAggregatorFolds(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name string
		msgs []struct {
			s      ListenerStats
			deltas bool
		}
		start map[pairKey]ListenerStats
		want  ListenerStats
		calls int
	}{
		{"deltas sum, the gauge is the latest", []struct {
			s      ListenerStats
			deltas bool
		}{{lst("l", "a", 1, 2, 5, 3, 1), true}, {lst("l", "a", 10, 20, 7, 30, 0), true}},
			map[pairKey]ListenerStats{{"l", "a"}: lst("l", "a", 100, 100, 1, 100, 100)},
			lst("l", "a", 111, 122, 7, 133, 101), 1},
		{"absolute then deltas is one replace", []struct {
			s      ListenerStats
			deltas bool
		}{{lst("l", "a", 1, 1, 1, 1, 1), true}, {lst("l", "a", 50, 60, 2, 70, 8), false}, {lst("l", "a", 1, 1, 9, 1, 1), true}},
			map[pairKey]ListenerStats{{"l", "a"}: lst("l", "a", 100, 100, 1, 100, 100)},
			lst("l", "a", 51, 61, 9, 71, 9), 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sink := &memSink{rows: c.start}
			a := NewAggregator(AggregatorConfig{Sink: sink, Logger: quietLog})
			for _, m := range c.msgs {
				if err := a.Update(ctx, []ListenerStats{m.s}, m.deltas); err != nil {
					t.Fatal(err)
				}
			}
			if err := a.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			if got := sink.rows[pairKey{"l", "a"}]; !reflect.DeepEqual(got, c.want) {
				t.Errorf("row %+v, want %+v", got, c.want)
			}
			if sink.calls != c.calls {
				t.Errorf("%d sink calls, want %d", sink.calls, c.calls)
			}
		})
	}
}

// Applying heartbeats through the aggregator, flushing at random points
// with random sink outages and COMMITs whose answer is lost, gives the rows applying each heartbeat in turn
// gives: no delta lost, none counted twice.
func TestAggregatorMatchesSequentialUnderFailures(t *testing.T) {
	ctx := context.Background()
	for seed := uint64(0); seed < 200; seed++ {
		r := rand.New(rand.NewPCG(seed, 1))
		direct := &memSink{}
		sink := &memSink{}
		a := NewAggregator(AggregatorConfig{Sink: sink, Logger: quietLog})
		for range 1 + r.IntN(60) {
			var stats []ListenerStats
			amp := fmt.Sprintf("a%d", r.IntN(3))
			for l := range 1 + r.IntN(3) {
				stats = append(stats, lst(fmt.Sprintf("l%d", l), amp, r.Int64N(1000), r.Int64N(1000), r.Int64N(50), r.Int64N(100), r.Int64N(5)))
			}
			deltas := r.IntN(5) > 0
			direct.Update(ctx, stats, deltas)
			a.Update(ctx, stats, deltas)
			if r.IntN(4) == 0 {
				sink.fail, sink.unknown = nil, false
				switch r.IntN(4) {
				case 0:
					sink.fail = errors.New("database down")
				case 1:
					sink.unknown = true // committed, but the answer was lost
				}
				a.Flush(ctx)
			}
		}
		sink.fail, sink.unknown = nil, false
		if err := a.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(sink.rows, direct.rows) {
			t.Fatalf("seed %d: aggregated rows\n%v\nwant\n%v", seed, sink.rows, direct.rows)
		}
		if a.Pending() != 0 {
			t.Fatalf("seed %d: %d pairs still pending", seed, a.Pending())
		}
	}
}

func TestAggregatorRefusedRowsAndBound(t *testing.T) {
	ctx := context.Background()
	sink := &memSink{refuseL: "bad"}
	a := NewAggregator(AggregatorConfig{Sink: sink, Logger: quietLog, MaxPairs: 3})
	a.Update(ctx, []ListenerStats{lst("a", "x", 1, 1, 1, 1, 1), lst("bad", "x", 1, 1, 1, 1, 1), lst("c", "x", 1, 1, 1, 1, 1)}, true)
	if err := a.Update(ctx, []ListenerStats{lst("d", "x", 1, 1, 1, 1, 1)}, true); err == nil {
		t.Error("a fourth pair past MaxPairs 3 was accepted")
	}
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := sink.rows[pairKey{"c", "x"}]; !ok || len(sink.rows) != 2 {
		t.Errorf("rows %v: want a and c written around the refused one", sink.rows)
	}
	if a.Discarded() != 2 || a.Pending() != 0 {
		t.Errorf("discarded %d (want 2: one over the bound, one refused), pending %d", a.Discarded(), a.Pending())
	}

	// A flush in doubt that the sink cannot resolve is dropped, counted,
	// and not retried; the flushes after it go on.
	lost := &lostKeySink{}
	b := NewAggregator(AggregatorConfig{Sink: lost, Logger: quietLog})
	b.Update(ctx, []ListenerStats{lst("a", "x", 1, 1, 1, 1, 1), lst("b", "x", 1, 1, 1, 1, 1)}, true)
	if err := b.Flush(ctx); !errors.Is(err, ErrOutcomeUnknown) || b.Pending() != 2 {
		t.Fatalf("flush in doubt: err %v, pending %d", err, b.Pending())
	}
	b.Update(ctx, []ListenerStats{lst("a", "x", 1, 1, 1, 1, 1)}, true)
	if err := b.Flush(ctx); err != nil || b.Pending() != 0 || b.Discarded() != 2 {
		t.Errorf("unresolvable flush: err %v, pending %d, discarded %d (want 2)", err, b.Pending(), b.Discarded())
	}
	if !reflect.DeepEqual(lost.seqs, []uint64{1, 1, 2}) {
		t.Errorf("flush numbers sent %v, want [1 1 2]", lost.seqs)
	}

}

// lostKeySink loses the answer of its first flush, then cannot resolve it.
type lostKeySink struct{ seqs []uint64 }

func (l *lostKeySink) ApplyFlush(_ context.Context, b *FlushBatch) (FlushResult, error) {
	l.seqs = append(l.seqs, b.Seq)
	switch {
	case len(l.seqs) == 1:
		return FlushResult{}, fmt.Errorf("%w: connection lost", ErrOutcomeUnknown)
	case b.Retry:
		return FlushResult{Unresolvable: true}, nil
	}
	return FlushResult{}, nil
}

// A flush in doubt is retried whole, under its number, before the rows
// that arrived after it, which go in the next number: a replace in the
// newer rows must land after the older deltas.
func TestAggregatorRetriesFlushInDoubtFirst(t *testing.T) {
	ctx := context.Background()
	sink := &memSink{unknown: true}
	a := NewAggregator(AggregatorConfig{Sink: sink, Logger: quietLog})
	a.Update(ctx, []ListenerStats{lst("l", "a", 10, 10, 1, 10, 0)}, true)
	if err := a.Flush(ctx); !errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("flush: %v, want the outcome unknown", err)
	}
	a.Update(ctx, []ListenerStats{lst("l", "a", 500, 500, 2, 500, 5)}, false)
	a.Update(ctx, []ListenerStats{lst("l", "a", 1, 1, 3, 1, 0)}, true)
	sink.unknown = false
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if want := lst("l", "a", 501, 501, 3, 501, 5); !reflect.DeepEqual(sink.rows[pairKey{"l", "a"}], want) {
		t.Errorf("row %+v, want %+v", sink.rows[pairKey{"l", "a"}], want)
	}
	if !reflect.DeepEqual(sink.seqs, []uint64{1, 1, 2}) {
		t.Errorf("flush numbers sent %v, want [1 1 2]", sink.seqs)
	}
}

// A pair of a failed flush and the same pair arriving again count once
// against MaxPairs.
func TestAggregatorBoundCountsPairsOnce(t *testing.T) {
	ctx := context.Background()
	sink := &memSink{fail: errors.New("database down")}
	a := NewAggregator(AggregatorConfig{Sink: sink, Logger: quietLog, MaxPairs: 2})
	a.Update(ctx, []ListenerStats{lst("a", "x", 1, 1, 1, 1, 1), lst("b", "x", 1, 1, 1, 1, 1)}, true)
	if err := a.Flush(ctx); err == nil {
		t.Fatal("flush to a failing sink succeeded")
	}
	if err := a.Update(ctx, []ListenerStats{lst("a", "x", 1, 1, 1, 1, 1)}, true); err != nil {
		t.Errorf("a pair already held was refused: %v", err)
	}
	if err := a.Update(ctx, []ListenerStats{lst("c", "x", 1, 1, 1, 1, 1)}, true); err == nil {
		t.Error("a third pair past MaxPairs 2 was accepted")
	}
	if a.Pending() != 2 || a.Discarded() != 1 {
		t.Errorf("pending %d (want 2), discarded %d (want 1)", a.Pending(), a.Discarded())
	}
	sink.fail = nil
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := sink.rows[pairKey{"a", "x"}]; got.BytesIn != 2 || a.Pending() != 0 {
		t.Errorf("a's bytes_in %d (want 2), pending %d", got.BytesIn, a.Pending())
	}
}
