package healthdb

import (
	"context"
	"testing"
	"time"

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
	u, err := NewUpdater(UpdaterConfig{Store: NewStore(db), Deleter: noopDeleter{}, Rules: rules,
		Now: func() time.Time { return now }, Logger: quiet, Metrics: metrics})
	if err != nil {
		t.Fatal(err)
	}
	late := hb("amp-1", nil)
	late.RecvTime = now.Add(-time.Hour)
	if _, err := u.ApplyBatch(context.Background(), []*heartbeat.Message{hb("amp-1", nil), late, hb("amp-x", nil)}); err != nil {
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
	// Counted on the updater's clock: the gauge reads the wall clock,
	// which is past the fixed test time (2026-11-21 12:00 UTC) by more than
	// the window from that day on.
	if got := metrics.seen.count(now); got != 2 {
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
	metrics.seen.mark([]string{"amp-old"}, now.Add(-2*time.Minute))
	if got := metrics.seen.count(now); got != 2 {
		t.Errorf("an amphora older than the window still counts: %d", got)
	}
}
