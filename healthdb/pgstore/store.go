package pgstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/octavia-vpp/health/healthdb"
)

// Store reads amphora topologies and writes status decisions in Octavia's
// schema on PostgreSQL. It implements healthdb.UpdaterStore and
// healthdb.WatcherStore, and healthdb.TopologyCacher. It is safe for
// concurrent use.
type Store struct {
	pool *pgxpool.Pool

	// versionTable is 0 until hasVersionTable looked, then 1 if
	// ovh_lb_version exists, 2 if not.
	versionTable atomic.Int32

	cachesMu sync.Mutex
	caches   []*topologyCache // told of every status write (statusWritten)
}

var (
	_ healthdb.UpdaterStore   = (*Store)(nil)
	_ healthdb.WatcherStore   = (*Store)(nil)
	_ healthdb.TopologyCacher = (*Store)(nil)
)

// New wraps a connection pool.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// The topology of a batch is read in two round trips: the amphorae with
// their load balancers, then the listeners, pools and members of the live
// load balancers found, three queries sent as one pgx batch. (Sending all
// four at once, each finding the load balancers from the amphora ids
// again, costs PostgreSQL more than the second round trip.) Unlike Octavia's single join, which returns the cross
// product listeners x (pools x members) for every heartbeat, each row here
// is one entity. The ids arrive through unnest() so that every lookup is an
// index lookup. Rows are sorted in Go, by byte order, so that the order
// Decide processes listeners in does not depend on the database collation.
const (
	batchAmphorae = `unnest($1::varchar[]) AS ids(id) JOIN amphora a ON a.id = ids.id`

	selectAmphorae = `
SELECT a.id, a.compute_id, a.status, lb.id, lb.enabled, lb.provisioning_status, lb.operating_status
FROM ` + batchAmphorae + `
LEFT JOIN load_balancer lb ON lb.id = a.load_balancer_id`

	// selectAmphoraeVersioned is selectAmphorae for the topology cache: it
	// also reads, in the same snapshot, each load balancer's two versions
	// and the truncate epoch (migrations/sql/00006_ovh_lb_version.sql).
	// The listener, pool and member reads that follow see that snapshot's
	// state or a later one; either way every change after this snapshot
	// has bumped a version past the ones recorded, so the cache can only
	// hold a topology newer than its versions, never older.
	selectAmphoraeVersioned = `
SELECT a.id, a.compute_id, a.status, lb.id, lb.enabled, lb.provisioning_status, lb.operating_status,
       coalesce(tv.version, 0), coalesce(sv.version, 0),
       coalesce((SELECT e.version FROM ovh_lb_version e WHERE e.load_balancer_id = '*' AND e.writer = 0), 0)
FROM ` + batchAmphorae + `
LEFT JOIN load_balancer lb ON lb.id = a.load_balancer_id
LEFT JOIN ovh_lb_version tv ON tv.load_balancer_id = lb.id AND tv.writer = 0
LEFT JOIN ovh_lb_version sv ON sv.load_balancer_id = lb.id AND sv.writer = 1`

	// batchLBs is the set of live load balancers the batch's amphorae
	// point at, found by selectAmphorae.
	batchLBs = `unnest($1::varchar[]) AS lbs(id)`

	// The versionless-UDP rule needs, per UDP listener, whether its default
	// pool has an enabled member; other protocols never ask.
	selectListeners = `
SELECT l.load_balancer_id, l.id, l.operating_status, l.protocol, l.enabled,
       l.protocol = 'UDP' AND EXISTS (
           SELECT 1 FROM member m WHERE m.pool_id = l.default_pool_id AND m.enabled)
FROM ` + batchLBs + ` JOIN listener l ON l.load_balancer_id = lbs.id`

	selectPools = `
SELECT p.load_balancer_id, p.id, p.operating_status
FROM ` + batchLBs + ` JOIN pool p ON p.load_balancer_id = lbs.id`

	selectMembers = `
SELECT m.pool_id, m.id, m.operating_status
FROM ` + batchLBs + ` JOIN pool p ON p.load_balancer_id = lbs.id JOIN member m ON m.pool_id = p.id`
)

const statusDeleted = "DELETED"

