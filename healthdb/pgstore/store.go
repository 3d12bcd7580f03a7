package pgstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/octavia-vpp/health/healthdb"
)

// Store reads amphora topologies and writes status decisions in Octavia's
// schema on PostgreSQL. It implements healthdb.UpdaterStore and
// healthdb.WatcherStore, and healthdb.TopologyCacher. It is safe for
// concurrent use.
type Store struct {
	pool *pgxpool.Pool
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
SELECT a.id, a.compute_id, a.status, lb.id, lb.enabled, lb.provisioning_status, lb.operating_status,
       a.ctid, a.xmin, lb.ctid, lb.xmin
FROM ` + batchAmphorae + `
LEFT JOIN load_balancer lb ON lb.id = a.load_balancer_id`

	// batchLBs is the set of live load balancers the batch's amphorae
	// point at, found by selectAmphorae.
	batchLBs = `unnest($1::varchar[]) AS lbs(id)`

	// The versionless-UDP rule needs, per UDP listener, whether its default
	// pool has an enabled member; other protocols never ask.
	selectListeners = `
SELECT l.load_balancer_id, l.id, l.operating_status, l.protocol, l.enabled,
       l.protocol = 'UDP' AND EXISTS (
           SELECT 1 FROM member m WHERE m.pool_id = l.default_pool_id AND m.enabled),
       l.ctid, l.xmin
FROM ` + batchLBs + ` JOIN listener l ON l.load_balancer_id = lbs.id`

	selectPools = `
SELECT p.load_balancer_id, p.id, p.operating_status, p.ctid, p.xmin
FROM ` + batchLBs + ` JOIN pool p ON p.load_balancer_id = lbs.id`

	selectMembers = `
SELECT m.pool_id, m.id, m.operating_status, m.ctid, m.xmin
FROM ` + batchLBs + ` JOIN pool p ON p.load_balancer_id = lbs.id JOIN member m ON m.pool_id = p.id`
)

const statusDeleted = "DELETED"

// LoadTopologies reads the topologies of the given amphorae in one round
// trip. Amphorae without a row are absent from the result. Amphorae of the
// same load balancer (an ACTIVE_STANDBY pair) share one *LoadBalancer, so
// that changes applied in memory for one are seen by the other.
func (s *Store) LoadTopologies(ctx context.Context, amphoraIDs []string) (map[string]*healthdb.Topology, error) {
	topos, _, err := s.loadTopologies(ctx, amphoraIDs)
	return topos, err
}

// rowVersion names one version of one row: where it is stored (ctid) and
// the transaction that wrote it (xmin). An UPDATE or DELETE of the row ends
// that version: a later snapshot no longer sees a tuple with both.
type rowVersion struct {
	tid  pgtype.TID
	xmin uint32
}

// The tables of a load balancer's graph, in the order of lbVersions.rows.
const (
	tableLoadBalancer = iota
	tableListener
	tablePool
	tableMember
	numGraphTables
)

var graphTableNames = [numGraphTables]string{"load_balancer", "listener", "pool", "member"}

// topologyVersions records the row versions a read was made from.
type topologyVersions struct {
	amphorae map[string]rowVersion
	lbs      map[string]*lbVersions
}

// lbVersions lists the row versions of a load balancer's graph, per table.
type lbVersions struct {
	rows [numGraphTables][]rowVersion
}

func (s *Store) loadTopologies(ctx context.Context, amphoraIDs []string) (map[string]*healthdb.Topology, *topologyVersions, error) {
	topos := make(map[string]*healthdb.Topology, len(amphoraIDs))
	versions := &topologyVersions{amphorae: map[string]rowVersion{}, lbs: map[string]*lbVersions{}}
	amphoraIDs = storableIDs(amphoraIDs)
	if len(amphoraIDs) == 0 {
		return topos, versions, nil
	}
	lbs := map[string]*healthdb.LoadBalancer{}
	lbVersion := func(lbID string) *lbVersions {
		v := versions.lbs[lbID]
		if v == nil {
			v = &lbVersions{}
			versions.lbs[lbID] = v
		}
		return v
	}
	var lbIDs []string
	amphorae, err := s.pool.Query(ctx, selectAmphorae, amphoraIDs)
	if err != nil {
		return nil, nil, fmt.Errorf("load %d amphorae: %w", len(amphoraIDs), err)
	}
	if err := scanRows(amphorae, func(rows pgx.Rows) error {
		var id, status string
		var computeID, lbID, lbProv, lbOp *string
		var lbEnabled *bool
		var ampV, lbV rowVersion
		var lbXmin *uint32
		if err := rows.Scan(&id, &computeID, &status, &lbID, &lbEnabled, &lbProv, &lbOp,
			&ampV.tid, &ampV.xmin, &lbV.tid, &lbXmin); err != nil {
			return err
		}
		versions.amphorae[id] = ampV
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
				lbV.xmin = *lbXmin
				v := lbVersion(*lbID)
				v.rows[tableLoadBalancer] = append(v.rows[tableLoadBalancer], lbV)
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
		var v rowVersion
		if err := rows.Scan(&lbID, &l.ID, &l.OperatingStatus, &l.Protocol, &l.Enabled, &l.DefaultPoolHasEnabledMember,
			&v.tid, &v.xmin); err != nil {
			return err
		}
		if lb := lbs[lbID]; lb != nil {
			lb.Listeners = append(lb.Listeners, l)
			lv := lbVersion(lbID)
			lv.rows[tableListener] = append(lv.rows[tableListener], v)
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
		var v rowVersion
		raw, ok := rows.RawValues(), false
		if len(raw) == 5 && nonNull(raw) && rawBinary(rows, 3, 4) {
			lbID, p.ID, p.OperatingStatus = rawText(raw[0]), rawText(raw[1]), rawStatus(raw[2])
			v, ok = rawVersion(raw[3], raw[4])
		}
		if !ok {
			if err := rows.Scan(&lbID, &p.ID, &p.OperatingStatus, &v.tid, &v.xmin); err != nil {
				return err
			}
		}
		pools = append(pools, p)
		poolLB = append(poolLB, lbID)
		if lbs[lbID] != nil {
			lv := lbVersion(lbID)
			lv.rows[tablePool] = append(lv.rows[tablePool], v)
		}
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
	addMember := func(poolID []byte, m healthdb.Member, v rowVersion) {
		i, found := poolIndex[string(poolID)] // no allocation for the lookup
		if !found {
			return // a pool created after the pool read: not in this topology
		}
		pools[i].Members = append(pools[i].Members, m)
		if lv := versions.lbs[poolLB[i]]; lv != nil {
			lv.rows[tableMember] = append(lv.rows[tableMember], v)
		}
	}
	if err := eachRow(results, func(rows pgx.Rows) error {
		raw := rows.RawValues()
		if len(raw) == 5 && nonNull(raw) && rawBinary(rows, 3, 4) {
			if v, ok := rawVersion(raw[3], raw[4]); ok {
				addMember(raw[0], healthdb.Member{ID: rawText(raw[1]), OperatingStatus: rawStatus(raw[2])}, v)
				return nil
			}
		}
		var poolID string
		var m healthdb.Member
		var v rowVersion
		if err := rows.Scan(&poolID, &m.ID, &m.OperatingStatus, &v.tid, &v.xmin); err != nil {
			return err
		}
		addMember([]byte(poolID), m, v)
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
	batch := &pgx.Batch{}
	if len(health) > 0 {
		batch.Queue(upsertHealth, health)
	}
	for _, u := range []struct {
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
		batch.Queue(u.sql, ids, statuses)
	}
	var err error
	for attempt := 1; attempt <= maxApplyAttempts; attempt++ {
		err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			return tx.SendBatch(ctx, batch).Close()
		})
		if err == nil || !retryable(err) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("apply %d health rows and status changes: %w", len(health), err)
	}
	return nil
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
