// Package sinktest is the conformance suite of statsdriver.FlushSink, the
// store interface the statistics Aggregator consumes. It runs against the
// PostgreSQL stats_db (statsdriver.DB) and statsdriver.MemorySink; a later
// store (MySQL) passes it too.
package sinktest

import (
	"context"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/octavia-vpp/health/statsdriver"
)

// Backend is one empty sink under test with the means to read its rows.
type Backend interface {
	Sink() statsdriver.FlushSink
	// Row reads a listener_statistics row (an empty amphora id is the
	// listener id); ok is false when there is none.
	Row(listenerID, amphoraID string) (row statsdriver.StoredStats, ok bool)
	// DropKey deletes the sink's flush key, as pruning does.
	DropKey()
}

// Run runs the suite; newBackend makes an empty sink for one subtest.
func Run(t *testing.T, newBackend func(t *testing.T) Backend) {
	for _, c := range []struct {
		name string
		test func(*testing.T, Backend)
	}{
		{"FirstFlushCreatesRows", testFirstFlush},
		{"IncrementsAddGaugeReplaced", testIncrements},
		{"RefusedRowsAlone", testRefusals},
		{"SumBoundaries", testSumBoundaries},
		{"RetryOfAppliedFlushIsNotCounted", testRetry},
		{"KeyLost", testKeyLost},
		{"SequenceStartsAtOne", testSeqZero},
	} {
		t.Run(c.name, func(t *testing.T) { c.test(t, newBackend(t)) })
	}
}

var ctx = context.Background()

func st(listener, amphora string, v statsdriver.StoredStats) statsdriver.ListenerStats {
	return statsdriver.ListenerStats{ListenerID: listener, AmphoraID: amphora, BytesIn: v.BytesIn, BytesOut: v.BytesOut,
		ActiveConnections: v.ActiveConnections, TotalConnections: v.TotalConnections, RequestErrors: v.RequestErrors}
}

func flush(t *testing.T, b Backend, batch *statsdriver.FlushBatch) statsdriver.FlushResult {
	t.Helper()
	res, err := b.Sink().ApplyFlush(ctx, batch)
	if err != nil {
		t.Fatalf("flush %d: %v", batch.Seq, err)
	}
	return res
}

func wantRow(t *testing.T, b Backend, listener, amphora string, want statsdriver.StoredStats) {
	t.Helper()
	got, ok := b.Row(listener, amphora)
	if !ok || got != want {
		t.Errorf("%s/%s: %+v (present %v), want %+v", listener, amphora, got, ok, want)
	}
}

func testFirstFlush(t *testing.T, b Backend) {
	v := statsdriver.StoredStats{BytesIn: 10, BytesOut: 20, ActiveConnections: 3, TotalConnections: 40, RequestErrors: 5}
	d := statsdriver.StoredStats{BytesIn: 1, BytesOut: 2, ActiveConnections: 7, TotalConnections: 4, RequestErrors: 0}
	res := flush(t, b, &statsdriver.FlushBatch{Seq: 1,
		Replaces:   []statsdriver.ListenerStats{st("l-1", "a-1", v), st("l-provider", "", v)},
		Increments: []statsdriver.ListenerStats{st("l-2", "a-1", d)},
	})
	if res.AlreadyApplied || res.Unresolvable || len(res.Refused) != 0 {
		t.Errorf("result %+v", res)
	}
	wantRow(t, b, "l-1", "a-1", v)
	wantRow(t, b, "l-provider", "l-provider", v) // filed under the listener id
	wantRow(t, b, "l-2", "a-1", d)               // a missing row takes the deltas as they are
}

func testIncrements(t *testing.T, b Backend) {
	v := statsdriver.StoredStats{BytesIn: 10, BytesOut: 20, ActiveConnections: 3, TotalConnections: 40, RequestErrors: 5}
	flush(t, b, &statsdriver.FlushBatch{Seq: 1, Replaces: []statsdriver.ListenerStats{st("l-1", "a-1", v), st("l-2", "a-1", v), st("l-3", "a-1", v)}})
	d := statsdriver.StoredStats{BytesIn: 1, BytesOut: 2, ActiveConnections: 9, TotalConnections: 4, RequestErrors: 1}
	r := statsdriver.StoredStats{BytesIn: 5, BytesOut: 6, ActiveConnections: 1, TotalConnections: 7, RequestErrors: 0}
	// A negative delta whose sum stays at or above zero is stored.
	down := statsdriver.StoredStats{BytesIn: -10, BytesOut: -1, ActiveConnections: 0, TotalConnections: -40, RequestErrors: -5}
	flush(t, b, &statsdriver.FlushBatch{Seq: 2,
		Increments: []statsdriver.ListenerStats{st("l-1", "a-1", d), st("l-3", "a-1", down)},
		Replaces:   []statsdriver.ListenerStats{st("l-2", "a-1", r)},
	})
	wantRow(t, b, "l-1", "a-1", statsdriver.StoredStats{BytesIn: 11, BytesOut: 22, ActiveConnections: 9, TotalConnections: 44, RequestErrors: 6})
	wantRow(t, b, "l-2", "a-1", r)
	wantRow(t, b, "l-3", "a-1", statsdriver.StoredStats{BytesIn: 0, BytesOut: 19, ActiveConnections: 0, TotalConnections: 0, RequestErrors: 0})
}