// LoadTopologies reads the topologies of the given amphorae in one round
// trip. Amphorae without a row are absent from the result. Amphorae of the
// same load balancer (an ACTIVE_STANDBY pair) share one *LoadBalancer, so
// that changes applied in memory for one are seen by the other.
func (s *Store) LoadTopologies(ctx context.Context, amphoraIDs []string) (map[string]*healthdb.Topology, error) {
	topos, _, err := s.loadTopologies(ctx, amphoraIDs, false)
	return topos, err
}

// lbVersion is a load balancer's pair of versions in ovh_lb_version:
// topology (writer 0, bumped by triggers on every change by anyone but a
// health manager's status write) and status (writer 1, bumped by our
// status writes). 0 stands for a row not there yet.
type lbVersion struct {
	topology, status int64
}

// topologyVersions records the versions a read was made from.
type topologyVersions struct {
	lbs   map[string]lbVersion
	epoch int64 // the truncate epoch
}

// loadTopologies reads topologies, and with versioned also the versions
// the topology cache keeps them under.
func (s *Store) loadTopologies(ctx context.Context, amphoraIDs []string, versioned bool) (map[string]*healthdb.Topology, *topologyVersions, error) {
	topos := make(map[string]*healthdb.Topology, len(amphoraIDs))
	versions := &topologyVersions{lbs: map[string]lbVersion{}}
	amphoraIDs = storableIDs(amphoraIDs)
	if len(amphoraIDs) == 0 {
		return topos, versions, nil
	}
	lbs := map[string]*healthdb.LoadBalancer{}
	var lbIDs []string
	query := selectAmphorae
	if versioned {
		query = selectAmphoraeVersioned
	}
	amphorae, err := s.pool.Query(ctx, query, amphoraIDs)
	if err != nil {
		return nil, nil, fmt.Errorf("load %d amphorae: %w", len(amphoraIDs), err)
	}
	if err := scanRows(amphorae, func(rows pgx.Rows) error {
		var id, status string
		var computeID, lbID, lbProv, lbOp *string
		var lbEnabled *bool
		var v lbVersion
		dest := []any{&id, &computeID, &status, &lbID, &lbEnabled, &lbProv, &lbOp}
		if versioned {
			dest = append(dest, &v.topology, &v.status, &versions.epoch)
		}
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		t := &healthdb.Topology{AmphoraID: id, AmphoraExists: true}
		if computeID != nil {
			t.ComputeID = *computeID
		}
		// get_lb_for_health_update's inner join and filters: a live amphora
		// on a load balancer that is not DELETED.
		if status != statusDeleted && lbID != nil && *lbProv != statusDeleted {
			lb := lbs[*lbID]
			if lb == nil {
				lb = &healthdb.LoadBalancer{ID: *lbID, Enabled: *lbEnabled, ProvisioningStatus: *lbProv, OperatingStatus: *lbOp}
				lbs[*lbID] = lb
				lbIDs = append(lbIDs, *lbID)
				versions.lbs[*lbID] = v
			}
			t.LB = lb
		}
		topos[id] = t
		return nil
	}); err != nil {
		return nil, nil, fmt.Errorf("load %d amphorae: %w", len(amphoraIDs), err)
	}
	if len(lbIDs) == 0 {
		return topos, versions, nil
	}
	batch := &pgx.Batch{}
	for _, q := range []string{selectListeners, selectPools, selectMembers} {
		batch.Queue(q, lbIDs)
	}
	results := s.pool.SendBatch(ctx, batch)
	defer results.Close()
	if err := eachRow(results, func(rows pgx.Rows) error {
		var lbID string
		var l healthdb.Listener
		if err := rows.Scan(&lbID, &l.ID, &l.OperatingStatus, &l.Protocol, &l.Enabled, &l.DefaultPoolHasEnabledMember); err != nil {
			return err
		}
		if lb := lbs[lbID]; lb != nil {
			lb.Listeners = append(lb.Listeners, l)
		}
		return nil
	}); err != nil {
		return nil, nil, fmt.Errorf("load listeners of %d load balancers: %w", len(lbs), err)
	}
	var poolLB []string // pool index -> load balancer, to place them after the read
	var pools []healthdb.Pool
	if err := eachRow(results, func(rows pgx.Rows) error {
		var lbID string
		var p healthdb.Pool
		if raw := rows.RawValues(); len(raw) == 3 && nonNull(raw) {
			lbID, p.ID, p.OperatingStatus = rawText(raw[0]), rawText(raw[1]), rawStatus(raw[2])
		} else if err := rows.Scan(&lbID, &p.ID, &p.OperatingStatus); err != nil {
			return err
		}
		pools = append(pools, p)
		poolLB = append(poolLB, lbID)
		return nil
	}); err != nil {
		return nil, nil, fmt.Errorf("load pools of %d load balancers: %w", len(lbs), err)
	}
	// Members find their load balancer through their pool, which the
	// pool read placed: no load balancer id travels with each member.
	poolIndex := make(map[string]int, len(pools))
	for i := range pools {
		poolIndex[pools[i].ID] = i
	}
	addMember := func(poolID []byte, m healthdb.Member) {
		i, found := poolIndex[string(poolID)] // no allocation for the lookup
		if !found {
			return // a pool created after the pool read: not in this topology
		}
		pools[i].Members = append(pools[i].Members, m)
	}
	if err := eachRow(results, func(rows pgx.Rows) error {
		if raw := rows.RawValues(); len(raw) == 3 && nonNull(raw) {
			addMember(raw[0], healthdb.Member{ID: rawText(raw[1]), OperatingStatus: rawStatus(raw[2])})
			return nil
		}
		var poolID string
		var m healthdb.Member
		if err := rows.Scan(&poolID, &m.ID, &m.OperatingStatus); err != nil {
			return err
		}
		addMember([]byte(poolID), m)
		return nil
	}); err != nil {
		return nil, nil, fmt.Errorf("load members of %d load balancers: %w", len(lbs), err)
	}
	for i := range pools {
		if lb := lbs[poolLB[i]]; lb != nil {
			p := &pools[i]
			slices.SortFunc(p.Members, func(a, b healthdb.Member) int { return strings.Compare(a.ID, b.ID) })
			lb.Pools = append(lb.Pools, *p)
		}
	}
	for _, lb := range lbs {
		slices.SortFunc(lb.Listeners, func(a, b healthdb.Listener) int { return strings.Compare(a.ID, b.ID) })
		slices.SortFunc(lb.Pools, func(a, b healthdb.Pool) int { return strings.Compare(a.ID, b.ID) })
	}
	return topos, versions, nil
}

