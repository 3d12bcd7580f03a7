package healthdb

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/octavia-vpp/health/heartbeat"
)

func newCachingUpdater(t testing.TB, db *pgxpool.Pool, deleter ComputeDeleter, clock func() time.Time) *Updater {
	t.Helper()
	u, err := NewUpdater(UpdaterConfig{
		Store: NewStore(db), Deleter: deleter, Rules: rules, TopologyCache: time.Hour,
		Now: clock, Logger: quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func fixedClock() time.Time { return now }

// A cached topology must never be used once a row it was read from has
// changed, whoever changed it.
func TestTopologyCacheSeesOtherWriters(t *testing.T) {
	for _, tc := range []struct {
		name string
		// change runs between heartbeats that all report member m-1 UP and
		// listener l-1 OPEN.
		change string
		// table and id name a row whose status must be want afterwards;
		// outcome is the last heartbeat's health outcome.
		table, id, want string
		outcome         HealthOutcome
	}{
		{"another health manager marks a member ERROR", `UPDATE member SET operating_status = 'ERROR' WHERE id = 'm-1'`,
			"member", "m-1", StatusOnline, HealthWrite},
		{"another health manager marks the listener OFFLINE", `UPDATE listener SET operating_status = 'OFFLINE' WHERE id = 'l-1'`,
			"listener", "l-1", StatusOnline, HealthWrite},
		{"another health manager marks the load balancer ERROR", `UPDATE load_balancer SET operating_status = 'ERROR' WHERE id = 'lb-1'`,
			"load_balancer", "lb-1", StatusOnline, HealthWrite},
		{"the API disables the listener", `UPDATE listener SET enabled = false WHERE id = 'l-1'`,
			"listener", "l-1", StatusOnline, HealthSkipCountMismatch},
		{"the API adds a member, setting the load balancer PENDING_UPDATE",
			`WITH lb AS (UPDATE load_balancer SET provisioning_status = 'PENDING_UPDATE' WHERE id = 'lb-1')
			 INSERT INTO member (id, pool_id, ip_address, protocol_port, operating_status, enabled, provisioning_status, backup)
			 VALUES ('m-3', 'pool-1', '192.0.2.9', 9000, 'ONLINE', true, 'PENDING_CREATE', false)`,
			// not reported: OFFLINE, as a fresh read says
			"member", "m-3", StatusOffline, HealthWrite},
		{"the API deletes the pool's members", `DELETE FROM member`,
			"pool", "pool-1", StatusOnline, HealthWrite},
		{"the load balancer is deleted", `UPDATE load_balancer SET provisioning_status = 'DELETED' WHERE id = 'lb-1'`,
			"member", "m-1", StatusOnline, HealthSkipZombie},
		{"the amphora is deleted", `UPDATE amphora SET status = 'DELETED' WHERE id = 'amp-1'`,
			"member", "m-1", StatusOnline, HealthSkipZombie},
		{"the amphora moves to another load balancer", `UPDATE amphora SET load_balancer_id = 'lb-2' WHERE id = 'amp-1'`,
			// lb-2 has no listeners: one reported, none expected
			"member", "m-1", StatusOnline, HealthSkipCountMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := openDB(t)
			f := &fixture{t: t, db: db}
			f.lb("lb-1", "ACTIVE", "ONLINE", true)
			f.pool("pool-1", "lb-1", "ONLINE")
			f.member("m-1", "pool-1", "ONLINE", true)
			f.member("m-2", "pool-1", "ONLINE", true)
			f.listener("l-1", "lb-1", "HTTP", "ONLINE", true, "pool-1")
			f.amphora("amp-1", "lb-1", "ALLOCATED", "c-1")
			f.lb("lb-2", "ACTIVE", "ONLINE", true)
			deleter := &recordingDeleter{}
			u := newCachingUpdater(t, db, deleter, fixedClock)
			msg := hb("amp-1", []heartbeat.Listener{{ID: "l-1", Status: "OPEN"}},
				heartbeat.Pool{Key: "pool-1", Status: "UP", Members: []heartbeat.Member{{ID: "m-1", Status: "UP"}, {ID: "m-2", Status: "UP"}}})
			ctx := context.Background()
			if _, err := u.ApplyBatch(ctx, []*heartbeat.Message{msg}); err != nil {
				t.Fatal(err)
			}
			// Statuses already match the heartbeat: only a fresh read of
			// what changed below makes the last batch write anything.
			if _, err := u.ApplyBatch(ctx, []*heartbeat.Message{msg}); err != nil {
				t.Fatal(err)
			}
			f.exec(tc.change)
			res, err := u.ApplyBatch(ctx, []*heartbeat.Message{msg})
			if err != nil {
				t.Fatal(err)
			}
			if res.Health[tc.outcome] != 1 {
				t.Errorf("health outcomes %v, want one %s", res.Health, tc.outcome)
			}
			if got, _ := f.statusOf(tc.table, tc.id); got != tc.want {
				t.Errorf("%s %s is %s, want %s", tc.table, tc.id, got, tc.want)
			}
		})
	}
}

// mutations are what the API, the worker or another health manager may do
// to a generated world between two batches; %s is the copy's prefix.
var mutations = []string{
	`UPDATE member SET operating_status = 'ERROR' WHERE id LIKE '%sm%%-0-0'`,
	`UPDATE member SET operating_status = 'NO_MONITOR' WHERE id LIKE '%sm0-%%'`,
	`UPDATE member SET enabled = NOT enabled WHERE id LIKE '%sm%%-1-1'`,
	`UPDATE listener SET operating_status = 'OFFLINE' WHERE id LIKE '%sl0-%%'`,
	`UPDATE listener SET enabled = NOT enabled WHERE id LIKE '%sl%%-0'`,
	`UPDATE pool SET operating_status = 'ERROR' WHERE id LIKE '%sp1-%%'`,
	`UPDATE load_balancer SET provisioning_status = 'PENDING_UPDATE' WHERE id = '%slb0'`,
	`UPDATE load_balancer SET provisioning_status = 'ACTIVE' WHERE id LIKE '%slb%%'`,
	`UPDATE load_balancer SET enabled = NOT enabled WHERE id = '%slb1'`,
	`UPDATE load_balancer SET operating_status = 'DEGRADED' WHERE id = '%slb0'`,
	`DELETE FROM member WHERE id LIKE '%sm%%-0-1'`,
	`UPDATE amphora SET status = 'DELETED' WHERE id = '%sa0-1'`,
	// Inserts under a load balancer nothing else changes, which only the
	// triggers' versions can see.
	`INSERT INTO member (id, pool_id, ip_address, protocol_port, operating_status, enabled, provisioning_status, backup)
		SELECT id || 'x', pool_id, ip_address, protocol_port + 1000, 'OFFLINE', true, 'ACTIVE', false
		FROM member WHERE id LIKE '%sm%%-0-0' ON CONFLICT DO NOTHING`,
	`INSERT INTO listener (id, load_balancer_id, protocol, protocol_port, provisioning_status, operating_status, enabled)
		SELECT id || 'x', load_balancer_id, 'TCP', 9999, 'ACTIVE', 'OFFLINE', true
		FROM listener WHERE id LIKE '%sl%%-0' ON CONFLICT DO NOTHING`,
	`UPDATE amphora SET load_balancer_id = (SELECT id FROM load_balancer WHERE id LIKE '%[1]slb%%' ORDER BY id DESC LIMIT 1) WHERE id = '%[1]sa0-0'`,
}

// The invariant of the cache: with random changes by other writers
// between batches, a caching updater leaves the same rows as one that
// reads every batch afresh.
func TestTopologyCacheEqualsFreshReads(t *testing.T) {
	const sequences = 60
	ctx := context.Background()
	db := openDB(t)
	fresh := newTestUpdater(t, db, suffixDeleter{}, now)
	// Two caching managers on one database, as Octavia runs one per
	// controller: each batch goes to one of them, so each must see the
	// other's status writes.
	cached := newCachingUpdater(t, db, suffixDeleter{}, fixedClock)
	other := newCachingUpdater(t, db, suffixDeleter{}, fixedClock)
	for seq := range sequences {
		r := rand.New(rand.NewPCG(uint64(seq), 0xcac4e))
		world := generateWorld(r)
		plain, withCache := fmt.Sprintf("f%d-", seq), fmt.Sprintf("c%d-", seq)
		for _, prefix := range []string{plain, withCache} {
			if err := world.insert(ctx, db, prefix); err != nil {
				t.Fatalf("sequence %d: insert: %v", seq, err)
			}
		}
		var steps []string
		for range 3 + r.IntN(8) {
			batch := make([]*heartbeat.Message, 1+r.IntN(24))
			for i := range batch {
				batch[i] = world.message(r)
			}
			var mutation string
			if r.IntN(2) == 0 {
				mutation = pick(r, mutations)
			}
			caching := cached
			if r.IntN(3) == 0 {
				caching = other
			}
			for _, run := range []struct {
				prefix string
				u      *Updater
			}{{plain, fresh}, {withCache, caching}} {
				msgs := make([]*heartbeat.Message, len(batch))
				for i, m := range batch {
					msgs[i] = prefixed(m, run.prefix)
				}
				if _, err := run.u.ApplyBatch(ctx, msgs); err != nil {
					t.Fatalf("sequence %d: %v", seq, err)
				}
				if mutation != "" {
					if _, err := db.Exec(ctx, fmt.Sprintf(mutation, run.prefix)); err != nil {
						t.Fatalf("sequence %d: %s: %v", seq, mutation, err)
					}
				}
			}
			steps = append(steps, fmt.Sprintf("%d messages, then %q", len(batch), mutation))
		}
		fresh.zombies.wait()
		cached.zombies.wait()
		other.zombies.wait()
		a, b := snapshot(ctx, t, db, plain), snapshot(ctx, t, db, withCache)
		if !reflect.DeepEqual(a, b) {
			for k := range a {
				if a[k] != b[k] {
					t.Errorf("sequence %d (%v): %s is %q read afresh, %q cached", seq, steps, k, a[k], b[k])
				}
			}
			t.FailNow()
		}
	}
}
