package pgstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/octavia-vpp/health/healthdb"
	"github.com/octavia-vpp/health/healthdb/pgstore"
	"github.com/octavia-vpp/health/test/pgtest"
)

// The amphora_health write updates the rows it finds and inserts the rest.
// A row another transaction deletes or inserts while the write waits for
// it must end up as the single INSERT ... ON CONFLICT left it: deleted,
// it is inserted again; inserted, it is updated, its busy flag kept.
func TestApplyHealthRacesWithConcurrentWriters(t *testing.T) {
	old := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cases := []struct {
		name     string
		seed     bool   // the row exists, busy false, last_update old
		other    string // the concurrent transaction's statement
		wantBusy bool
	}{
		{"deleted meanwhile", true, `DELETE FROM amphora_health WHERE amphora_id = 'amp-1'`, false},
		{"inserted meanwhile", false, `INSERT INTO amphora_health (amphora_id, last_update, busy) VALUES ('amp-1', '2026-01-02 03:04:05', true)`, true},
		{"updated meanwhile", true, `UPDATE amphora_health SET busy = true WHERE amphora_id = 'amp-1'`, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			db := pgtest.NewPool(t)
			if c.seed {
				if _, err := db.Exec(ctx, `INSERT INTO amphora_health (amphora_id, last_update, busy) VALUES ('amp-1', $1, false)`, old); err != nil {
					t.Fatal(err)
				}
			}
			other, err := db.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer other.Rollback(ctx) //nolint:errcheck
			if _, err := other.Exec(ctx, c.other); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() {
				done <- pgstore.New(db).Apply(ctx, &healthdb.Writes{Health: []string{"amp-1"}})
			}()
			waitForLockWait(t, db)
			if err := other.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			var last time.Time
			var busy bool
			if err := db.QueryRow(ctx, `SELECT last_update, busy FROM amphora_health WHERE amphora_id = 'amp-1'`).Scan(&last, &busy); err != nil {
				t.Fatalf("amp-1's row: %v", err)
			}
			if busy != c.wantBusy || !last.After(old) {
				t.Errorf("busy %v last_update %v, want busy %v and a last_update after %v", busy, last, c.wantBusy, old)
			}
		})
	}
}

// waitForLockWait returns once a backend of the database waits for a lock.
func waitForLockWait(t *testing.T, db interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var waiting bool
		if err := db.QueryRow(context.Background(), `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock')`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("the health write never waited for the concurrent transaction")
}