func eachRow(results pgx.BatchResults, scan func(pgx.Rows) error) error {
	rows, err := results.Query()
	if err != nil {
		return err
	}
	return scanRows(rows, scan)
}

func scanRows(rows pgx.Rows, scan func(pgx.Rows) error) error {
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// dbNow is the database server's clock as naive UTC, the form of
// Octavia's timestamp columns. Every time this manager writes, and every
// staleness it judges, is on this one clock, so that the clocks of the
// controllers, which may differ, never compare against each other (see
// docs/failover.md, "One clock"). now() is the start of the transaction:
// every statement of one transaction sees the same time.
const dbNow = `(now() AT TIME ZONE 'UTC')`

// upsertHealth sets last_update on the amphorae's rows, creating the rows
// that are missing (busy false). Rows that exist, nearly all of them, are
// updated by a plain UPDATE: one WAL record per row, where INSERT ... ON
// CONFLICT DO UPDATE also locks the row it conflicts with (a second
// record) and probes the index twice. Only the ids the UPDATE did not find
// go through INSERT ... ON CONFLICT, so a row inserted meanwhile by
// another transaction is still updated, and a row deleted meanwhile is
// inserted again, as the single upsert did.
const upsertHealth = `
WITH updated AS (
    UPDATE amphora_health AS h SET last_update = ` + dbNow + `
    FROM unnest($1::varchar[]) AS u(id)
    WHERE h.amphora_id = u.id
    RETURNING h.amphora_id)
INSERT INTO amphora_health (amphora_id, last_update, busy)
SELECT id, ` + dbNow + `, false FROM unnest($1::varchar[]) AS u(id)
WHERE NOT EXISTS (SELECT 1 FROM updated WHERE updated.amphora_id = u.id)
ON CONFLICT (amphora_id) DO UPDATE SET last_update = EXCLUDED.last_update`

// updateStatus sets operating_status and updated_at, only on rows whose
// status really changes. The table name comes from a fixed list.
func updateStatus(table string) string {
	return `
UPDATE ` + table + ` AS t SET operating_status = u.status, updated_at = ` + dbNow + `
FROM unnest($1::varchar[], $2::varchar[]) AS u(id, status)
WHERE t.id = u.id AND t.operating_status <> u.status`
}

var (
	updateLoadBalancers = updateStatus("load_balancer")
	updateListeners     = updateStatus("listener")
	updatePools         = updateStatus("pool")
	updateMembers       = updateStatus("member")
)

// maxApplyAttempts bounds retries of a batch that lost a deadlock or a
// serialization race against another health manager.
const maxApplyAttempts = 3

// markStatusWriter tells the topology triggers (ovh_topology_changed in
// migrations/sql/00006_ovh_lb_version.sql) that this transaction is a
// health manager's status write, which bumps the load balancers' status
// versions itself (bumpStatusVersions). The setting ends with the
// transaction, so a pooled connection never carries it into another.
const markStatusWriter = `SELECT set_config('ovh_health.status_writer', 'on', true)`

// bumpStatusVersions gives every load balancer whose rows the status
// updates may have changed a new status version, after those updates, in
// one statement sorted by id: every health manager locks these rows last
// and in the same order, so two of them cannot deadlock here, and no
// transaction of Octavia's ever locks them (its changes bump the topology
// version, another row). The load balancers are found through the same
// joins as the topology read, so a cached topology holding a changed row
// always has its load balancer bumped.
//
// previous_version is the status version this bump replaced. Under READ
// COMMITTED, ON CONFLICT DO UPDATE works on the newest committed row
// version, after waiting for any other manager holding it, so previous
// equals the version a cache holds exactly when no other status write
// came in between. The topology version is read in this statement's
// snapshot: a change committed before it is seen here; one committed
// after it bumps the topology version past the value returned, which the
// cache's next check sees.
const bumpStatusVersions = `
INSERT INTO ovh_lb_version AS v (load_balancer_id, writer, version)
SELECT lb, 1, nextval('ovh_lb_version_seq') FROM (
    SELECT id FROM load_balancer WHERE id = ANY($1::varchar[])
    UNION SELECT load_balancer_id FROM listener WHERE id = ANY($2::varchar[])
    UNION SELECT load_balancer_id FROM pool WHERE id = ANY($3::varchar[])
    UNION SELECT p.load_balancer_id FROM member m JOIN pool p ON p.id = m.pool_id WHERE m.id = ANY($4::varchar[])
) AS touched(lb)
WHERE lb IS NOT NULL
ORDER BY lb
ON CONFLICT (load_balancer_id, writer) DO UPDATE SET previous_version = v.version, version = EXCLUDED.version
RETURNING v.load_balancer_id, coalesce(v.previous_version, 0), v.version,
    coalesce((SELECT t.version FROM ovh_lb_version t WHERE t.load_balancer_id = v.load_balancer_id AND t.writer = 0), 0)`

// statusBump is one row of bumpStatusVersions.
type statusBump struct {
	lbID              string
	previous, version int64 // the status version replaced, and the new one
	topology          int64
}

// Apply writes a batch in one transaction, sent in one round trip.
// amphora_health's last_update and every changed row's updated_at are the
// database's time at the start of the transaction, as naive UTC (the form
// Octavia stores), never this process's clock.
func (s *Store) Apply(ctx context.Context, w *healthdb.Writes) error {
	if w.Empty() {
		return nil
	}
	health := append([]string(nil), w.Health...)
	sort.Strings(health) // a fixed lock order keeps concurrent managers from deadlocking
	health = dedupeSorted(health)
	statusChanges := len(w.LoadBalancers)+len(w.Listeners)+len(w.Pools)+len(w.Members) > 0
	versioned := false
	if statusChanges {
		var err error
		if versioned, err = s.hasVersionTable(ctx); err != nil {
			return err
		}
	}
	bumps, err := s.apply(ctx, health, w, versioned)
	var pgErr *pgconn.PgError
	if err != nil && versioned && errors.As(err, &pgErr) && (pgErr.Code == "42P01" || pgErr.Code == "42501") {
		// ovh_lb_version gone, or this role may not write it: write
		// without it rather than lose the batch. The triggers, if any,
		// then bump for these writes as for anyone's.
		s.versionTable.Store(2)
		versioned = false
		bumps, err = s.apply(ctx, health, w, false)
	}
	if err != nil {
		return fmt.Errorf("apply %d health rows and status changes: %w", len(health), err)
	}
	if versioned {
		s.statusWritten(w, bumps)
	}
	return nil
}

// apply runs Apply's transaction, retrying lost deadlocks; versioned marks
// it a status writer and bumps the status versions (whose rows it returns).
func (s *Store) apply(ctx context.Context, health []string, w *healthdb.Writes, versioned bool) ([]statusBump, error) {
	batch := &pgx.Batch{}
	if versioned {
		batch.Queue(markStatusWriter)
	}
	if len(health) > 0 {
		batch.Queue(upsertHealth, health)
	}
	var touched [4][]string
	for i, u := range []struct {
		sql     string
		changes map[string]string
	}{
		{updateLoadBalancers, w.LoadBalancers},
		{updateListeners, w.Listeners},
		{updatePools, w.Pools},
		{updateMembers, w.Members},
	} {
		if len(u.changes) == 0 {
			continue
		}
		ids, statuses := sortedPairs(u.changes)
		touched[i] = ids
		batch.Queue(u.sql, ids, statuses)
	}
	if versioned {
		batch.Queue(bumpStatusVersions, touched[0], touched[1], touched[2], touched[3])
	}
	var bumps []statusBump
	var err error
	for attempt := 1; attempt <= maxApplyAttempts; attempt++ {
		bumps = bumps[:0]
		err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			results := tx.SendBatch(ctx, batch)
			execs := batch.Len()
			if versioned {
				execs-- // the last, bumpStatusVersions, returns rows
			}
			for range execs {
				if _, err := results.Exec(); err != nil {
					results.Close()
					return err
				}
			}
			if versioned {
				err := eachRow(results, func(rows pgx.Rows) error {
					var b statusBump
					if err := rows.Scan(&b.lbID, &b.previous, &b.version, &b.topology); err != nil {
						return err
					}
					bumps = append(bumps, b)
					return nil
				})
				if err != nil {
					results.Close()
					return err
				}
			}
			return results.Close()
		})
		if err == nil || !retryable(err) {
			break
		}
	}
	return bumps, err
}

