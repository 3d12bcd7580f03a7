package mysqlstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/octavia-vpp/health/healthdb"
)

// The statements that name their rows by id wait on those rows only. Another
// transaction (a hung health write, Octavia's API or worker) holds one row
// of each table; every statement here names all the others, which is
// when MariaDB, left to itself, scans the whole table instead of reading
// the named keys, and waits on the row it was never asked about. A claim
// that waited so judged self-health before the wait, and once the lock
// was let go claimed the amphorae whose heartbeats had waited behind it.
func TestNamedRowStatementsWaitOnNoOtherRow(t *testing.T) {
	s, db := openStore(t)
	b := &myBackend{t: t, db: db, s: s}
	const n = 6
	var others []string
	for i := 1; i <= n; i++ {
		lb, amp, l := fmt.Sprintf("lb-%d", i), fmt.Sprintf("amp-%d", i), fmt.Sprintf("l-%d", i)
		b.AddLoadBalancer(lb, "ACTIVE", "ONLINE", true)
		b.AddAmphora(amp, lb, "ALLOCATED", "c-"+amp)
		b.AddHealth(amp, 10*time.Second, false)
		b.AddListener(l, lb, "HTTP", "ONLINE", true, "")
		b.AddPool("p-"+l, lb, "ONLINE")
		b.AddMember("m-"+l, "p-"+l, "ONLINE", true)
		if i > 1 {
			others = append(others, amp)
		}
	}
	ctx := context.Background()
	holder, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Rollback()
	for _, q := range []string{
		`SELECT 1 FROM amphora_health WHERE amphora_id = 'amp-1' FOR UPDATE`,
		`SELECT 1 FROM amphora WHERE id = 'amp-1' FOR UPDATE`,
		`SELECT 1 FROM load_balancer WHERE id = 'lb-1' FOR UPDATE`,
		`SELECT 1 FROM listener WHERE id = 'l-1' FOR UPDATE`,
		`SELECT 1 FROM pool WHERE id = 'p-l-1' FOR UPDATE`,
		`SELECT 1 FROM member WHERE id = 'm-l-1' FOR UPDATE`,
	} {
		if _, err := holder.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}

	// Well below innodb_lock_wait_timeout (50 s): a statement that waits
	// on the held rows runs into it.
	bounded := func(name string, f func(context.Context) error) {
		t.Helper()
		ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		start := time.Now()
		if err := f(ctx); err != nil {
			t.Fatalf("%s, beside a transaction holding rows it does not name: %v after %v", name, err,
				time.Since(start).Round(time.Millisecond))
		}
	}
	bounded("ClaimStale", func(ctx context.Context) error {
		res, err := s.ClaimStale(ctx, healthdb.ClaimRequest{HeartbeatTimeout: 2 * time.Second, Limit: 10})
		if err == nil && len(res.Claimed) != n-1 {
			err = fmt.Errorf("claimed %v; want the %d unlocked stale amphorae", res.Claimed, n-1)
		}
		return err
	})
	bounded("Unclaim", func(ctx context.Context) error { return s.Unclaim(ctx, others) })
	bounded("Apply", func(ctx context.Context) error {
		w := &healthdb.Writes{Health: others, LoadBalancers: map[string]string{}, Listeners: map[string]string{},
			Pools: map[string]string{}, Members: map[string]string{}}
		for i := 2; i <= n; i++ {
			w.LoadBalancers[fmt.Sprintf("lb-%d", i)] = "DEGRADED"
			w.Listeners[fmt.Sprintf("l-%d", i)] = "DEGRADED"
			w.Pools[fmt.Sprintf("p-l-%d", i)] = "DEGRADED"
			w.Members[fmt.Sprintf("m-l-%d", i)] = "ERROR"
		}
		return s.Apply(ctx, w)
	})
	if status, _ := b.OperatingStatus("member", "m-l-6"); status != "ERROR" {
		t.Errorf("member m-l-6 is %s after Apply; want ERROR", status)
	}
	if _, busy, _ := b.Health("amp-2"); busy {
		t.Error("amp-2 still claimed after Unclaim")
	}
}
