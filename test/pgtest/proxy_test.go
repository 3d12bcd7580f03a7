package pgtest_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/octavia-vpp/health/test/pgtest"
)

// A cut before COMMIT loses the transaction; a cut after it keeps it,
// though the client sees an error either way. Mentioning picks the
// transaction.
func TestProxyCutsAtCommit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.NewDB(t)
	direct := connect(t, url)
	if _, err := direct.Exec(ctx, `CREATE TABLE marks (n int); CREATE TABLE other (n int)`); err != nil {
		t.Fatal(err)
	}
	proxy, proxied := pgtest.NewProxy(t, url)
	for _, tc := range []struct {
		n          int
		afterReply bool
		committed  bool
	}{{1, false, false}, {2, true, true}} {
		c := connect(t, proxied)
		// The INSERT below is prepared (and cached) before the cut is
		// armed: its later Binds still count as mentioning marks.
		if _, err := c.Exec(ctx, `INSERT INTO marks VALUES ($1)`, 0); err != nil {
			t.Fatal(err)
		}
		fired := proxy.CutAtCommit(pgtest.CommitCut{AfterReply: tc.afterReply, Mentioning: "marks"})
		// A transaction not mentioning marks goes through.
		if _, err := c.Exec(ctx, `INSERT INTO other VALUES (1)`); err != nil {
			t.Fatal(err)
		}
		if err := pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `INSERT INTO other VALUES ($1)`, 2)
			return err
		}); err != nil {
			t.Fatalf("unrelated transaction: %v", err)
		}
		tx, err := c.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO marks VALUES ($1)`, tc.n); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(ctx); err == nil {
			t.Errorf("cut %d: COMMIT reported success", tc.n)
		}
		select {
		case <-fired:
		case <-time.After(10 * time.Second):
			t.Fatalf("cut %d never fired", tc.n)
		}
		var found bool
		if err := direct.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM marks WHERE n = $1)`, tc.n).Scan(&found); err != nil {
			t.Fatal(err)
		}
		if found != tc.committed {
			t.Errorf("cut %d (after reply %v): committed %v, want %v", tc.n, tc.afterReply, found, tc.committed)
		}
	}
}
