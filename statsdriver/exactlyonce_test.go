package statsdriver

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/octavia-vpp/health/test/pgtest"
)

// proxiedPool is a pool on a fresh migrated database whose connections go
// through a pgtest.Proxy, and a direct pool on the same database for checks.
func proxiedPool(t *testing.T) (proxy *pgtest.Proxy, viaProxy, direct *pgxpool.Pool) {
	t.Helper()
	url := pgtest.NewDB(t)
	proxy, proxied := pgtest.NewProxy(t, url)
	var err error
	if viaProxy, err = pgxpool.New(context.Background(), proxied); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(viaProxy.Close)
	if direct, err = pgxpool.New(context.Background(), url); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(direct.Close)
	return proxy, viaProxy, direct
}

// flushUntilWritten flushes until nothing is left or attempts run out.
func flushUntilWritten(t *testing.T, a *Aggregator) {
	t.Helper()
	ctx := context.Background()
	for range 5 {
		if err := a.Flush(ctx); err == nil && a.Pending() == 0 {
			return
		}
	}
	t.Fatalf("statistics still not written after 5 flushes (%d pairs pending)", a.Pending())
}

func waitFired(t *testing.T, fired <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-fired:
	case <-time.After(10 * time.Second):
		t.Fatalf("the proxy never cut the connection %s", what)
	}
}

// Double count 3 of issue 18: a flush in which one row is refused, and a
// transport error follows, must neither retry the rows already committed
// nor retry the refused row for ever. Each round sends the same heartbeats;
// the third COMMIT through the proxy is cut before the server sees it
// (on the old code, that was the write of the rows after the refused one).
func TestFlushRefusedRowThenTransportErrorAppliesOnce(t *testing.T) {
	const rounds = 3
	cases := []struct {
		name  string
		setup string
		bad   ListenerStats
	}{
		{"negative delta, refused as Octavia's validator refuses it", "",
			st("bad", "amp", row{-5, 1, 1, 1, 0})},
		{"CHECK constraint violation", `ALTER TABLE listener_statistics
			ADD CONSTRAINT refuse_bad CHECK (listener_id <> 'bad')`,
			st("bad", "amp", row{5, 1, 1, 1, 0})},
		{"trigger raising foreign_key_violation (a deleted listener)", `
			CREATE FUNCTION refuse_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN
				IF NEW.listener_id = 'bad' THEN
					RAISE EXCEPTION 'listener % was deleted', NEW.listener_id USING ERRCODE = 'foreign_key_violation';
				END IF;
				RETURN NEW;
			END $$;
			CREATE TRIGGER refuse_deleted BEFORE INSERT OR UPDATE ON listener_statistics
				FOR EACH ROW EXECUTE FUNCTION refuse_deleted()`,
			st("bad", "amp", row{5, 1, 1, 1, 0})},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			proxy, pool, direct := proxiedPool(t)
			if c.setup != "" {
				if _, err := direct.Exec(ctx, c.setup); err != nil {
					t.Fatal(err)
				}
			}
			a := NewAggregator(AggregatorConfig{Sink: NewDB(pool), Logger: quietLog})
			fired := proxy.CutAtCommit(pgtest.CommitCut{Skip: 2})
			for r := range rounds {
				// Absolute values (a version 2 amphora) and deltas (version
				// 3) in the same flush.
				if err := a.Update(ctx, []ListenerStats{st("abs", "old-amp", row{int64(1000 * (r + 1)), 7, 3, 9, 1})}, false); err != nil {
					t.Fatal(err)
				}
				if err := a.Update(ctx, []ListenerStats{
					st("a", "amp", row{100, 10, 2, 1, 0}), c.bad, st("c", "amp", row{1, 2, 4, 3, 1}),
				}, true); err != nil {
					t.Fatal(err)
				}
				_ = a.Flush(ctx) // may fail: the proxy cuts one COMMIT
			}
			waitFired(t, fired, "at the third COMMIT")
			flushUntilWritten(t, a)

			want := map[string]row{
				"abs/old-amp": {3000, 7, 3, 9, 1},
				"a/amp":       {100 * rounds, 10 * rounds, 2, 1 * rounds, 0},
				"c/amp":       {1 * rounds, 2 * rounds, 4, 3 * rounds, 1 * rounds},
			}
			if got := readRows(t, direct); !equalRows(got, want) {
				t.Errorf("listener_statistics\n got %v\nwant %v", got, want)
			}
			if got := a.Discarded(); got != rounds {
				t.Errorf("%d rows counted as discarded, want %d (the refused row of each round)", got, rounds)
			}
		})
	}
}