func testRefusals(t *testing.T, b Backend) {
	v := statsdriver.StoredStats{BytesIn: 10, BytesOut: 20, ActiveConnections: 3, TotalConnections: 40, RequestErrors: 5}
	flush(t, b, &statsdriver.FlushBatch{Seq: 1, Replaces: []statsdriver.ListenerStats{
		st("l-neg", "a-1", v), st("l-big", "a-1", statsdriver.StoredStats{BytesIn: math.MaxInt64 - 1})}})
	long := strings.Repeat("x", 37)
	res := flush(t, b, &statsdriver.FlushBatch{Seq: 2,
		Replaces: []statsdriver.ListenerStats{
			st("l-new-neg", "a-1", statsdriver.StoredStats{BytesIn: -1}),
			st("l-gauge", "a-1", statsdriver.StoredStats{ActiveConnections: math.MaxInt32 + 1}),
			st(long, "a-1", v),
			st("l-nul\x00", "a-1", v),
			st("l-ok", "a-1", v),
		},
		Increments: []statsdriver.ListenerStats{
			st("l-neg", "a-1", statsdriver.StoredStats{BytesIn: -11}),
			st("l-big", "a-1", statsdriver.StoredStats{BytesIn: 2}),
			st("l-ok-2", "a-1", v),
		},
	})
	var refused []string
	for _, r := range res.Refused {
		if r.Reason == nil {
			t.Errorf("%s/%s refused without a reason", r.ListenerID, r.AmphoraID)
		}
		refused = append(refused, r.ListenerID)
	}
	want := []string{long, "l-nul\x00", "l-new-neg", "l-gauge", "l-neg", "l-big"}
	if !reflect.DeepEqual(refused, want) {
		t.Errorf("refused %q, want %q", refused, want)
	}
	wantRow(t, b, "l-ok", "a-1", v)
	wantRow(t, b, "l-ok-2", "a-1", v)
	wantRow(t, b, "l-neg", "a-1", v)
	wantRow(t, b, "l-big", "a-1", statsdriver.StoredStats{BytesIn: math.MaxInt64 - 1})
	for _, l := range []string{"l-new-neg", "l-gauge"} {
		if r, ok := b.Row(l, "a-1"); ok {
			t.Errorf("refused %s written: %+v", l, r)
		}
	}
}

// testSumBoundaries adds deltas to each counter right at the edges Octavia
// checks: a sum of exactly math.MaxInt64 or 0 is stored, one past either
// is refused, and the row keeps its values.
func testSumBoundaries(t *testing.T, b Backend) {
	counters := []struct {
		name string
		set  func(v *statsdriver.StoredStats, n int64)
	}{
		{"bytes_in", func(v *statsdriver.StoredStats, n int64) { v.BytesIn = n }},
		{"bytes_out", func(v *statsdriver.StoredStats, n int64) { v.BytesOut = n }},
		{"total_connections", func(v *statsdriver.StoredStats, n int64) { v.TotalConnections = n }},
		{"request_errors", func(v *statsdriver.StoredStats, n int64) { v.RequestErrors = n }},
	}
	type pair struct {
		listener            string
		stored, delta, want statsdriver.StoredStats
		refused             bool
	}
	var pairs []pair
	for _, c := range counters {
		for _, p := range []struct {
			suffix          string
			stored, delta   int64
			refused         bool
			wantWhenWritten int64
		}{
			{"fits-max", math.MaxInt64 - 1, 1, false, math.MaxInt64},
			{"over-max", math.MaxInt64 - 1, 2, true, 0},
			{"fits-zero", -3, 3, false, 0},
			{"under-zero", -3, 2, true, 0},
		} {
			var stored, delta, want statsdriver.StoredStats
			c.set(&stored, p.stored)
			c.set(&delta, p.delta)
			delta.ActiveConnections = 4
			want = stored
			if !p.refused {
				c.set(&want, p.wantWhenWritten)
				want.ActiveConnections = 4
			}
			pairs = append(pairs, pair{"l-" + c.name + "-" + p.suffix, stored, delta, want, p.refused})
		}
	}
	var create, replace, increment []statsdriver.ListenerStats
	for _, p := range pairs {
		create = append(create, st(p.listener, "a-1", statsdriver.StoredStats{}))
		replace = append(replace, st(p.listener, "a-1", p.stored)) // an existing row takes negative values
		increment = append(increment, st(p.listener, "a-1", p.delta))
	}
	flush(t, b, &statsdriver.FlushBatch{Seq: 1, Replaces: create})
	if res := flush(t, b, &statsdriver.FlushBatch{Seq: 2, Replaces: replace}); len(res.Refused) != 0 {
		t.Fatalf("replacing existing rows refused %+v", res.Refused)
	}
	res := flush(t, b, &statsdriver.FlushBatch{Seq: 3, Increments: increment})
	refused := map[string]bool{}
	for _, r := range res.Refused {
		refused[r.ListenerID] = true
	}
	for _, p := range pairs {
		if refused[p.listener] != p.refused {
			t.Errorf("%s: refused %v, want %v", p.listener, refused[p.listener], p.refused)
		}
		wantRow(t, b, p.listener, "a-1", p.want)
	}
}

