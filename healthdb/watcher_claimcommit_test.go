package healthdb

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/octavia-vpp/health/healthdb/failover/failovertest"
	"github.com/octavia-vpp/health/test/pgtest"
)

// A claim whose COMMIT got no answer is looked up and released when it
// committed, without a failover; when it did not commit nothing is left
// busy. Either way the next check claims the amphora and fails it over
// once.
func TestClaimWithUnknownCommitOutcome(t *testing.T) {
	for _, tc := range []struct {
		name     string
		cut      pgtest.CommitCut
		released bool // released after a commit, rather than never committed
	}{
		{"committed", pgtest.CommitCut{AfterReply: true}, true},
		{"rolled back", pgtest.CommitCut{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dbURL := pgtest.NewDB(t)
			direct, err := pgxpool.New(context.Background(), dbURL)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(direct.Close)
			proxy, proxiedURL := pgtest.NewProxy(t, dbURL)
			viaProxy, err := pgxpool.New(context.Background(), proxiedURL)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(viaProxy.Close)

			f := &fixture{t: t, db: direct}
			f.lb("lb-1", "ACTIVE", "ONLINE", true)
			f.amphora("amp-1", "lb-1", "ALLOCATED", "vm-1")
			f.healthRow("amp-1", 10*time.Minute, false)
			fake := failovertest.New(t)
			metrics := NewWatcherMetrics(prometheus.NewRegistry())
			w := watcherFor(t, viaProxy, octaviaAPI(t, fake), nil, func(c *WatcherConfig) { c.Metrics = metrics })

			proxy.CutAtCommit(tc.cut)
			res, err := w.Cycle(context.Background())
			w.Wait()
			var unknown *ClaimCommitUnknownError
			if !errors.As(err, &unknown) || len(unknown.AmphoraIDs) != 1 || unknown.AmphoraIDs[0] != "amp-1" {
				t.Fatalf("cycle: %v; want the claim of amp-1 with its COMMIT outcome unknown", err)
			}
			if res.Dispatched != 0 || len(fake.Failovers()) != 0 {
				t.Fatalf("dispatched %d, failover calls %v; want none for a claim not known to be ours", res.Dispatched, fake.Failovers())
			}
			status, err := NewStore(direct).TxStatus(context.Background(), unknown.TxID)
			if err != nil {
				t.Fatal(err)
			}
			if want := map[bool]string{true: TxCommitted, false: TxAborted}[tc.released]; status != want {
				t.Fatalf("the claim transaction is %q; want %q (the proxy did not drop where meant)", status, want)
			}
			// Resolved within the same check: not left busy.
			if _, busy := f.amphoraState("amp-1"); busy == nil || *busy {
				t.Errorf("amp-1 busy after the unknown COMMIT was resolved; want released")
			}
			if got := testutil.ToFloat64(metrics.claimCommitUnknown); got != 1 {
				t.Errorf("claim_commit_unknown = %v; want 1", got)
			}
			if len(w.unresolved) != 0 {
				t.Errorf("still unresolved: %v", w.unresolved)
			}

			if res := cycle(t, w); res.Dispatched != 1 {
				t.Fatalf("next check dispatched %d; want amp-1", res.Dispatched)
			}
			if got := fake.Failovers(); got["amp-1"] != 1 {
				t.Errorf("failover calls %v; want amp-1 exactly once", got)
			}
			if _, busy := f.amphoraState("amp-1"); !*busy {
				t.Error("amp-1's accepted failover left it unclaimed")
			}
		})
	}
}
