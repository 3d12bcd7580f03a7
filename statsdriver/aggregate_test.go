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

// memSink applies stats_db's row semantics in memory, and can fail.
type memSink struct {
	rows    map[pairKey]ListenerStats
	fail    error
	calls   int
	refuseL string // a listener whose rows it refuses, reporting the index
}

type refusal struct{ written int }

func (r refusal) Error() string    { return fmt.Sprintf("refused after %d rows", r.written) }
func (r refusal) WrittenRows() int { return r.written }

func (m *memSink) Update(_ context.Context, stats []ListenerStats, deltas bool) error {
	m.calls++
	if m.fail != nil {
		return m.fail
	}
	if m.rows == nil {
		m.rows = map[pairKey]ListenerStats{}
	}
	for i, s := range stats {
		if s.ListenerID == m.refuseL {
			return refusal{written: i}
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
	return nil
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
// with random sink outages, gives the rows applying each heartbeat in turn
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
				sink.fail = nil
				if r.IntN(3) == 0 {
					sink.fail = errors.New("database down")
				}
				a.Flush(ctx)
			}
		}
		sink.fail = nil
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

	// A refusal that does not say where it stopped drops the rows rather
	// than risk counting some twice.
	opaque := &memSink{fail: fmt.Errorf("%w: somewhere", ErrNotRecorded)}
	b := NewAggregator(AggregatorConfig{Sink: opaque, Logger: quietLog})
	b.Update(ctx, []ListenerStats{lst("a", "x", 1, 1, 1, 1, 1)}, true)
	if err := b.Flush(ctx); err != nil || b.Pending() != 0 || b.Discarded() != 1 {
		t.Errorf("opaque refusal: err %v, pending %d, discarded %d", err, b.Pending(), b.Discarded())
	}
}
