package healthdb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/octavia-vpp/health/heartbeat"
	"github.com/octavia-vpp/health/test/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func openDB(t testing.TB) *pgxpool.Pool { return pgtest.NewPool(t) }

// fixture inserts rows with every NOT NULL column Octavia's schema needs.
type fixture struct {
	t    testing.TB
	db   *pgxpool.Pool
	port int
}

func (f *fixture) exec(sql string, args ...any) {
	f.t.Helper()
	if _, err := f.db.Exec(context.Background(), sql, args...); err != nil {
		f.t.Fatalf("%s: %v", sql, err)
	}
}

func (f *fixture) lb(id, provisioning, operating string, enabled bool) {
	f.exec(`INSERT INTO load_balancer (id, provisioning_status, operating_status, enabled) VALUES ($1, $2, $3, $4)`,
		id, provisioning, operating, enabled)
}

// amphora inserts an amphora; lbID "" means NULL, computeID "" means NULL.
func (f *fixture) amphora(id, lbID, status, computeID string) {
	f.exec(`INSERT INTO amphora (id, load_balancer_id, status, compute_id, cert_busy) VALUES ($1, NULLIF($2, ''), $3, NULLIF($4, ''), false)`,
		id, lbID, status, computeID)
}

func (f *fixture) listener(id, lbID, protocol, operating string, enabled bool, defaultPool string) {
	f.port++
	f.exec(`INSERT INTO listener (id, load_balancer_id, protocol, protocol_port, provisioning_status, operating_status, enabled, default_pool_id)
		VALUES ($1, $2, $3, $4, 'ACTIVE', $5, $6, NULLIF($7, ''))`, id, lbID, protocol, f.port, operating, enabled, defaultPool)
}

func (f *fixture) pool(id, lbID, operating string) {
	f.exec(`INSERT INTO pool (id, load_balancer_id, protocol, lb_algorithm, operating_status, enabled, provisioning_status)
		VALUES ($1, $2, 'HTTP', 'ROUND_ROBIN', $3, true, 'ACTIVE')`, id, lbID, operating)
}

func (f *fixture) member(id, poolID, operating string, enabled bool) {
	f.port++
	f.exec(`INSERT INTO member (id, pool_id, ip_address, protocol_port, operating_status, enabled, provisioning_status, backup)
		VALUES ($1, $2, '192.0.2.1', $3, $4, $5, 'ACTIVE', false)`, id, poolID, f.port, operating, enabled)
}

func (f *fixture) statusOf(table, id string) (status string, updated *time.Time) {
	f.t.Helper()
	err := f.db.QueryRow(context.Background(), `SELECT operating_status, updated_at FROM `+table+` WHERE id = $1`, id).Scan(&status, &updated)
	if err != nil {
		f.t.Fatalf("read %s %s: %v", table, id, err)
	}
	return status, updated
}

// dbClock reads the database server's clock, as naive UTC: the clock
// last_update and updated_at are written with.
func (f *fixture) dbClock() time.Time {
	f.t.Helper()
	var at time.Time
	if err := f.db.QueryRow(context.Background(), `SELECT clock_timestamp() AT TIME ZONE 'UTC'`).Scan(&at); err != nil {
		f.t.Fatalf("read the database clock: %v", err)
	}
	return at
}

func (f *fixture) health(amphoraID string) (lastUpdate time.Time, busy, ok bool) {
	f.t.Helper()
	err := f.db.QueryRow(context.Background(), `SELECT last_update, busy FROM amphora_health WHERE amphora_id = $1`, amphoraID).
		Scan(&lastUpdate, &busy)
	if err != nil {
		return time.Time{}, false, false
	}
	return lastUpdate, busy, true
}

// recordingDeleter records deletions and fails for the ids in fail.
type recordingDeleter struct {
	mu      sync.Mutex
	deleted []string
	fail    map[string]bool
	// hold, when not nil, keeps every delete from answering until it is
	// closed, so a test decides when the worker's outcomes arrive.
	hold chan struct{}
}