// Double count 4 of issue 18: the connection is lost after the server
// committed a flush and before the manager heard so. The retry must
// recognise the flush as applied.
func TestFlushConnectionLostAtCommitAppliesOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	proxy, pool, direct := proxiedPool(t)
	a := NewAggregator(AggregatorConfig{Sink: NewDB(pool), Logger: quietLog})

	fired := proxy.CutAtCommit(pgtest.CommitCut{AfterReply: true})
	if err := a.Update(ctx, []ListenerStats{st("l1", "amp", row{100, 200, 5, 10, 1}), st("l2", "amp", row{1, 2, 3, 4, 5})}, true); err != nil {
		t.Fatal(err)
	}
	if err := a.Flush(ctx); err == nil {
		t.Error("the flush whose COMMIT was answered by a lost connection reported success")
	}
	waitFired(t, fired, "after COMMIT")
	// Committed, though the manager could not know.
	first := map[string]row{"l1/amp": {100, 200, 5, 10, 1}, "l2/amp": {1, 2, 3, 4, 5}}
	if got := readRows(t, direct); !equalRows(got, first) {
		t.Fatalf("after the cut COMMIT: %v, want %v (the server should have committed)", got, first)
	}

	if err := a.Update(ctx, []ListenerStats{st("l1", "amp", row{1, 1, 6, 1, 0})}, true); err != nil {
		t.Fatal(err)
	}
	flushUntilWritten(t, a)
	want := map[string]row{"l1/amp": {101, 201, 6, 11, 1}, "l2/amp": {1, 2, 3, 4, 5}}
	if got := readRows(t, direct); !equalRows(got, want) {
		t.Errorf("listener_statistics\n got %v\nwant %v", got, want)
	}
	if got := a.Discarded(); got != 0 {
		t.Errorf("%d rows discarded, want 0", got)
	}
}

