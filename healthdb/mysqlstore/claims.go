package mysqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/octavia-vpp/health/healthdb"
)

// The stale-amphora statements follow Octavia's get_stale_amphora, as the
// PostgreSQL store's do (docs/failover.md, "Differences from Octavia
// 11"): candidates are locked with SKIP LOCKED (MariaDB >= 10.6, MySQL >=
// 8.0), several are claimed at once, and every time is the database's
// clock. The expiry takes the heartbeat timeout in microseconds.
const (
	expiry    = `(` + dbNow + ` - INTERVAL ? MICROSECOND)`
	staleRows = `SELECT amphora_id FROM amphora_health WHERE busy = 0 AND last_update < ` + expiry

	// Amphorae are locked in id order, so that managers running the same
	// statement do not deadlock.
	unstopRecovered = `
UPDATE amphora SET updated_at = ` + dbNow + `, status = 'ALLOCATED'
WHERE status = 'FAILOVER_STOPPED' AND id IN (
    SELECT amphora_id FROM amphora_health WHERE busy = 0 AND last_update >= ` + expiry + `)
ORDER BY id`

	countStale = `SELECT COUNT(*) FROM amphora_health WHERE busy = 0 AND last_update < ` + expiry

	// The amphorae the breaker stops, locked; the statuses they had tell
	// how many are newly stopped (those already FAILOVER_STOPPED are
	// marked again, as in Octavia).
	lockStale = `
SELECT id, status FROM amphora
WHERE status NOT IN ('DELETED', 'PENDING_DELETE') AND id IN (` + staleRows + `)
ORDER BY id FOR UPDATE`

	// Statements that name rows by id read them through the primary key
	// (FORCE INDEX): given an id list that covers most of a small table,
	// and an ORDER BY, MariaDB otherwise scans the whole table and waits
	// on the row lock of any row, named or not. A claim then hung behind a
	// health write holding one amphora's row, and once it was let go
	// claimed the amphorae whose heartbeats had waited behind it.
	unclaimSQL = `UPDATE amphora_health FORCE INDEX (PRIMARY) SET busy = 0 WHERE busy = 1 AND amphora_id IN (`

	candidatesExist = `SELECT EXISTS (SELECT 1 FROM amphora_health h JOIN amphora a ON a.id = h.amphora_id
    WHERE a.status IN ('ALLOCATED', 'FAILOVER_STOPPED'))`

	loadBalancerOfClaim = `
SELECT lb.id, lb.provisioning_status
FROM amphora_health h
JOIN amphora a ON a.id = h.amphora_id
JOIN load_balancer lb ON lb.id = a.load_balancer_id
WHERE h.amphora_id = ? AND h.busy = 1 AND a.status IN ('ALLOCATED', 'FAILOVER_STOPPED')`
)

// claimSQL picks up to limit candidates, not among exclude, and locks
// them, skipping those another transaction holds; the row locks re-check
// busy = 0 on the newest row version, so two managers never claim one
// amphora.
func claimSQL(exclude int) string {
	q := `
SELECT h.amphora_id, h.last_update, a.load_balancer_id
FROM amphora_health h JOIN amphora a ON a.id = h.amphora_id
WHERE h.busy = 0 AND h.last_update < ` + expiry + `
  AND a.status IN ('ALLOCATED', 'FAILOVER_STOPPED')`
	if exclude > 0 {
		q += ` AND h.amphora_id NOT IN (` + placeholders(exclude) + `)`
	}
	return q + `
ORDER BY RAND() LIMIT ?
FOR UPDATE SKIP LOCKED`
}

func micros(d time.Duration) int64 { return d.Microseconds() }

