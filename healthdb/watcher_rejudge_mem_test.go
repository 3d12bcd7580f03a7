package healthdb_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/octavia-vpp/health/healthdb"
	"github.com/octavia-vpp/health/healthdb/failover/failovertest"
)

// slowClaimStore runs duringClaim inside ClaimStale, as if the claim had
// waited on the database while the rest of the process went on.
type slowClaimStore struct {
	healthdb.WatcherStore
	duringClaim func()
}

func (s slowClaimStore) ClaimStale(ctx context.Context, req healthdb.ClaimRequest) (healthdb.ClaimResult, error) {
	s.duringClaim()
	return s.WatcherStore.ClaimStale(ctx, req)
}

// Self-health is judged again once a claim returns: when a heartbeat write
// failed or hung while the claim waited, the amphorae claimed (whose rows
// aged behind that write) are released, not failed over.
func TestWatcherJudgesAgainAfterASlowClaim(t *testing.T) {
	tests := []struct {
		name        string
		duringClaim func(o *healthdb.Observer, now time.Time)
		want        string // suppression reason; "" dispatches
	}{
		{"nothing changed", func(*healthdb.Observer, time.Time) {}, ""},
		{"a health write failed", func(o *healthdb.Observer, now time.Time) {
			o.HealthBatchResult(errors.New("disk full"), now)
		}, healthdb.SuppressWritesFailing},
		{"a health write hangs", func(o *healthdb.Observer, now time.Time) {
			o.HeartbeatReceived(now.Add(-40 * time.Second)) // half of heartbeat_timeout and more
		}, healthdb.SuppressWritesStalled},
		{"the database went away and came back with the claim", func(o *healthdb.Observer, now time.Time) {
			o.DatabaseResult(errors.New("connection refused"), now)
		}, healthdb.SuppressDatabaseRecovering},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newMemFleet(nil)
			stale := []string{"amp-1", "amp-2", "amp-3"}
			for _, id := range stale {
				f.amphora(id, "lb-1", "ALLOCATED", 10*time.Minute, false)
			}
			o := healthdb.NewObserver(time.Now(), time.Minute)
			o.TrackHealthBatches()
			o.HeartbeatReceived(time.Now())
			o.HealthBatchResult(nil, time.Now())
			fake := failovertest.New(t)
			reg := prometheus.NewRegistry()
			store := slowClaimStore{f, func() { tt.duringClaim(o, time.Now()) }}
			w := memWatcher(t, store, octaviaAPI(t, fake), nil, func(c *healthdb.WatcherConfig) {
				c.Observer = o
				c.Metrics = healthdb.NewWatcherMetrics(reg)
			})
			res := cycle(t, w)
			if res.Suppressed != tt.want {
				t.Errorf("suppressed %q; want %q", res.Suppressed, tt.want)
			}
			withdrawn := counterValue(t, reg, "octavia_hm_failover_claims_withdrawn_total")
			if tt.want == "" {
				if res.Dispatched != len(stale) || len(fake.Failovers()) != len(stale) {
					t.Errorf("dispatched %d, calls %v; want every stale amphora", res.Dispatched, fake.Failovers())
				}
				if withdrawn != 0 {
					t.Errorf("%v claims withdrawn; want none", withdrawn)
				}
				return
			}
			if res.Dispatched != 0 || len(fake.Failovers()) != 0 {
				t.Errorf("dispatched %d, calls %v; want none", res.Dispatched, fake.Failovers())
			}
			for _, id := range stale {
				if f.busy(t, id) {
					t.Errorf("%s still claimed; want released", id)
				}
			}
			if withdrawn != float64(len(stale)) {
				t.Errorf("%v claims withdrawn; want %d", withdrawn, len(stale))
			}
		})
	}
}

func counterValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}
