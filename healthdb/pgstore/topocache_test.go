package pgstore

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/octavia-vpp/health/healthdb"
	"github.com/octavia-vpp/health/test/pgtest"
)

// seedTopology creates lb-1 (two amphorae, listener l-1 on pool-1 with
// members m-1 and m-2, pool-2 with m-3) and lb-2 (amphora amp-3, no
// listeners).
func seedTopology(t *testing.T, db *pgxpool.Pool) {
	t.Helper()
	for _, sql := range []string{
		`INSERT INTO load_balancer (id, provisioning_status, operating_status, enabled) VALUES ('lb-1', 'ACTIVE', 'ONLINE', true)`,
		`INSERT INTO load_balancer (id, provisioning_status, operating_status, enabled) VALUES ('lb-2', 'ACTIVE', 'ONLINE', true)`,
		`INSERT INTO pool (id, load_balancer_id, protocol, lb_algorithm, operating_status, enabled, provisioning_status)
			VALUES ('pool-1', 'lb-1', 'UDP', 'ROUND_ROBIN', 'ONLINE', true, 'ACTIVE')`,
		`INSERT INTO pool (id, load_balancer_id, protocol, lb_algorithm, operating_status, enabled, provisioning_status)
			VALUES ('pool-2', 'lb-1', 'HTTP', 'ROUND_ROBIN', 'ONLINE', true, 'ACTIVE')`,
		`INSERT INTO member (id, pool_id, ip_address, protocol_port, operating_status, enabled, provisioning_status, backup)
			VALUES ('m-1', 'pool-1', '192.0.2.1', 80, 'ONLINE', true, 'ACTIVE', false)`,
		`INSERT INTO member (id, pool_id, ip_address, protocol_port, operating_status, enabled, provisioning_status, backup)
			VALUES ('m-2', 'pool-1', '192.0.2.2', 80, 'ONLINE', false, 'ACTIVE', false)`,
		`INSERT INTO member (id, pool_id, ip_address, protocol_port, operating_status, enabled, provisioning_status, backup)
			VALUES ('m-3', 'pool-2', '192.0.2.3', 80, 'ONLINE', true, 'ACTIVE', false)`,
		`INSERT INTO listener (id, load_balancer_id, protocol, protocol_port, provisioning_status, operating_status, enabled, default_pool_id)
			VALUES ('l-1', 'lb-1', 'UDP', 80, 'ACTIVE', 'ONLINE', true, 'pool-1')`,
		`INSERT INTO amphora (id, load_balancer_id, status, compute_id, cert_busy) VALUES ('amp-1', 'lb-1', 'ALLOCATED', 'c-1', false)`,
		`INSERT INTO amphora (id, load_balancer_id, status, compute_id, cert_busy) VALUES ('amp-2', 'lb-1', 'ALLOCATED', 'c-2', false)`,
		`INSERT INTO amphora (id, load_balancer_id, status, compute_id, cert_busy) VALUES ('amp-3', 'lb-2', 'ALLOCATED', 'c-3', false)`,
	} {
		exec(t, db, sql)
	}
}

