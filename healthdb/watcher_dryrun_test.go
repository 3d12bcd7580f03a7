package healthdb_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/octavia-vpp/health/healthdb"
	"github.com/octavia-vpp/health/healthdb/failover"
)

// With failover_driver = noop, one stale episode is one "would fail
// over", as a dispatched failover keeps its claim: later cycles leave the
// amphora alone until it is heard from again, and the database's busy
// flag is left as it was found. A new episode counts again.
func TestDryRunHoldsUntilHeardFrom(t *testing.T) {
	clk := newClock()
	f := newMemFleet(clk.Now)
	f.amphora("amp-frozen", "lb-1", "ALLOCATED", 10*time.Minute, false)
	f.amphora("amp-fine", "lb-1", "ALLOCATED", 0, false)
	reg := prometheus.NewRegistry()
	w := memWatcher(t, f, failover.Noop{Log: quietLog()}, clk, func(c *healthdb.WatcherConfig) {
		c.Metrics = healthdb.NewWatcherMetrics(reg)
	})
	dryRuns := func() int {
		t.Helper()
		n, err := testutil.GatherAndCount(reg, "octavia_hm_failovers_total")
		if err != nil || n == 0 {
			t.Fatalf("octavia_hm_failovers_total: %d series, %v", n, err)
		}
		families, _ := reg.Gather()
		for _, fam := range families {
			for _, m := range fam.GetMetric() {
				for _, l := range m.GetLabel() {
					if fam.GetName() == "octavia_hm_failovers_total" && l.GetValue() == healthdb.ResultDryRun {
						return int(m.GetCounter().GetValue())
					}
				}
			}
		}
		return -1
	}

	if res := cycle(t, w); res.Dispatched != 1 {
		t.Fatalf("first cycle dispatched %d, want the frozen amphora", res.Dispatched)
	}
	for i := 0; i < 5; i++ {
		clk.Advance(10 * time.Second)
		f.heartbeat(t, "amp-fine")
		if res := cycle(t, w); res.Dispatched != 0 {
			t.Fatalf("cycle %d dispatched %d: the dry run's hold did not last", i+2, res.Dispatched)
		}
	}
	if got := dryRuns(); got != 1 {
		t.Errorf("%d dry-run failovers for one stale episode, want 1", got)
	}
	if f.busy(t, "amp-frozen") {
		t.Error("a dry run left amphora_health.busy set")
	}

	// Heard from again: the hold ends. A heartbeat of another amphora
	// does not end it.
	w.HeardFrom([]string{"amp-fine"})
	clk.Advance(10 * time.Second)
	if res := cycle(t, w); res.Dispatched != 0 {
		t.Fatalf("dispatched %d after another amphora's heartbeat", res.Dispatched)
	}
	f.heartbeat(t, "amp-frozen")
	w.HeardFrom([]string{"amp-frozen"})
	if res := cycle(t, w); res.Dispatched != 0 {
		t.Fatalf("dispatched %d right after the amphora's heartbeat", res.Dispatched)
	}
	// It freezes again: a second episode, a second "would fail over".
	clk.Advance(2 * time.Minute)
	f.heartbeat(t, "amp-fine")
	if res := cycle(t, w); res.Dispatched != 1 {
		t.Fatalf("second episode dispatched %d, want 1", res.Dispatched)
	}
	if got := dryRuns(); got != 2 {
		t.Errorf("%d dry-run failovers for two stale episodes, want 2", got)
	}
}
