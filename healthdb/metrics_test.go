package healthdb

import (
	"context"
	"testing"
	"time"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/octavia-vpp/health/heartbeat"
)

func TestUpdaterMetrics(t *testing.T) {
	db := openDB(t)
	f := &fixture{t: t, db: db}
	f.lb("lb-1", "ACTIVE", "OFFLINE", true)
	f.amphora("amp-1", "lb-1", "ALLOCATED", "c-1")
	reg := prometheus.NewRegistry()
	metrics := NewUpdaterMetrics(reg, time.Minute)
	// The amphorae-seen gauge counts against the wall clock, so this test
	// runs on it rather than on the fixed test time.
	clock := time.Now()
	u, err := NewUpdater(UpdaterConfig{Store: NewStore(db), Deleter: noopDeleter{}, Rules: rules,
		Now: func() time.Time { return clock }, Logger: quiet, Metrics: metrics})
	if err != nil {
		t.Fatal(err)
	}
	onTime, late, unknown := hb("amp-1", nil), hb("amp-1", nil), hb("amp-x", nil)
	onTime.RecvTime, late.RecvTime, unknown.RecvTime = clock, clock.Add(-time.Hour), clock
	if _, err := u.ApplyBatch(context.Background(), []*heartbeat.Message{onTime, late, unknown}); err != nil {
		t.Fatal(err)
	}
	for outcome, want := range map[string]float64{"written": 1, "too_late": 1, "unknown_amphora": 1, "zombie": 0} {
		if got := testutil.ToFloat64(metrics.outcomes.WithLabelValues(outcome)); got != want {
			t.Errorf("outcome %s = %v, want %v", outcome, got, want)
		}
	}
	if got := testutil.ToFloat64(metrics.changes.WithLabelValues("load_balancer", "ONLINE")); got != 1 {
		t.Errorf("status changes = %v", got)
	}
	if got := testutil.ToFloat64(metrics.amphoraeSeen); got != 2 {
		t.Errorf("amphorae seen = %v, want 2 (each distinct id once)", got)
	}
	// Every heartbeat of a committed batch has its receive-to-commit time.
	var hist dto.Metric
	if err := metrics.commitLatency.Write(&hist); err != nil || hist.GetHistogram().GetSampleCount() != 3 {
		t.Errorf("receive-to-commit samples %d (%v), want 3", hist.GetHistogram().GetSampleCount(), err)
	}
	if n := testutil.CollectAndCount(metrics.batchSize); n != 1 {
		t.Errorf("batch size histogram: %d series", n)
	}
	metrics.seen.mark([]string{"amp-old"}, clock.Add(-2*time.Minute))
	if got := metrics.seen.count(clock); got != 2 {
		t.Errorf("an amphora older than the window still counts: %d", got)
	}
}

// A seen amphora's id must not keep the heartbeat it came from in memory.
func TestSeenAmphoraeCopiesIDs(t *testing.T) {
	s := &seenAmphorae{window: time.Minute, last: map[string]*time.Time{}}
	for round, text := range []string{`{"id": "amp-1", ...}`, `{"id": "amp-1", "seq": 2}`} {
		id := text[7:12] // as the decoder slices ids out of the inflated text
		s.mark([]string{id}, now.Add(time.Duration(round)*time.Second))
		for key, at := range s.last {
			if unsafe.StringData(key) == unsafe.StringData(id) {
				t.Errorf("round %d: the key %q shares the message's memory", round, key)
			}
			if !at.Equal(now.Add(time.Duration(round) * time.Second)) {
				t.Errorf("round %d: %q last seen %v", round, key, at)
			}
		}
	}
	if len(s.last) != 1 {
		t.Errorf("%d entries, want 1", len(s.last))
	}
}