func equalRows(got, want map[string]row) bool {
	if len(got) != len(want) {
		return false
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

// A flush in doubt whose key was pruned cannot be resolved: it is dropped
// and counted, never applied a second time; later flushes go on. A fresh
// flush whose key was pruned (the manager was idle) is applied.
func TestFlushKeyLost(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	proxy, pool, direct := proxiedPool(t)
	a := NewAggregator(AggregatorConfig{Sink: NewDB(pool), Logger: quietLog})

	fired := proxy.CutAtCommit(pgtest.CommitCut{AfterReply: true})
	a.Update(ctx, []ListenerStats{st("l1", "amp", row{100, 100, 1, 100, 0}), st("l2", "amp", row{5, 5, 5, 5, 5})}, true)
	if err := a.Flush(ctx); err == nil {
		t.Fatal("the flush whose COMMIT answer was lost reported success")
	}
	waitFired(t, fired, "after COMMIT")
	if _, err := direct.Exec(ctx, `DELETE FROM ovh_stats_flush`); err != nil {
		t.Fatal(err)
	}
	a.Update(ctx, []ListenerStats{st("l1", "amp", row{1, 1, 2, 1, 0})}, true)
	flushUntilWritten(t, a)
	want := map[string]row{"l1/amp": {101, 101, 2, 101, 0}, "l2/amp": {5, 5, 5, 5, 5}}
	if got := readRows(t, direct); !equalRows(got, want) {
		t.Errorf("after an unresolvable flush: %v, want %v", got, want)
	}
	if got := a.Discarded(); got != 2 {
		t.Errorf("%d rows discarded, want the 2 of the unresolvable flush", got)
	}

	if _, err := direct.Exec(ctx, `DELETE FROM ovh_stats_flush`); err != nil {
		t.Fatal(err)
	}
	a.Update(ctx, []ListenerStats{st("l1", "amp", row{1, 1, 3, 1, 0})}, true)
	flushUntilWritten(t, a)
	want["l1/amp"] = row{102, 102, 3, 102, 0}
	if got := readRows(t, direct); !equalRows(got, want) {
		t.Errorf("after a fresh flush whose key was pruned: %v, want %v", got, want)
	}
}

// Every process has its own key; registering prunes the keys of managers
// not heard from for a week, and only those.
func TestFlushKeysPerManagerAndPruned(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := openDB(t)
	if _, err := pool.Exec(ctx, `INSERT INTO ovh_stats_flush VALUES
		('gone', 7, now() AT TIME ZONE 'UTC' - interval '30 days', now() AT TIME ZONE 'UTC' - interval '8 days'),
		('quiet', 9, now() AT TIME ZONE 'UTC' - interval '30 days', now() AT TIME ZONE 'UTC' - interval '6 days')`); err != nil {
		t.Fatal(err)
	}
	first, second := NewDB(pool), NewDB(pool)
	if first.ManagerID() == second.ManagerID() {
		t.Fatalf("two managers share the id %s", first.ManagerID())
	}
	for _, d := range []*DB{first, second} {
		a := NewAggregator(AggregatorConfig{Sink: d, Logger: quietLog})
		for range 3 {
			a.Update(ctx, []ListenerStats{st("l", "amp", row{1, 1, 1, 1, 1})}, true)
			if err := a.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	rows, err := pool.Query(ctx, `SELECT manager_id, seq FROM ovh_stats_flush ORDER BY manager_id`)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for rows.Next() {
		var id string
		var seq int64
		if err := rows.Scan(&id, &seq); err != nil {
			t.Fatal(err)
		}
		got[id] = seq
	}
	want := map[string]int64{"quiet": 9, first.ManagerID(): 3, second.ManagerID(): 3}
	if len(got) != len(want) || got["quiet"] != 9 || got[first.ManagerID()] != 3 || got[second.ManagerID()] != 3 {
		t.Errorf("ovh_stats_flush %v, want %v", got, want)
	}
	if r := readRows(t, pool)["l/amp"]; r != (row{6, 6, 1, 6, 6}) {
		t.Errorf("row %v, want 6 flushes of 1", r)
	}
}

// Rows the database refuses are found among many and dropped one by one;
// all the others of the flush are written, once.
func TestFlushRefusedRowsAmongMany(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := openDB(t)
	if _, err := pool.Exec(ctx, `ALTER TABLE listener_statistics
		ADD CONSTRAINT refuse_bad CHECK (listener_id NOT LIKE 'bad%')`); err != nil {
		t.Fatal(err)
	}
	a := NewAggregator(AggregatorConfig{Sink: NewDB(pool), Logger: quietLog})
	want := map[string]row{}
	var stats []ListenerStats
	for i := range 64 {
		l := fmt.Sprintf("l%02d", i)
		if i%13 == 5 {
			l = fmt.Sprintf("bad%02d", i)
		} else {
			want[l+"/amp"] = row{int64(i), 1, 1, 1, 1}
		}
		stats = append(stats, st(l, "amp", row{int64(i), 1, 1, 1, 1}))
	}
	a.Update(ctx, stats, true)
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := readRows(t, pool); !equalRows(got, want) {
		t.Errorf("%d rows written, want %d: %v", len(got), len(want), got)
	}
	if got := a.Discarded(); got != 5 {
		t.Errorf("%d rows discarded, want the 5 refused", got)
	}
}
