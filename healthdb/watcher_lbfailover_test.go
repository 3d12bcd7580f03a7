package healthdb

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/octavia-vpp/health/healthdb/failover/failovertest"
)

// octaviaRules makes the fake API answer as Octavia 11's does, from the
// test database: the amphora failover test-and-sets an ACTIVE load
// balancer to PENDING_UPDATE (MUTABLE_STATUSES), the load balancer
// failover an ACTIVE or ERROR one (FAILOVERABLE_STATUSES); anything else
// is 409.
func octaviaRules(t *testing.T, fake *failovertest.Fake, db *pgxpool.Pool) {
	testAndSet := func(lbSQL, id string, accepted ...string) int {
		tag, err := db.Exec(context.Background(), `UPDATE load_balancer SET provisioning_status = 'PENDING_UPDATE'
			WHERE id = (`+lbSQL+`) AND provisioning_status = ANY($2)`, id, accepted)
		if err != nil {
			t.Errorf("fake API: %v", err)
			return http.StatusInternalServerError
		}
		if tag.RowsAffected() == 0 {
			return http.StatusConflict
		}
		return http.StatusAccepted
	}
	fake.Respond(func(amphoraID string, _ int) int {
		return testAndSet(`SELECT load_balancer_id FROM amphora WHERE id = $1`, amphoraID, "ACTIVE")
	})
	fake.RespondLoadBalancer(func(lbID string, _ int) int {
		return testAndSet(`SELECT $1::varchar`, lbID, "ACTIVE", "ERROR")
	})
}

// A stale amphora of a load balancer in ERROR: the amphora failover API
// refuses it (409) and the load balancer failover is requested, exactly
// once. A load balancer in PENDING_UPDATE keeps its 409: released and
// retried, never failed over as a load balancer.
func TestWatcherFailsOverLoadBalancerInError(t *testing.T) {
	db := openDB(t)
	f := &fixture{t: t, db: db}
	f.lb("lb-error", "ERROR", "ERROR", true)
	f.lb("lb-pair", "ERROR", "ONLINE", true) // ACTIVE_STANDBY, both amphorae silent
	f.lb("lb-pending", "PENDING_UPDATE", "ONLINE", true)
	f.lb("lb-active", "ACTIVE", "ONLINE", true)
	for id, lb := range map[string]string{
		"amp-error": "lb-error", "amp-pair-a": "lb-pair", "amp-pair-b": "lb-pair",
		"amp-pending": "lb-pending", "amp-active": "lb-active",
	} {
		f.amphora(id, lb, "ALLOCATED", "vm-"+id)
		f.healthRow(id, 10*time.Minute, false)
	}
	fake := failovertest.New(t)
	octaviaRules(t, fake, db)
	reg := prometheus.NewRegistry()
	metrics := NewWatcherMetrics(reg)
	w := watcherFor(t, db, octaviaAPI(t, fake), nil, func(c *WatcherConfig) { c.Metrics = metrics })

	const cycles = 4
	for range cycles {
		cycle(t, w)
	}

	amp, lbs := fake.Failovers(), fake.LoadBalancerFailovers()
	if amp["amp-error"] != 1 || lbs["lb-error"] != 1 {
		t.Errorf("amp-error: %d amphora and %d load balancer failover calls; want 1 and 1", amp["amp-error"], lbs["lb-error"])
	}
	if _, busy := f.amphoraState("amp-error"); !*busy {
		t.Error("amp-error: claim released after its load balancer failover was accepted")
	}
	if s, _ := f.statusOfLB("lb-error"); s != "PENDING_UPDATE" {
		t.Errorf("lb-error is %s; want PENDING_UPDATE (failed over)", s)
	}
	if amp["amp-active"] != 1 || lbs["lb-active"] != 0 {
		t.Errorf("amp-active: %d amphora and %d load balancer calls; want 1 and 0", amp["amp-active"], lbs["lb-active"])
	}

	// The pending load balancer: one refused amphora failover per check,
	// released each time, never a load balancer failover.
	if amp["amp-pending"] != cycles || lbs["lb-pending"] != 0 {
		t.Errorf("amp-pending: %d amphora calls, %d load balancer calls; want %d and 0", amp["amp-pending"], lbs["lb-pending"], cycles)
	}
	if _, busy := f.amphoraState("amp-pending"); *busy {
		t.Error("amp-pending: still claimed after a 409")
	}

	// Both amphorae of the pair were dispatched in the first check: one
	// load balancer failover was accepted; the other amphora's request, at
	// most one load balancer call, met the load balancer already
	// PENDING_UPDATE and was released to be retried as any 409 is.
	pairLB := lbs["lb-pair"]
	if pairLB < 1 || pairLB > 2 || amp["amp-pair-a"]+amp["amp-pair-b"] < 2 {
		t.Errorf("lb-pair: %d load balancer calls, amphora calls %d+%d; want 1 or 2 (one per stale amphora at most)",
			pairLB, amp["amp-pair-a"], amp["amp-pair-b"])
	}
	_, busyA := f.amphoraState("amp-pair-a")
	_, busyB := f.amphoraState("amp-pair-b")
	if *busyA == *busyB {
		t.Errorf("lb-pair: busy %v and %v; want exactly one amphora holding the accepted failover", *busyA, *busyB)
	}

	failovers := func(result string) float64 { return testutil.ToFloat64(metrics.failovers.WithLabelValues(result)) }
	if got := failovers(ResultLoadBalancerAccepted); got != 2 {
		t.Errorf("load_balancer_accepted = %v; want 2 (lb-error and lb-pair)", got)
	}
	if got := failovers(ResultAccepted); got != 1 {
		t.Errorf("accepted = %v; want 1 (amp-active)", got)
	}
}