// ClaimStale runs get_stale_amphora's steps in one short transaction:
// un-stop recovered amphorae, count the stale ones, apply the circuit
// breaker, and claim (busy = 1) up to Limit candidates in ALLOCATED or
// FAILOVER_STOPPED.
func (s *Store) ClaimStale(ctx context.Context, req healthdb.ClaimRequest) (healthdb.ClaimResult, error) {
	timeout := micros(req.HeartbeatTimeout)
	var res healthdb.ClaimResult
	var err error
	for attempt := 1; attempt <= maxApplyAttempts; attempt++ {
		res = healthdb.ClaimResult{}
		err = s.claimTx(ctx, func(tx *sql.Tx) error {
			r, err := tx.ExecContext(ctx, unstopRecovered, timeout)
			if err != nil {
				return fmt.Errorf("un-stop recovered amphorae: %w", err)
			}
			n, _ := r.RowsAffected()
			res.Recovered = int(n)
			if err := tx.QueryRowContext(ctx, countStale, timeout).Scan(&res.Stale); err != nil {
				return fmt.Errorf("count stale amphorae: %w", err)
			}
			if req.ThresholdSet && res.Stale >= req.Threshold {
				res.BreakerOpen = true
				return s.stopStale(ctx, tx, timeout, &res)
			}
			if req.Limit <= 0 {
				return nil
			}
			args := []any{timeout}
			args = append(args, anys(req.Exclude)...)
			args = append(args, req.Limit)
			if err := queryOn(ctx, tx, claimSQL(len(req.Exclude)), args, func(rows *sql.Rows) error {
				var c healthdb.Claimed
				var lb sql.NullString
				if err := rows.Scan(&c.AmphoraID, &c.LastUpdate, &lb); err != nil {
					return err
				}
				c.LoadBalancerID = lb.String
				res.Claimed = append(res.Claimed, c)
				return nil
			}); err != nil {
				return fmt.Errorf("claim stale amphorae: %w", err)
			}
			if len(res.Claimed) == 0 {
				return nil
			}
			ids := make([]string, len(res.Claimed))
			for i, c := range res.Claimed {
				ids[i] = c.AmphoraID
			}
			sort.Strings(ids)
			if _, err := tx.ExecContext(ctx, `UPDATE amphora_health FORCE INDEX (PRIMARY) SET busy = 1 WHERE amphora_id IN (`+
				placeholders(len(ids))+`) ORDER BY amphora_id`, anys(ids)...); err != nil {
				return fmt.Errorf("claim stale amphorae: %w", err)
			}
			return nil
		}, func() []healthdb.Claimed { return res.Claimed })
		if err == nil || !retryable(err) {
			break
		}
	}
	if err != nil {
		return healthdb.ClaimResult{}, err
	}
	sort.Slice(res.Claimed, func(i, j int) bool { return res.Claimed[i].AmphoraID < res.Claimed[j].AmphoraID })
	return res, nil
}

// stopStale marks the stale amphorae FAILOVER_STOPPED (the breaker is
// open), counting those newly stopped.
func (s *Store) stopStale(ctx context.Context, tx *sql.Tx, timeout int64, res *healthdb.ClaimResult) error {
	var ids []string
	if err := queryOn(ctx, tx, lockStale, []any{timeout}, func(rows *sql.Rows) error {
		var id, was string
		if err := rows.Scan(&id, &was); err != nil {
			return err
		}
		ids = append(ids, id)
		if was != "FAILOVER_STOPPED" {
			res.Stopped++
		}
		return nil
	}); err != nil {
		return fmt.Errorf("mark stale amphorae FAILOVER_STOPPED: %w", err)
	}
	const chunk = 1000
	for len(ids) > 0 {
		n := min(chunk, len(ids))
		if _, err := tx.ExecContext(ctx, `UPDATE amphora FORCE INDEX (PRIMARY) SET updated_at = `+dbNow+`, status = 'FAILOVER_STOPPED'
WHERE id IN (`+placeholders(n)+`)`, anys(ids[:n])...); err != nil {
			return fmt.Errorf("mark stale amphorae FAILOVER_STOPPED: %w", err)
		}
		ids = ids[n:]
	}
	return nil
}

// Unclaim sets busy = 0 again on the given amphorae.
func (s *Store) Unclaim(ctx context.Context, amphoraIDs []string) error {
	ids := storableIDs(append([]string(nil), amphoraIDs...))
	if len(ids) == 0 {
		return nil
	}
	sort.Strings(ids)
	if _, err := s.db.ExecContext(ctx, unclaimSQL+placeholders(len(ids))+`) ORDER BY amphora_id`, anys(ids)...); err != nil {
		return fmt.Errorf("un-claim %d amphorae: %w", len(ids), err)
	}
	return nil
}