// hasVersionTable reports whether ovh_lb_version exists (migration 00006;
// a schema someone else made may lack it), looked up once. Without it the
// status writes are plain, and any trigger added later bumps for them, as
// for any writer's: only our own cache's entries are then lost.
func (s *Store) hasVersionTable(ctx context.Context) (bool, error) {
	switch s.versionTable.Load() {
	case 1:
		return true, nil
	case 2:
		return false, nil
	}
	var exists bool
	if err := s.pool.QueryRow(ctx, `SELECT to_regclass('ovh_lb_version') IS NOT NULL`).Scan(&exists); err != nil {
		return false, fmt.Errorf("look for ovh_lb_version: %w", err)
	}
	if exists {
		s.versionTable.Store(1)
	} else {
		s.versionTable.Store(2)
	}
	return exists, nil
}

// storableIDs drops the ids that contain NUL. PostgreSQL text cannot hold
// NUL, so no row has such an id, and sending one fails the whole query:
// one authenticated but hostile heartbeat would cost the batch its
// updates. Octavia fails on such a heartbeat alone and writes nothing for
// it, which is what an amphora without a row gets here. The input is not
// modified.
func storableIDs(ids []string) []string {
	for i, id := range ids {
		if strings.IndexByte(id, 0) < 0 {
			continue
		}
		out := append(make([]string, 0, len(ids)-1), ids[:i]...)
		for _, id := range ids[i+1:] {
			if strings.IndexByte(id, 0) < 0 {
				out = append(out, id)
			}
		}
		return out
	}
	return ids
}

func retryable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40P01" || pgErr.Code == "40001")
}

func dedupeSorted(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

func sortedPairs(m map[string]string) (ids, values []string) {
	ids = make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	values = make([]string, len(ids))
	for i, id := range ids {
		values[i] = m[id]
	}
	return ids, values
}
