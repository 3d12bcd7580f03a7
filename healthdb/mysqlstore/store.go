// Package mysqlstore is the healthdb store on MySQL and MariaDB, in the
// schema Octavia's own alembic migrations build there
// (`octavia-db-manage upgrade head`). It implements
// healthdb.UpdaterStore and healthdb.WatcherStore with database/sql and
// go-sql-driver/mysql, with the PostgreSQL store's semantics
// (healthdb/pgstore), except:
//
//   - No topology cache: its check reads every row's physical version
//     (PostgreSQL's ctid and xmin), which MySQL does not expose; a row
//     "version" made of Octavia's updated_at would miss the updates that
//     do not set it. The store reads topologies afresh every batch
//     ([health_manager] topology_cache_seconds is ignored on MySQL).
//   - An amphora id matches its row by the column's collation, as in
//     Octavia's own lookups (case-insensitive in Octavia's schema), where
//     PostgreSQL matches byte for byte.
//   - An ambiguous claim COMMIT is resolved with a key row of ours
//     (ovh_claim_key, migrations/sql/mysql), written in the claim's
//     transaction, instead of txid_status().
//
// Times are the database's clock as naive UTC (UTC_TIMESTAMP(6)), which
// Octavia's DATETIME columns store to the second, as they store the times
// Octavia writes. Transactions run at READ COMMITTED, so that the
// subqueries of an UPDATE do not lock the rows they read.
//
// Deadlocks, lock wait timeouts and Galera's certification failures
// (error 1213 at COMMIT) are retried a few times; a batch that still fails
// is a failed write, which the caller counts and never turns into a
// failover.
package mysqlstore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/octavia-vpp/health/healthdb"
)

// Store reads amphora topologies and writes status decisions in Octavia's
// schema on MySQL. It is safe for concurrent use.
type Store struct {
	db *sql.DB
	// managerID names this process's rows in ovh_claim_key.
	managerID string
	claimSeq  atomic.Int64

	// beforeCommit, when set (tests), runs just before COMMIT; an error
	// from it is returned as COMMIT's, after a rollback.
	beforeCommit func() error
	// afterCommit, when set (tests), replaces COMMIT's result.
	afterCommit func(error) error
}

var (
	_ healthdb.UpdaterStore = (*Store)(nil)
	_ healthdb.WatcherStore = (*Store)(nil)
)

// Config returns a copy of cfg with what the store needs of its
// connections: times parsed, as UTC; parameters interpolated by the
// driver, so that a statement is one round trip however many ids it
// carries; oslo.db's sql_mode.
func Config(cfg *mysql.Config) *mysql.Config {
	c := cfg.Clone()
	c.ParseTime = true
	c.Loc = time.UTC
	c.InterpolateParams = true
	// oslo.db's default [database] mysql_sql_mode, which Octavia's own
	// sessions run with: values a column cannot hold are errors, not
	// silently clipped.
	if c.Params == nil {
		c.Params = map[string]string{}
	}
	if _, set := c.Params["sql_mode"]; !set {
		c.Params["sql_mode"] = "'TRADITIONAL'"
	}
	// The driver would print connection errors to stderr by itself; they
	// are returned, and logged by the caller with their context.
	c.Logger = quietLogger{}
	return c
}

type quietLogger struct{}

func (quietLogger) Print(...any) {}

// OpenDB opens a connection pool for the store (see Config). It does not
// connect.
func OpenDB(cfg *mysql.Config) (*sql.DB, error) {
	c, err := mysql.NewConnector(Config(cfg))
	if err != nil {
		return nil, errors.New("open database: invalid MySQL configuration")
	}
	return sql.OpenDB(c), nil
}

// New wraps a connection pool opened with OpenDB (or with Config's
// settings).
func New(db *sql.DB) *Store {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return &Store{db: db, managerID: hex.EncodeToString(b[:])}
}

// DB is the store's connection pool.
func (s *Store) DB() *sql.DB { return s.db }

// dbNow is the database server's clock as naive UTC, the form of
// Octavia's DATETIME columns (docs/failover.md, "One clock").
const dbNow = `UTC_TIMESTAMP(6)`

// placeholders returns "?, ?, ?" for n values.
func placeholders(n int) string {
	if n == 0 {
		return ""
	}
	return strings.Repeat("?, ", n-1) + "?"
}

func anys(ids []string) []any {
	out := make([]any, len(ids))
	for i, id := range ids {
		out[i] = id
	}
	return out
}

const statusDeleted = "DELETED"