// CandidatesExist reports whether any amphora in ALLOCATED or
// FAILOVER_STOPPED has a health row.
func (s *Store) CandidatesExist(ctx context.Context) (bool, error) {
	var ok bool
	if err := s.db.QueryRowContext(ctx, candidatesExist).Scan(&ok); err != nil {
		return false, fmt.Errorf("look for amphorae that should send heartbeats: %w", err)
	}
	return ok, nil
}

// LoadBalancerOfClaim returns the id and provisioning_status of the load
// balancer of a claimed amphora; ok is false when the amphora is no longer
// claimed, no longer a candidate, or on no load balancer.
func (s *Store) LoadBalancerOfClaim(ctx context.Context, amphoraID string) (lbID, provisioningStatus string, ok bool, err error) {
	err = s.db.QueryRowContext(ctx, loadBalancerOfClaim, amphoraID).Scan(&lbID, &provisioningStatus)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", false, nil
	}
	if err != nil {
		return "", "", false, fmt.Errorf("read the load balancer of amphora %s: %w", amphoraID, err)
	}
	return lbID, provisioningStatus, true, nil
}

// claimKeysKept is how many of its claim keys a manager keeps; a claim
// whose COMMIT outcome stays unknown for longer than this many later
// claims is released as unknown.
const claimKeysKept = 1000

// claimTx runs fn in a transaction and commits it, telling an ambiguous
// COMMIT apart: when fn claimed amphorae, a key row (this manager, a new
// sequence number) is written in the same transaction, and a COMMIT that
// fails without an answer from the server is returned as a
// *healthdb.ClaimCommitUnknownError whose TxID is that sequence number
// (-1 when the key table is missing: the outcome cannot be told).
func (s *Store) claimTx(ctx context.Context, fn func(*sql.Tx) error, claimed func() []healthdb.Claimed) error {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	ids := make([]string, 0, len(claimed()))
	for _, c := range claimed() {
		ids = append(ids, c.AmphoraID)
	}
	key := int64(-1)
	if len(ids) > 0 {
		seq := s.claimSeq.Add(1)
		_, err := tx.ExecContext(ctx, `INSERT INTO ovh_claim_key (manager_id, seq, created_at) VALUES (?, ?, `+dbNow+`)`,
			s.managerID, seq)
		if err == nil {
			key = seq
			_, err = tx.ExecContext(ctx, `DELETE FROM ovh_claim_key
WHERE (manager_id = ? AND seq <= ?) OR created_at < `+dbNow+` - INTERVAL 7 DAY`, s.managerID, seq-claimKeysKept)
		}
		var my *mysql.MySQLError
		if err != nil && !(errors.As(err, &my) && my.Number == errNoSuchTable) {
			_ = tx.Rollback()
			return fmt.Errorf("claim stale amphorae: write the claim key: %w", err)
		}
		// A missing key table (migrate not run) costs only the
		// resolution of an ambiguous COMMIT, never the claim: a
		// statement's error in MySQL leaves the transaction going.
	}
	err = s.commit(tx)
	var my *mysql.MySQLError
	if err == nil || len(ids) == 0 || errors.As(err, &my) {
		// An error the server sent means it rolled back.
		return err
	}
	return &healthdb.ClaimCommitUnknownError{TxID: key, AmphoraIDs: ids, Err: err}
}

// TxStatus tells whether the claim transaction with key txID committed:
// its key row is there or not. The read waits for a transaction still
// holding the row (one whose COMMIT is in flight), so "not there" means
// it did not commit.
func (s *Store) TxStatus(ctx context.Context, txID int64) (string, error) {
	if txID < 0 {
		return healthdb.TxUnknown, nil
	}
	if txID <= s.claimSeq.Load()-claimKeysKept {
		return healthdb.TxUnknown, nil
	}
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if err != nil {
		return "", fmt.Errorf("status of claim %d: %w", txID, err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only
	var one int
	err = tx.QueryRowContext(ctx, `SELECT 1 FROM ovh_claim_key WHERE manager_id = ? AND seq = ? LOCK IN SHARE MODE`,
		s.managerID, txID).Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return healthdb.TxAborted, nil
	case err != nil:
		return "", fmt.Errorf("status of claim %s: %w", strconv.FormatInt(txID, 10), err)
	}
	return healthdb.TxCommitted, nil
}