func exec(t *testing.T, db *pgxpool.Pool, sql string) {
	t.Helper()
	if _, err := db.Exec(context.Background(), sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

var cacheTestIDs = []string{"amp-1", "amp-2", "amp-3", "unknown"}

// loadAndCompare loads through the cache, checks the result against a
// fresh read, and returns how the cache served it.
func loadAndCompare(t *testing.T, c *topologyCache, db *pgxpool.Pool, now time.Time) cacheStats {
	t.Helper()
	ctx := context.Background()
	topos, stats, err := c.load(ctx, cacheTestIDs, now)
	if err != nil {
		t.Fatal(err)
	}
	checkCacheBytes(t, c)
	fresh, err := New(db).LoadTopologies(ctx, cacheTestIDs)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(topos, fresh) {
		for id := range fresh {
			if !reflect.DeepEqual(topos[id], fresh[id]) {
				t.Errorf("%s: cached %+v, fresh %+v", id, topos[id], fresh[id])
				if topos[id] != nil && topos[id].LB != nil && fresh[id].LB != nil {
					t.Errorf("  cached LB %+v\n  fresh LB %+v", *topos[id].LB, *fresh[id].LB)
				}
			}
		}
		t.Fatalf("cached topologies differ from a fresh read (%d vs %d)", len(topos), len(fresh))
	}
	if a, b := topos["amp-1"], topos["amp-2"]; a != nil && b != nil && a.LB != nil && b.LB != nil && a.LB.ID == b.LB.ID && a.LB != b.LB {
		t.Errorf("an ACTIVE_STANDBY pair does not share its load balancer")
	}
	return stats
}

var testNow = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

func TestTopologyCacheServesUnchangedTopologies(t *testing.T) {
	db := pgtest.NewPool(t)
	seedTopology(t, db)
	c := newTopologyCache(New(db), time.Minute, 0, nil)
	for i, want := range []cacheStats{{Misses: 4}, {Hits: 3, Misses: 1}, {Hits: 3, Misses: 1}} {
		if got := loadAndCompare(t, c, db, testNow); got != want {
			t.Errorf("load %d: %+v, want %+v", i, got, want)
		}
	}
	if s := c.Stats(); !s.Enabled || s.Hits != 6 || s.Misses != 6 {
		t.Errorf("Stats = %+v", s)
	}
	// Past the time limit everything is read again.
	if got := loadAndCompare(t, c, db, testNow.Add(time.Minute)); got != (cacheStats{Misses: 4}) {
		t.Errorf("after the time limit: %+v", got)
	}
}

// Every change a writer other than our status write can make to a row
// the topology read uses must send its load balancer back to a full read.
func TestTopologyCacheSeesEveryChange(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change []string
		// invalidated is how many cached amphorae the change must
		// invalidate (lb-1 has two, lb-2 one).
		invalidated int
	}{
		{"member inserted under an unchanged load balancer", []string{
			`INSERT INTO member (id, pool_id, ip_address, protocol_port, operating_status, enabled, provisioning_status, backup)
				VALUES ('m-9', 'pool-2', '192.0.2.9', 80, 'OFFLINE', true, 'ACTIVE', false)`}, 2},
		{"member enabled (the UDP listener's default pool)", []string{`UPDATE member SET enabled = true WHERE id = 'm-2'`}, 2},
		{"member disabled", []string{`UPDATE member SET enabled = false WHERE id = 'm-1'`}, 2},
		{"member status by another writer", []string{`UPDATE member SET operating_status = 'ERROR' WHERE id = 'm-3'`}, 2},
		{"member deleted", []string{`DELETE FROM member WHERE id = 'm-3'`}, 2},
		{"listener inserted", []string{`INSERT INTO listener (id, load_balancer_id, protocol, protocol_port, provisioning_status, operating_status, enabled)
			VALUES ('l-9', 'lb-2', 'TCP', 81, 'ACTIVE', 'OFFLINE', true)`}, 1},
		{"listener deleted", []string{`DELETE FROM listener WHERE id = 'l-1'`}, 2},
		{"listener disabled", []string{`UPDATE listener SET enabled = false WHERE id = 'l-1'`}, 2},
		{"listener's default pool changed", []string{`UPDATE listener SET default_pool_id = 'pool-2' WHERE id = 'l-1'`}, 2},
		{"listener protocol changed", []string{`UPDATE listener SET protocol = 'TCP' WHERE id = 'l-1'`}, 2},
		{"pool inserted", []string{`INSERT INTO pool (id, load_balancer_id, protocol, lb_algorithm, operating_status, enabled, provisioning_status)
			VALUES ('pool-9', 'lb-2', 'HTTP', 'ROUND_ROBIN', 'OFFLINE', true, 'ACTIVE')`}, 1},
		{"pool status by another writer", []string{`UPDATE pool SET operating_status = 'DEGRADED' WHERE id = 'pool-2'`}, 2},
		{"pool deleted", []string{`DELETE FROM member WHERE pool_id = 'pool-2'`, `DELETE FROM pool WHERE id = 'pool-2'`}, 2},
		{"load balancer provisioning status", []string{`UPDATE load_balancer SET provisioning_status = 'PENDING_UPDATE' WHERE id = 'lb-1'`}, 2},
		{"load balancer deleted", []string{`UPDATE load_balancer SET provisioning_status = 'DELETED' WHERE id = 'lb-2'`}, 1},
		{"load balancer disabled", []string{`UPDATE load_balancer SET enabled = false WHERE id = 'lb-1'`}, 2},
		{"amphora status", []string{`UPDATE amphora SET status = 'DELETED' WHERE id = 'amp-2'`}, 2},
		{"amphora compute id", []string{`UPDATE amphora SET compute_id = 'c-9' WHERE id = 'amp-3'`}, 1},
		{"amphora moved", []string{`UPDATE amphora SET load_balancer_id = 'lb-2' WHERE id = 'amp-1'`}, 3},
		{"amphora deleted", []string{`DELETE FROM amphora WHERE id = 'amp-3'`}, 1},
		{"member table truncated", []string{`TRUNCATE member`}, 3},
		{"an update that changes nothing", []string{`UPDATE member SET enabled = enabled WHERE id = 'm-1'`}, 2},
		{"status write by a session that claims to be ours but changes more",
			[]string{`BEGIN`, `SELECT set_config('ovh_health.status_writer', 'on', true)`,
				`UPDATE member SET operating_status = 'ERROR', enabled = false WHERE id = 'm-1'`, `COMMIT`}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := pgtest.NewPool(t)
			seedTopology(t, db)
			c := newTopologyCache(New(db), time.Hour, 0, nil)
			loadAndCompare(t, c, db, testNow)
			conn, err := db.Acquire(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			for _, sql := range tc.change {
				if _, err := conn.Exec(context.Background(), sql); err != nil {
					t.Fatalf("%s: %v", sql, err)
				}
			}
			conn.Release()
			got := loadAndCompare(t, c, db, testNow)
			if got.Invalidated != tc.invalidated || got.Hits != 3-tc.invalidated {
				t.Errorf("after the change: %+v, want %d invalidated", got, tc.invalidated)
			}
			// And the re-read is cached again.
			if got := loadAndCompare(t, c, db, testNow); got.Invalidated != 0 {
				t.Errorf("the load after: %+v, want nothing invalidated", got)
			}
		})
	}
}

// Our own status writes keep the entries they change, with the new
// statuses; another manager's status writes invalidate them.
func TestTopologyCacheOwnAndOtherManagersWrites(t *testing.T) {
	db := pgtest.NewPool(t)
	seedTopology(t, db)
	ctx := context.Background()
	ours := New(db)
	c := newTopologyCache(ours, time.Hour, 0, nil)
	loadAndCompare(t, c, db, testNow)

	for i, w := range []*healthdb.Writes{
		{Health: []string{"amp-1"}, Members: map[string]string{"m-1": "ERROR"}, Pools: map[string]string{"pool-1": "DEGRADED"}},
		{Health: []string{"amp-1"}, LoadBalancers: map[string]string{"lb-1": "DEGRADED"}, Listeners: map[string]string{"l-1": "DEGRADED"}},
		{Members: map[string]string{"m-1": "ONLINE", "m-3": "OFFLINE"}, LoadBalancers: map[string]string{"lb-2": "ERROR"}},
	} {
		if err := ours.Apply(ctx, w); err != nil {
			t.Fatal(err)
		}
		if got := loadAndCompare(t, c, db, testNow); got != (cacheStats{Hits: 3, Misses: 1}) {
			t.Errorf("after our write %d: %+v, want every entry kept", i, got)
		}
	}

	other := New(db) // another health manager on the same database
	if err := other.Apply(ctx, &healthdb.Writes{Members: map[string]string{"m-2": "ERROR"}}); err != nil {
		t.Fatal(err)
	}
	if got := loadAndCompare(t, c, db, testNow); got != (cacheStats{Hits: 1, Misses: 3, Invalidated: 2}) {
		t.Errorf("after another manager's write: %+v, want lb-1 invalidated", got)
	}
	// A write of ours that changes nothing in the database (the other
	// manager wrote the same status first) still leaves a consistent entry.
	if err := other.Apply(ctx, &healthdb.Writes{Members: map[string]string{"m-3": "ERROR"}}); err != nil {
		t.Fatal(err)
	}
	if err := ours.Apply(ctx, &healthdb.Writes{Members: map[string]string{"m-3": "ERROR"}}); err != nil {
		t.Fatal(err)
	}
	if got := loadAndCompare(t, c, db, testNow); got.Hits != 1 {
		t.Errorf("after both wrote: %+v, want lb-1 read again", got)
	}
}

// An API transaction open across our status write: our write neither
// waits for it nor keeps an entry its commit makes stale.
func TestTopologyCacheConcurrentAPITransaction(t *testing.T) {
	db := pgtest.NewPool(t)
	seedTopology(t, db)
	ctx := context.Background()
	ours := New(db)
	c := newTopologyCache(ours, time.Hour, 0, nil)
	loadAndCompare(t, c, db, testNow)

	api, err := db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer api.Rollback(ctx) //nolint:errcheck
	// As Octavia's API does: lock the load balancer, mark it, change a member.
	for _, sql := range []string{
		`SELECT id FROM load_balancer WHERE id = 'lb-1' FOR UPDATE`,
		`UPDATE load_balancer SET provisioning_status = 'PENDING_UPDATE' WHERE id = 'lb-1'`,
		`UPDATE member SET enabled = true WHERE id = 'm-2'`,
	} {
		if _, err := api.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	// Our write of the load balancer's other rows must not wait for the
	// API's transaction (it never locks the status version row).
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := ours.Apply(wctx, &healthdb.Writes{Members: map[string]string{"m-1": "ERROR"}, Pools: map[string]string{"pool-2": "ERROR"}}); err != nil {
		t.Fatalf("our status write while an API transaction holds the load balancer: %v", err)
	}
	if got := loadAndCompare(t, c, db, testNow); got.Invalidated != 0 {
		t.Errorf("before the API commits: %+v, want nothing invalidated", got)
	}
	if err := api.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := loadAndCompare(t, c, db, testNow); got.Invalidated != 2 {
		t.Errorf("after the API committed: %+v, want lb-1 invalidated", got)
	}
}

func TestTopologyCacheOffWithoutTriggers(t *testing.T) {
	for _, tc := range []struct {
		name, breakIt, repair string
	}{
		{"dropped", `DROP TRIGGER ovh_topology_version ON member`,
			`CREATE TRIGGER ovh_topology_version AFTER INSERT OR UPDATE OR DELETE ON member FOR EACH ROW EXECUTE FUNCTION ovh_topology_changed()`},
		{"disabled", `ALTER TABLE listener DISABLE TRIGGER ovh_topology_version`,
			`ALTER TABLE listener ENABLE TRIGGER ovh_topology_version`},
		{"truncate trigger dropped", `DROP TRIGGER ovh_topology_truncate ON amphora`,
			`CREATE TRIGGER ovh_topology_truncate AFTER TRUNCATE ON amphora FOR EACH STATEMENT EXECUTE FUNCTION ovh_topology_changed()`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := pgtest.NewPool(t)
			seedTopology(t, db)
			var logs bytes.Buffer
			c := newTopologyCache(New(db), time.Hour, 0, slog.New(slog.NewTextHandler(&logs, nil)))
			loadAndCompare(t, c, db, testNow)
			exec(t, db, tc.breakIt)
			exec(t, db, `UPDATE member SET enabled = true WHERE id = 'm-2'`)
			exec(t, db, `UPDATE listener SET enabled = false WHERE id = 'l-1'`)
			for i := range 3 {
				if got := loadAndCompare(t, c, db, testNow.Add(time.Duration(i)*time.Second)); got.Hits != 0 {
					t.Errorf("load %d without the trigger: %+v, want no hits", i, got)
				}
			}
			if c.Stats().Enabled {
				t.Error("Stats says enabled without the trigger")
			}
			if n := strings.Count(logs.String(), "level=ERROR"); n != 1 || !strings.Contains(logs.String(), "topology cache off") {
				t.Errorf("want one ERROR saying the cache is off, got:\n%s", logs.String())
			}
			exec(t, db, tc.repair)
			// Still off until the next check, a minute later.
			if got := loadAndCompare(t, c, db, testNow.Add(30*time.Second)); got.Hits != 0 || c.Stats().Enabled {
				t.Errorf("before the next check: %+v", got)
			}
			loadAndCompare(t, c, db, testNow.Add(2*time.Minute))
			if got := loadAndCompare(t, c, db, testNow.Add(2*time.Minute)); got.Hits != 3 || !c.Stats().Enabled {
				t.Errorf("after the triggers came back: %+v, %+v", got, c.Stats())
			}
		})
	}
}

// Disabling a trigger, changing rows, and enabling it again between two
// batches leaves no trace but the trigger's catalog row: the cache must
// notice and start over.
func TestTopologyCacheTriggerDisabledBetweenBatches(t *testing.T) {
	db := pgtest.NewPool(t)
	seedTopology(t, db)
	c := newTopologyCache(New(db), time.Hour, 0, nil)
	loadAndCompare(t, c, db, testNow)
	exec(t, db, `ALTER TABLE member DISABLE TRIGGER ovh_topology_version`)
	exec(t, db, `UPDATE member SET enabled = true WHERE id = 'm-2'`)
	exec(t, db, `ALTER TABLE member ENABLE TRIGGER ovh_topology_version`)
	if got := loadAndCompare(t, c, db, testNow); got.Hits != 0 {
		t.Errorf("after the trigger was disabled and enabled again: %+v, want no hits", got)
	}
	if got := loadAndCompare(t, c, db, testNow); got.Hits != 3 || !c.Stats().Enabled {
		t.Errorf("the load after: %+v, want the cache serving again", got)
	}
}

// Octavia's services may connect as a role with no rights on our table:
// their writes must still work and still bump (the trigger function runs
// as its owner), and a health manager connected as such a role must still
// write its statuses, without the cache's own versioning.
func TestTopologyVersionsUnderARoleWithoutRightsOnThem(t *testing.T) {
	url := pgtest.NewDB(t)
	ctx := context.Background()
	admin, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admin.Close)
	seedTopology(t, admin)
	role := fmt.Sprintf("octavia_limited_%d", os.Getpid())
	exec(t, admin, `CREATE ROLE `+role)
	t.Cleanup(func() {
		for _, sql := range []string{`DROP OWNED BY ` + role, `DROP ROLE ` + role} {
			if _, err := admin.Exec(context.Background(), sql); err != nil {
				t.Errorf("%s: %v", sql, err)
			}
		}
	})
	exec(t, admin, `GRANT SELECT, INSERT, UPDATE, DELETE ON amphora, load_balancer, listener, pool, member, amphora_health TO `+role)
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.AfterConnect = func(ctx context.Context, conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, `SET ROLE `+role)
		return err
	}
	limited, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(limited.Close)
	if _, err := limited.Exec(ctx, `SELECT version FROM ovh_lb_version`); err == nil {
		t.Fatal("the limited role can read ovh_lb_version; the test proves nothing")
	}

	c := newTopologyCache(New(admin), time.Hour, 0, nil)
	loadAndCompare(t, c, admin, testNow)
	if _, err := limited.Exec(ctx, `UPDATE member SET enabled = true WHERE id = 'm-2'`); err != nil {
		t.Fatalf("an API write as a role without rights on ovh_lb_version: %v", err)
	}
	if got := loadAndCompare(t, c, admin, testNow); got.Invalidated != 2 {
		t.Errorf("after the limited role's write: %+v, want lb-1 invalidated", got)
	}
	if err := New(limited).Apply(ctx, &healthdb.Writes{Health: []string{"amp-1"}, Members: map[string]string{"m-1": "ERROR"}}); err != nil {
		t.Fatalf("a status write as a role without rights on ovh_lb_version: %v", err)
	}
	var status string
	if err := admin.QueryRow(ctx, `SELECT operating_status FROM member WHERE id = 'm-1'`).Scan(&status); err != nil || status != "ERROR" {
		t.Fatalf("m-1 = %q, %v; want ERROR written", status, err)
	}
	if got := loadAndCompare(t, c, admin, testNow); got.Invalidated != 2 {
		t.Errorf("after the limited role's status write: %+v, want lb-1 invalidated", got)
	}

	// A manager whose role cannot read the versions reads afresh.
	var logs bytes.Buffer
	lc := newTopologyCache(New(limited), time.Hour, 0, slog.New(slog.NewTextHandler(&logs, nil)))
	for range 2 {
		if got := loadAndCompare(t, lc, admin, testNow); got.Hits != 0 {
			t.Errorf("a cache that cannot read the versions: %+v, want no hits", got)
		}
	}
	if lc.Stats().Enabled || strings.Count(logs.String(), "level=ERROR") != 1 {
		t.Errorf("a cache that cannot read the versions: %+v, log:\n%s", lc.Stats(), logs.String())
	}
}