func (d *recordingDeleter) DeleteCompute(_ context.Context, id string) error {
	if d.hold != nil {
		<-d.hold
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.deleted = append(d.deleted, id)
	if d.fail[id] {
		return errors.New("nova says no")
	}
	return nil
}

func (d *recordingDeleter) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.deleted)
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func newTestUpdater(t testing.TB, db *pgxpool.Pool, deleter ComputeDeleter, clock time.Time) *Updater {
	t.Helper()
	u, err := NewUpdater(UpdaterConfig{
		Store: NewStore(db), Deleter: deleter, Rules: rules,
		Now: func() time.Time { return clock }, Logger: quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// hb is a V3 heartbeat received now.
func hb(amphoraID string, listeners []heartbeat.Listener, pools ...heartbeat.Pool) *heartbeat.Message {
	if listeners == nil {
		listeners = []heartbeat.Listener{}
	}
	if pools == nil {
		pools = []heartbeat.Pool{}
	}
	return &heartbeat.Message{AmphoraID: amphoraID, Version: 3, HasVersion: true, Listeners: listeners, Pools: pools, RecvTime: now}
}

func TestLoadTopologies(t *testing.T) {
	db := openDB(t)
	f := &fixture{t: t, db: db}
	f.lb("lb-1", "ACTIVE", "ONLINE", true)
	f.lb("lb-dead", "DELETED", "OFFLINE", true)
	f.pool("pool-b", "lb-1", "ONLINE")
	f.pool("pool-a", "lb-1", "OFFLINE")
	f.member("m-2", "pool-a", "ONLINE", true)
	f.member("m-1", "pool-a", "NO_MONITOR", false)
	f.listener("l-2", "lb-1", "UDP", "ONLINE", true, "pool-a")
	f.listener("l-1", "lb-1", "HTTP", "OFFLINE", false, "")
	f.listener("l-3", "lb-1", "UDP", "ONLINE", true, "pool-b")
	f.amphora("amp-1", "lb-1", "ALLOCATED", "c-1")
	f.amphora("amp-2", "lb-1", "ALLOCATED", "c-2")
	f.amphora("amp-deleted", "lb-1", "DELETED", "c-3")
	f.amphora("amp-on-dead-lb", "lb-dead", "ALLOCATED", "c-4")
	f.amphora("amp-spare", "", "READY", "")

	topos, err := NewStore(db).LoadTopologies(context.Background(),
		[]string{"amp-1", "amp-2", "amp-deleted", "amp-on-dead-lb", "amp-spare", "amp-unknown"})
	if err != nil {
		t.Fatal(err)
	}
	wantLB := &LoadBalancer{ID: "lb-1", Enabled: true, ProvisioningStatus: "ACTIVE", OperatingStatus: "ONLINE",
		Listeners: []Listener{
			{ID: "l-1", OperatingStatus: "OFFLINE", Protocol: "HTTP", Enabled: false},
			{ID: "l-2", OperatingStatus: "ONLINE", Protocol: "UDP", Enabled: true, DefaultPoolHasEnabledMember: true},
			{ID: "l-3", OperatingStatus: "ONLINE", Protocol: "UDP", Enabled: true},
		},
		Pools: []Pool{
			{ID: "pool-a", OperatingStatus: "OFFLINE", Members: []Member{{ID: "m-1", OperatingStatus: "NO_MONITOR"}, {ID: "m-2", OperatingStatus: "ONLINE"}}},
			{ID: "pool-b", OperatingStatus: "ONLINE"},
		},
	}
	if got := topos["amp-1"]; got == nil || !reflect.DeepEqual(got.LB, wantLB) || got.ComputeID != "c-1" {
		t.Errorf("amp-1: %+v\nLB %+v\nwant %+v", got, got.LB, wantLB)
	}
	if topos["amp-1"].LB != topos["amp-2"].LB {
		t.Error("the two amphorae of one load balancer do not share its topology")
	}
	for _, zombie := range []string{"amp-deleted", "amp-on-dead-lb", "amp-spare"} {
		if z := topos[zombie]; z == nil || !z.AmphoraExists || z.LB != nil {
			t.Errorf("%s: %+v, want an existing amphora without a live LB", zombie, z)
		}
	}
	if topos["amp-spare"].ComputeID != "" || topos["amp-deleted"].ComputeID != "c-3" {
		t.Errorf("compute ids: %q %q", topos["amp-spare"].ComputeID, topos["amp-deleted"].ComputeID)
	}
	if _, ok := topos["amp-unknown"]; ok {
		t.Error("an unknown amphora has a topology")
	}
}

func TestApplyHealthUpsertKeepsBusy(t *testing.T) {
	db := openDB(t)
	f := &fixture{t: t, db: db}
	f.lb("lb-1", "ACTIVE", "ONLINE", true)
	f.amphora("amp-busy", "lb-1", "ALLOCATED", "c-1")
	f.amphora("amp-new", "lb-1", "ALLOCATED", "c-2")
	old := now.Add(-time.Hour)
	f.exec(`INSERT INTO amphora_health (amphora_id, last_update, busy) VALUES ('amp-busy', $1, true)`, old)

	u := newTestUpdater(t, db, &recordingDeleter{}, now)
	before := f.dbClock()
	res, err := u.ApplyBatch(context.Background(), []*heartbeat.Message{hb("amp-busy", nil), hb("amp-new", nil)})
	if err != nil {
		t.Fatal(err)
	}
	after := f.dbClock()
	if res.Health[HealthWrite] != 2 {
		t.Errorf("health outcomes %v", res.Health)
	}
	for _, c := range []struct {
		id   string
		busy bool
	}{{"amp-busy", true}, {"amp-new", false}} {
		last, busy, ok := f.health(c.id)
		// The database's clock, not the updater's (which says 2026-11-21).
		if !ok || busy != c.busy || last.Before(before) || last.After(after) {
			t.Errorf("%s: last_update %v busy %v present %v; want the database's time, in [%v, %v], busy %v",
				c.id, last, busy, ok, before, after, c.busy)
		}
	}
}

func TestApplyWritesOnlyChangedStatusesWithUpdatedAt(t *testing.T) {
	db := openDB(t)
	f := &fixture{t: t, db: db}
	f.lb("lb-1", "ACTIVE", "ONLINE", true)
	f.amphora("amp-1", "lb-1", "ALLOCATED", "c-1")
	f.pool("pool-1", "lb-1", "ONLINE")
	f.member("m-same", "pool-1", "ONLINE", true)
	f.member("m-down", "pool-1", "ONLINE", true)
	f.listener("l-1", "lb-1", "HTTP", "ONLINE", true, "pool-1")

	u := newTestUpdater(t, db, &recordingDeleter{}, now)
	msg := hb("amp-1", []heartbeat.Listener{{ID: "l-1", Status: "OPEN"}},
		heartbeat.Pool{Key: "pool-1:l-1", Status: "UP", Members: []heartbeat.Member{{ID: "m-same", Status: "UP"}, {ID: "m-down", Status: "DOWN"}}})
	before := f.dbClock()
	res, err := u.ApplyBatch(context.Background(), []*heartbeat.Message{msg})
	if err != nil {
		t.Fatal(err)
	}
	after := f.dbClock()
	// One transaction: every updated_at and last_update is the same
	// database time.
	at, _, _ := f.health("amp-1")
	if at.Before(before) || at.After(after) {
		t.Errorf("last_update %v; want the database's time, in [%v, %v]", at, before, after)
	}
	for _, c := range []struct {
		table, id, status string
		touched           bool
	}{
		{"load_balancer", "lb-1", "DEGRADED", true},
		{"listener", "l-1", "ONLINE", false},
		{"pool", "pool-1", "DEGRADED", true},
		{"member", "m-same", "ONLINE", false},
		{"member", "m-down", "ERROR", true},
	} {
		status, updated := f.statusOf(c.table, c.id)
		if status != c.status {
			t.Errorf("%s %s: %s, want %s", c.table, c.id, status, c.status)
		}
		if c.touched != (updated != nil) || (updated != nil && !updated.Equal(at)) {
			t.Errorf("%s %s: updated_at %v, want touched=%v at %v", c.table, c.id, updated, c.touched, at)
		}
	}
	if res.Changes["member"]["ERROR"] != 1 || res.Changes["pool"]["DEGRADED"] != 1 || res.Changes["listener"] != nil {
		t.Errorf("change counts %v", res.Changes)
	}
}

// The rows a zombie leaves are Octavia's whether its compute delete runs
// inside the batch (replay) or on the zombie-delete worker (serve): a
// failed delete falls through to the health write, when it fails.
func TestZombieAndUnknownAmphorae(t *testing.T) {
	for _, inline := range []bool{true, false} {
		t.Run(fmt.Sprintf("inline=%v", inline), func(t *testing.T) {
			db := openDB(t)
			f := &fixture{t: t, db: db}
			f.lb("lb-dead", "DELETED", "OFFLINE", true)
			f.amphora("amp-on-dead-lb", "lb-dead", "ALLOCATED", "c-ok")
			f.amphora("amp-deleted", "", "DELETED", "c-fails")
			f.amphora("amp-no-lb", "", "ALLOCATED", "c-fails-2")
			f.amphora("amp-no-compute", "", "DELETED", "")
			deleter := &recordingDeleter{fail: map[string]bool{"c-fails": true, "c-fails-2": true}}
			if !inline {
				// The worker's outcomes arrive after the batch, as a
				// slow Nova's would: a failure that came back while the
				// batch still ran would turn the second amp-deleted
				// heartbeat into a health write.
				deleter.hold = make(chan struct{})
			}
			u, err := NewUpdater(UpdaterConfig{
				Store: NewStore(db), Deleter: deleter, Rules: rules, InlineZombieDeletes: inline,
				Now: func() time.Time { return now }, Logger: quiet,
			})
			if err != nil {
				t.Fatal(err)
			}
			res, err := u.ApplyBatch(context.Background(), []*heartbeat.Message{
				hb("amp-on-dead-lb", nil),
				hb("amp-deleted", nil), // delete fails, no listeners reported: health written
				hb("amp-no-lb", []heartbeat.Listener{{ID: "l", Status: "OPEN"}}), // delete fails, count mismatch: no health
				hb("amp-deleted", nil), // deleted once
				hb("amp-unknown", nil),
				hb("amp-no-compute", nil), // NULL compute_id: not deleted, nothing written
			})
			if err != nil {
				t.Fatal(err)
			}
			if deleter.hold != nil {
				close(deleter.hold)
			}
			u.zombies.wait()
			deleter.mu.Lock()
			deleted := append([]string(nil), deleter.deleted...)
			deleter.mu.Unlock()
			sort.Strings(deleted)
			if !reflect.DeepEqual(deleted, []string{"c-fails", "c-fails-2", "c-ok"}) {
				t.Errorf("deleted %v", deleted)
			}
			for id, want := range map[string]bool{"amp-on-dead-lb": false, "amp-deleted": true, "amp-no-lb": false,
				"amp-unknown": false, "amp-no-compute": false} {
				if _, _, ok := f.health(id); ok != want {
					t.Errorf("%s: health row %v, want %v", id, ok, want)
				}
			}
			want := [healthOutcomeCount]int{HealthWrite: 2, HealthSkipCountMismatch: 1, HealthSkipZombie: 2, HealthSkipUnknown: 1}
			if !inline {
				// The batch records the zombies and goes on; the
				// fall-through write of amp-deleted came when its delete
				// failed.
				want = [healthOutcomeCount]int{HealthSkipZombie: 5, HealthSkipUnknown: 1}
			}
			if res.Health != want || res.ComputeDeletes != 3 {
				t.Errorf("result %+v; want health %v", res, want)
			}
			if status, _ := f.statusOf("load_balancer", "lb-dead"); status != "OFFLINE" {
				t.Errorf("a zombie's DELETED load balancer was touched: %s", status)
			}

			// The next heartbeats within a minute re-use the outcomes:
			// no delete, the failed one written in the batch.
			res, err = u.ApplyBatch(context.Background(), []*heartbeat.Message{hb("amp-deleted", nil), hb("amp-on-dead-lb", nil)})
			if err != nil {
				t.Fatal(err)
			}
			u.zombies.wait()
			if res.ComputeDeletes != 0 || res.Health[HealthWrite] != 1 || res.Health[HealthSkipZombie] != 1 {
				t.Errorf("repeat: result %+v; want the remembered outcomes", res)
			}
			if deleter.count() != 3 {
				t.Errorf("repeat: %d deletes; want still 3", deleter.count())
			}
		})
	}
}

// Found by the interop suite: an amphora id holding NUL made the batch's
// topology query fail, so every heartbeat of the batch went unapplied.
// Octavia fails on that heartbeat alone.
func TestAmphoraIDWithNUL(t *testing.T) {
	db := openDB(t)
	f := &fixture{t: t, db: db}
	f.lb("lb-1", "ACTIVE", "OFFLINE", true)
	f.amphora("amp-1", "lb-1", "ALLOCATED", "c-1")
	u := newTestUpdater(t, db, &recordingDeleter{}, now)
	res, err := u.ApplyBatch(context.Background(), []*heartbeat.Message{hb("amp\x001", nil), hb("amp-1", nil), hb("\x00", nil)})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, ok := f.health("amp-1"); !ok {
		t.Error("amp-1's heartbeat was not applied")
	}
	if status, _ := f.statusOf("load_balancer", "lb-1"); status != "ONLINE" {
		t.Errorf("load balancer %s, want ONLINE", status)
	}
	if res.Health[HealthSkipUnknown] != 2 || res.Health[HealthWrite] != 1 {
		t.Errorf("result %+v", res)
	}
}

func TestDisabledAndPendingLoadBalancers(t *testing.T) {
	db := openDB(t)
	f := &fixture{t: t, db: db}
	f.lb("lb-disabled", "ACTIVE", "ONLINE", false)
	f.lb("lb-pending", "PENDING_UPDATE", "OFFLINE", true)
	for _, lb := range []string{"lb-disabled", "lb-pending"} {
		f.amphora("amp-"+lb, lb, "ALLOCATED", "c-"+lb)
		f.listener("l-"+lb, lb, "HTTP", "ONLINE", true, "")
	}
	u := newTestUpdater(t, db, &recordingDeleter{}, now)
	// Neither reports its listener, and neither count is checked.
	if _, err := u.ApplyBatch(context.Background(), []*heartbeat.Message{hb("amp-lb-disabled", nil), hb("amp-lb-pending", nil)}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ table, id, status string }{
		{"load_balancer", "lb-disabled", "OFFLINE"},
		{"listener", "l-lb-disabled", "ERROR"}, // enabled and ACTIVE, as Octavia decides
		{"load_balancer", "lb-pending", "ONLINE"},
		{"listener", "l-lb-pending", "OFFLINE"},
	} {
		if status, _ := f.statusOf(c.table, c.id); status != c.status {
			t.Errorf("%s %s: %s, want %s", c.table, c.id, status, c.status)
		}
	}
	for _, amp := range []string{"amp-lb-disabled", "amp-lb-pending"} {
		if _, _, ok := f.health(amp); !ok {
			t.Errorf("%s: no health row", amp)
		}
	}
}

func TestVersionlessUDP(t *testing.T) {
	db := openDB(t)
	f := &fixture{t: t, db: db}
	f.lb("lb-1", "ACTIVE", "ONLINE", true)
	f.amphora("amp-1", "lb-1", "ALLOCATED", "c-1")
	f.pool("pool-disabled-member", "lb-1", "ONLINE")
	f.member("m-off", "pool-disabled-member", "ONLINE", false)
	f.pool("pool-live", "lb-1", "ONLINE")
	f.member("m-on", "pool-live", "ONLINE", true)
	f.listener("udp-no-member", "lb-1", "UDP", "ONLINE", true, "pool-disabled-member")
	f.listener("udp-no-pool", "lb-1", "UDP", "ONLINE", true, "")
	f.listener("udp-live", "lb-1", "UDP", "ONLINE", true, "pool-live")
	u := newTestUpdater(t, db, &recordingDeleter{}, now)
	// A Rocky agent reports only the UDP listener that has an enabled member.
	rocky := &heartbeat.Message{AmphoraID: "amp-1", RecvTime: now, Listeners: []heartbeat.Listener{
		{ID: "udp-live", Status: "OPEN", HasPools: true, Pools: []heartbeat.Pool{{Key: "pool-live", Status: "UP", Members: []heartbeat.Member{{ID: "m-on", Status: "UP"}}}}},
	}}
	res, err := u.ApplyBatch(context.Background(), []*heartbeat.Message{rocky})
	if err != nil {
		t.Fatal(err)
	}
	if res.Health[HealthWrite] != 1 {
		t.Fatalf("versionless heartbeat: %v, want the health row written (3 listeners, 2 without enabled members)", res.Health)
	}
	// The same heartbeat with "ver": 1 is held to the full count.
	versioned := *rocky
	versioned.Version, versioned.HasVersion = 1, true
	if res, err = u.ApplyBatch(context.Background(), []*heartbeat.Message{&versioned}); err != nil || res.Health[HealthSkipCountMismatch] != 1 {
		t.Errorf("ver 1: %v %v, want a count mismatch", res.Health, err)
	}
}

func TestActiveStandbyPairInOneBatch(t *testing.T) {
	db := openDB(t)
	f := &fixture{t: t, db: db}
	f.lb("lb-1", "ACTIVE", "ONLINE", true)
	f.amphora("amp-master", "lb-1", "ALLOCATED", "c-1")
	f.amphora("amp-backup", "lb-1", "ALLOCATED", "c-2")
	f.pool("pool-1", "lb-1", "ONLINE")
	f.member("m-1", "pool-1", "ONLINE", true)
	f.listener("l-1", "lb-1", "HTTP", "ONLINE", true, "pool-1")
	listeners := []heartbeat.Listener{{ID: "l-1", Status: "OPEN"}}
	down := heartbeat.Pool{Key: "pool-1:l-1", Status: "UP", Members: []heartbeat.Member{{ID: "m-1", Status: "DOWN"}}}
	up := heartbeat.Pool{Key: "pool-1:l-1", Status: "UP", Members: []heartbeat.Member{{ID: "m-1", Status: "UP"}}}

	// The master sees the member down, then the backup sees it up: the
	// backup's heartbeat must see the master's writes and set everything
	// back, so nothing changes in the database at all.
	u := newTestUpdater(t, db, &recordingDeleter{}, now)
	res, err := u.ApplyBatch(context.Background(), []*heartbeat.Message{hb("amp-master", listeners, down), hb("amp-backup", listeners, up)})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Changes) != 0 {
		t.Errorf("net changes %v, want none", res.Changes)
	}
	for _, c := range []struct{ table, id string }{{"load_balancer", "lb-1"}, {"pool", "pool-1"}, {"member", "m-1"}} {
		if status, updated := f.statusOf(c.table, c.id); status != "ONLINE" || updated != nil {
			t.Errorf("%s: %s (updated %v), want ONLINE untouched", c.id, status, updated)
		}
	}
	// In the other order, the member ends up down.
	if _, err := u.ApplyBatch(context.Background(), []*heartbeat.Message{hb("amp-backup", listeners, up), hb("amp-master", listeners, down)}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ table, id, status string }{{"load_balancer", "lb-1", "DEGRADED"}, {"pool", "pool-1", "DEGRADED"}, {"member", "m-1", "ERROR"}} {
		if status, _ := f.statusOf(c.table, c.id); status != c.status {
			t.Errorf("%s: %s, want %s", c.id, status, c.status)
		}
	}
	for _, amp := range []string{"amp-master", "amp-backup"} {
		if _, _, ok := f.health(amp); !ok {
			t.Errorf("%s: no health row", amp)
		}
	}
}

func TestLateHeartbeatsAreDropped(t *testing.T) {
	db := openDB(t)
	f := &fixture{t: t, db: db}
	f.lb("lb-1", "ACTIVE", "OFFLINE", true)
	f.amphora("amp-1", "lb-1", "ALLOCATED", "c-1")
	u := newTestUpdater(t, db, &recordingDeleter{}, now)
	m := hb("amp-1", nil)
	m.RecvTime = now.Add(-rules.HeartbeatInterval)
	res, err := u.ApplyBatch(context.Background(), []*heartbeat.Message{m})
	if err != nil || res.Health[HealthSkipLate] != 1 {
		t.Fatalf("%v %v", res.Health, err)
	}
	if _, _, ok := f.health("amp-1"); ok {
		t.Error("a late heartbeat wrote health")
	}
	if status, _ := f.statusOf("load_balancer", "lb-1"); status != "OFFLINE" {
		t.Errorf("a late heartbeat changed the LB to %s", status)
	}
}