func testRetry(t *testing.T, b Backend) {
	d := statsdriver.StoredStats{BytesIn: 1, BytesOut: 1, ActiveConnections: 1, TotalConnections: 1, RequestErrors: 1}
	batch := &statsdriver.FlushBatch{Seq: 1, Increments: []statsdriver.ListenerStats{st("l-1", "a-1", d)}}
	flush(t, b, batch)
	retry := *batch
	retry.Retry = true
	if res := flush(t, b, &retry); !res.AlreadyApplied {
		t.Errorf("retry of a committed flush: %+v, want AlreadyApplied", res)
	}
	wantRow(t, b, "l-1", "a-1", d)
	flush(t, b, &statsdriver.FlushBatch{Seq: 2, Increments: []statsdriver.ListenerStats{st("l-1", "a-1", d)}})
	if res := flush(t, b, &retry); !res.AlreadyApplied {
		t.Errorf("retry of an older flush: %+v, want AlreadyApplied", res)
	}
	wantRow(t, b, "l-1", "a-1", statsdriver.StoredStats{BytesIn: 2, BytesOut: 2, ActiveConnections: 1, TotalConnections: 2, RequestErrors: 2})
	// A retry of a flush that did not commit is applied.
	third := &statsdriver.FlushBatch{Seq: 3, Retry: true, Increments: []statsdriver.ListenerStats{st("l-1", "a-1", d)}}
	if res := flush(t, b, third); res.AlreadyApplied || res.Unresolvable {
		t.Errorf("retry of an uncommitted flush: %+v", res)
	}
	wantRow(t, b, "l-1", "a-1", statsdriver.StoredStats{BytesIn: 3, BytesOut: 3, ActiveConnections: 1, TotalConnections: 3, RequestErrors: 3})
}

func testKeyLost(t *testing.T, b Backend) {
	d := statsdriver.StoredStats{BytesIn: 1, BytesOut: 1, ActiveConnections: 1, TotalConnections: 1, RequestErrors: 1}
	flush(t, b, &statsdriver.FlushBatch{Seq: 1, Increments: []statsdriver.ListenerStats{st("l-1", "a-1", d)}})
	b.DropKey()
	// Whether a retried flush committed cannot be told: it is dropped.
	res := flush(t, b, &statsdriver.FlushBatch{Seq: 2, Retry: true, Increments: []statsdriver.ListenerStats{st("l-1", "a-1", d)}})
	if !res.Unresolvable {
		t.Errorf("retry with the key gone: %+v, want Unresolvable", res)
	}
	wantRow(t, b, "l-1", "a-1", d)
	// A first attempt cannot have committed: the key is made again.
	res = flush(t, b, &statsdriver.FlushBatch{Seq: 3, Increments: []statsdriver.ListenerStats{st("l-1", "a-1", d)}})
	if res.AlreadyApplied || res.Unresolvable {
		t.Errorf("first attempt with the key gone: %+v", res)
	}
	wantRow(t, b, "l-1", "a-1", statsdriver.StoredStats{BytesIn: 2, BytesOut: 2, ActiveConnections: 1, TotalConnections: 2, RequestErrors: 2})
}

func testSeqZero(t *testing.T, b Backend) {
	if _, err := b.Sink().ApplyFlush(ctx, &statsdriver.FlushBatch{Seq: 0}); err == nil {
		t.Error("flush 0 accepted")
	}
}