// LoadTopologies reads the topologies of the given amphorae: the amphorae
// with their load balancers, then the listeners, pools and members of the
// live load balancers found. Amphorae without a row are absent from the
// result; amphorae of one load balancer share one *LoadBalancer. Rows are
// sorted in Go, by byte order, whatever the collation.
func (s *Store) LoadTopologies(ctx context.Context, amphoraIDs []string) (map[string]*healthdb.Topology, error) {
	topos := make(map[string]*healthdb.Topology, len(amphoraIDs))
	amphoraIDs = storableIDs(amphoraIDs)
	if len(amphoraIDs) == 0 {
		return topos, nil
	}
	lbs := map[string]*healthdb.LoadBalancer{}
	var lbIDs []string
	// Each id asked for is matched as Octavia's own lookup matches it,
	// by the column's collation (case-insensitive in Octavia's schema),
	// and its topology filed under the id asked for.
	asked := strings.Repeat("SELECT ? AS id UNION ALL ", len(amphoraIDs)-1) + "SELECT ? AS id"
	err := s.query(ctx, `
SELECT r.id, a.compute_id, a.status, lb.id, lb.enabled, lb.provisioning_status, lb.operating_status
FROM (`+asked+`) r JOIN amphora a ON a.id = r.id
LEFT JOIN load_balancer lb ON lb.id = a.load_balancer_id`, anys(amphoraIDs), func(rows *sql.Rows) error {
		var id, status string
		var computeID, lbID, lbProv, lbOp sql.NullString
		var lbEnabled sql.NullBool
		if err := rows.Scan(&id, &computeID, &status, &lbID, &lbEnabled, &lbProv, &lbOp); err != nil {
			return err
		}
		t := &healthdb.Topology{AmphoraID: id, AmphoraExists: true, ComputeID: computeID.String}
		// get_lb_for_health_update's inner join and filters: a live
		// amphora on a load balancer that is not DELETED.
		if status != statusDeleted && lbID.Valid && lbProv.String != statusDeleted {
			lb := lbs[lbID.String]
			if lb == nil {
				lb = &healthdb.LoadBalancer{ID: lbID.String, Enabled: lbEnabled.Bool,
					ProvisioningStatus: lbProv.String, OperatingStatus: lbOp.String}
				lbs[lbID.String] = lb
				lbIDs = append(lbIDs, lbID.String)
			}
			t.LB = lb
		}
		topos[id] = t
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load %d amphorae: %w", len(amphoraIDs), err)
	}
	if len(lbIDs) == 0 {
		return topos, nil
	}
	inLBs := placeholders(len(lbIDs))
	lbArgs := anys(lbIDs)
	// The versionless-UDP rule needs, per UDP listener, whether its
	// default pool has an enabled member; other protocols never ask.
	if err := s.query(ctx, `
SELECT l.load_balancer_id, l.id, l.operating_status, l.protocol, l.enabled,
       l.protocol = 'UDP' AND EXISTS (SELECT 1 FROM member m WHERE m.pool_id = l.default_pool_id AND m.enabled)
FROM listener l WHERE l.load_balancer_id IN (`+inLBs+`)`, lbArgs, func(rows *sql.Rows) error {
		var lbID string
		var l healthdb.Listener
		var hasEnabled sql.NullBool
		if err := rows.Scan(&lbID, &l.ID, &l.OperatingStatus, &l.Protocol, &l.Enabled, &hasEnabled); err != nil {
			return err
		}
		l.DefaultPoolHasEnabledMember = hasEnabled.Bool
		if lb := lbs[lbID]; lb != nil {
			lb.Listeners = append(lb.Listeners, l)
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("load listeners of %d load balancers: %w", len(lbs), err)
	}
	var pools []healthdb.Pool
	var poolLB []string
	if err := s.query(ctx, `
SELECT p.load_balancer_id, p.id, p.operating_status FROM pool p
WHERE p.load_balancer_id IN (`+inLBs+`)`, lbArgs, func(rows *sql.Rows) error {
		var lbID string
		var p healthdb.Pool
		if err := rows.Scan(&lbID, &p.ID, &p.OperatingStatus); err != nil {
			return err
		}
		pools = append(pools, p)
		poolLB = append(poolLB, lbID)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("load pools of %d load balancers: %w", len(lbs), err)
	}
	poolByID := make(map[string]*healthdb.Pool, len(pools))
	for i := range pools {
		poolByID[pools[i].ID] = &pools[i]
	}
	if err := s.query(ctx, `
SELECT m.pool_id, m.id, m.operating_status FROM pool p JOIN member m ON m.pool_id = p.id
WHERE p.load_balancer_id IN (`+inLBs+`)`, lbArgs, func(rows *sql.Rows) error {
		var poolID string
		var m healthdb.Member
		if err := rows.Scan(&poolID, &m.ID, &m.OperatingStatus); err != nil {
			return err
		}
		if p := poolByID[poolID]; p != nil {
			p.Members = append(p.Members, m)
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("load members of %d load balancers: %w", len(lbs), err)
	}
	for i := range pools {
		if lb := lbs[poolLB[i]]; lb != nil {
			p := &pools[i]
			sort.Slice(p.Members, func(a, b int) bool { return p.Members[a].ID < p.Members[b].ID })
			lb.Pools = append(lb.Pools, *p)
		}
	}
	for _, lb := range lbs {
		sort.Slice(lb.Listeners, func(a, b int) bool { return lb.Listeners[a].ID < lb.Listeners[b].ID })
		sort.Slice(lb.Pools, func(a, b int) bool { return lb.Pools[a].ID < lb.Pools[b].ID })
	}
	return topos, nil
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func (s *Store) query(ctx context.Context, q string, args []any, scan func(*sql.Rows) error) error {
	return queryOn(ctx, s.db, q, args, scan)
}

func queryOn(ctx context.Context, db querier, q string, args []any, scan func(*sql.Rows) error) error {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// maxApplyAttempts bounds retries of a transaction that lost a deadlock,
// a lock wait, or Galera's certification.
const maxApplyAttempts = 3

// Apply writes a batch in one transaction. amphora_health's last_update
// and every changed row's updated_at are the database's clock, as naive
// UTC, never this process's. Rows are written in id order, so that
// managers writing the same rows do not deadlock.
func (s *Store) Apply(ctx context.Context, w *healthdb.Writes) error {
	if w.Empty() {
		return nil
	}
	health := storableIDs(append([]string(nil), w.Health...))
	sort.Strings(health)
	health = dedupeSorted(health)
	type stmt struct {
		sql  string
		args []any
	}
	var stmts []stmt
	if len(health) > 0 {
		var b strings.Builder
		b.WriteString("INSERT INTO amphora_health (amphora_id, last_update, busy) VALUES ")
		for i := range health {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString("(?, " + dbNow + ", 0)")
		}
		// busy is left as it is on an existing row.
		b.WriteString(" ON DUPLICATE KEY UPDATE last_update = VALUES(last_update)")
		stmts = append(stmts, stmt{b.String(), anys(health)})
	}
	for _, u := range []struct {
		table   string
		changes map[string]string
	}{
		{"load_balancer", w.LoadBalancers},
		{"listener", w.Listeners},
		{"pool", w.Pools},
		{"member", w.Members},
	} {
		if len(u.changes) == 0 {
			continue
		}
		if q, args := updateStatus(u.table, u.changes); q != "" {
			stmts = append(stmts, stmt{q, args})
		}
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		for _, st := range stmts {
			if _, err := tx.ExecContext(ctx, st.sql, st.args...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("apply %d health rows and status changes: %w", len(health), err)
	}
	return nil
}

// updateStatus sets operating_status and updated_at, only on rows whose
// status really changes, in id order. The table name comes from a fixed
// list. It returns "" when there is nothing to update.
func updateStatus(table string, changes map[string]string) (string, []any) {
	ids := make([]string, 0, len(changes))
	for id := range changes {
		if strings.IndexByte(id, 0) < 0 {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return "", nil
	}
	sort.Strings(ids)
	var cases strings.Builder
	args := make([]any, 0, 5*len(ids))
	cases.WriteString("CASE id")
	for _, id := range ids {
		cases.WriteString(" WHEN ? THEN ?")
		args = append(args, id, changes[id])
	}
	cases.WriteString(" END")
	// The CASE appears twice; its arguments are sent twice.
	all := append(append([]any(nil), args...), args...)
	for _, id := range ids {
		all = append(all, id)
	}
	// FORCE INDEX: see unclaimSQL; a full scan would wait on rows that
	// Octavia's API or worker holds, which Octavia's per-row updates never
	// touch.
	q := `UPDATE ` + table + ` FORCE INDEX (PRIMARY) SET operating_status = ` + cases.String() + `, updated_at = ` + dbNow + `
WHERE operating_status <> ` + cases.String() + ` AND id IN (` + placeholders(len(ids)) + `)
ORDER BY id`
	return q, all
}

// inTx runs fn in a READ COMMITTED transaction and commits it, retrying
// the whole transaction when it lost a deadlock, a lock wait or Galera's
// certification.
func (s *Store) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	var err error
	for attempt := 1; attempt <= maxApplyAttempts; attempt++ {
		err = s.txOnce(ctx, fn)
		if err == nil || !retryable(err) {
			return err
		}
	}
	return err
}

func (s *Store) txOnce(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return s.commit(tx)
}

func (s *Store) commit(tx *sql.Tx) error {
	if s.beforeCommit != nil {
		if err := s.beforeCommit(); err != nil {
			_ = tx.Rollback()
			return err
		}
	}
	err := tx.Commit()
	if s.afterCommit != nil {
		err = s.afterCommit(err)
	}
	return err
}

// MySQL error numbers that mean "the transaction was rolled back; run it
// again".
const (
	errLockWaitTimeout = 1205 // ER_LOCK_WAIT_TIMEOUT
	errDeadlock        = 1213 // ER_LOCK_DEADLOCK; also Galera's certification failure
	errNoSuchTable     = 1146 // ER_NO_SUCH_TABLE
)

func retryable(err error) bool {
	var my *mysql.MySQLError
	return errors.As(err, &my) && (my.Number == errDeadlock || my.Number == errLockWaitTimeout)
}

// storableIDs drops the ids that contain NUL, which no id of Octavia's
// holds, as the PostgreSQL store does (it cannot send them), so that both
// stores treat such a heartbeat alike. The input is not modified.
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

func dedupeSorted(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}