// checkCacheBytes checks the cache's count of bytes against its entries,
// and against its bound.
func checkCacheBytes(t *testing.T, c *topologyCache) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	var want int64
	for id, e := range c.lbs {
		if blobID(e.blob) != id {
			t.Errorf("entry %q holds load balancer %q", id, blobID(e.blob))
		}
		want += e.entryBytes()
	}
	for id, a := range c.amphorae {
		if a.id() != id {
			t.Errorf("entry %q holds amphora %q", id, a.id())
		}
		want += a.entryBytes()
	}
	if got := c.bytes.Load(); got != want {
		t.Errorf("bytes = %d, entries hold %d", got, want)
	}
	if c.maxBytes > 0 && want > c.maxBytes {
		t.Errorf("entries hold %d bytes, bound %d", want, c.maxBytes)
	}
}

// A cache at its bound admits no more load balancers: those are read
// every batch, as with the cache off, and the results stay the same.
func TestTopologyCacheMemoryBound(t *testing.T) {
	db := pgtest.NewPool(t)
	seedTopology(t, db)
	full := newTopologyCache(New(db), time.Hour, 0, nil)
	loadAndCompare(t, full, db, testNow)
	all := full.Stats().Bytes
	lb2 := full.lbs["lb-2"].entryBytes() + full.amphorae["amp-3"].entryBytes()
	if all == 0 || lb2 >= int64(all) {
		t.Fatalf("unbounded cache holds %d bytes, lb-2 %d", all, lb2)
	}
	for _, tc := range []struct {
		name     string
		maxBytes int64
		// want is how the second and later loads are served.
		want cacheStats
	}{
		{"room for everything", int64(all), cacheStats{Hits: 3, Misses: 1}},
		{"room for nothing", 1, cacheStats{Misses: 4}},
		{"room for all but one entry", int64(all) - 1, cacheStats{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTopologyCache(New(db), time.Hour, tc.maxBytes, nil)
			loadAndCompare(t, c, db, testNow)
			for i := range 3 {
				got := loadAndCompare(t, c, db, testNow.Add(time.Duration(i)*time.Second))
				if tc.want != (cacheStats{}) && got != tc.want {
					t.Errorf("load %d: %+v, want %+v", i, got, tc.want)
				}
				if tc.want == (cacheStats{}) && (got.Hits == 0 || got.Hits == 3) {
					t.Errorf("load %d: %+v, want some hits, not all", i, got)
				}
			}
			checkCacheBytes(t, c)
			if tc.maxBytes == 1 && c.Stats().Bytes != 0 {
				t.Errorf("holds %d bytes", c.Stats().Bytes)
			}
			// Entries that go free their bytes.
			c.mu.Lock()
			c.empty()
			c.mu.Unlock()
			if b := c.Stats().Bytes; b != 0 {
				t.Errorf("emptied: %d bytes", b)
			}
		})
	}
}
