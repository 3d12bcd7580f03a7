package pgstore

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/octavia-vpp/health/healthdb"
)

// The stale-amphora statements follow Octavia's get_stale_amphora
// (octavia/db/repositories.py; docs/failover.md, "Differences from
// Octavia 11"), with two changes: the candidates are locked with SKIP
// LOCKED, so that a heartbeat write or another health manager never waits
// for them, and several are claimed at once. $1 is heartbeat_timeout; the expiry is
// computed, and updated_at written, on the database's clock (dbNow), the
// clock last_update was written with, never this process's.
const (
	expiry    = `(` + dbNow + ` - $1::interval)`
	staleRows = `SELECT amphora_id FROM amphora_health WHERE busy = false AND last_update < ` + expiry

	// Amphorae are locked in id order before they are updated, so that
	// health managers running the same statement do not deadlock.
	unstopRecovered = `
UPDATE amphora SET updated_at = ` + dbNow + `, status = 'ALLOCATED'
WHERE id IN (SELECT id FROM amphora WHERE status = 'FAILOVER_STOPPED' AND id IN (
        SELECT amphora_id FROM amphora_health WHERE busy = false AND last_update >= ` + expiry + `)
    ORDER BY id FOR UPDATE)`

	countStale = `SELECT count(*) FROM (` + staleRows + `) AS stale`

	// Amphorae already FAILOVER_STOPPED are marked again (updated_at), as
	// in Octavia; the count returned is of those newly stopped.
	stopStale = `
WITH s AS (SELECT id, status AS was FROM amphora
    WHERE status NOT IN ('DELETED', 'PENDING_DELETE') AND id IN (` + staleRows + `)
    ORDER BY id FOR UPDATE)
UPDATE amphora a SET updated_at = ` + dbNow + `, status = 'FAILOVER_STOPPED' FROM s
WHERE a.id = s.id
RETURNING s.was <> 'FAILOVER_STOPPED'`

	// $2 lists amphorae to leave alone (backing off), $3 is the most to
	// claim. Row locks re-check busy = false on the newest row version, so
	// two managers never both claim one amphora.
	claimStale = `
WITH c AS (
    SELECT h.amphora_id FROM amphora_health h
    WHERE h.busy = false AND h.last_update < ` + expiry + `
      AND h.amphora_id IN (SELECT id FROM amphora WHERE status IN ('ALLOCATED', 'FAILOVER_STOPPED'))
      AND NOT (h.amphora_id = ANY($2::varchar[]))
    ORDER BY random() LIMIT $3
    FOR UPDATE OF h SKIP LOCKED)
UPDATE amphora_health h SET busy = true FROM c
WHERE h.amphora_id = c.amphora_id
RETURNING h.amphora_id, h.last_update, (SELECT a.load_balancer_id FROM amphora a WHERE a.id = h.amphora_id)`

	unclaim = `UPDATE amphora_health SET busy = false WHERE amphora_id = ANY($1::varchar[]) AND busy`

	// candidatesExist: is there any amphora that could be failed over, i.e.
	// one that should be sending heartbeats?
	candidatesExist = `SELECT EXISTS (SELECT 1 FROM amphora_health h JOIN amphora a ON a.id = h.amphora_id
    WHERE a.status IN ('ALLOCATED', 'FAILOVER_STOPPED'))`
)

// ClaimStale runs get_stale_amphora's steps in one short transaction:
// un-stop recovered amphorae, count the stale ones, apply the circuit
// breaker, and claim (busy = true) up to Limit candidates in ALLOCATED or
// FAILOVER_STOPPED. It never waits for a row another transaction holds.
func (s *Store) ClaimStale(ctx context.Context, req healthdb.ClaimRequest) (healthdb.ClaimResult, error) {
	timeout := req.HeartbeatTimeout
	exclude := req.Exclude
	if exclude == nil {
		exclude = []string{}
	}
	var res healthdb.ClaimResult
	var err error
	for attempt := 1; attempt <= maxApplyAttempts; attempt++ {
		res = healthdb.ClaimResult{}
		err = s.claimTx(ctx, func(tx pgx.Tx) error {
			tag, err := tx.Exec(ctx, unstopRecovered, timeout)
			if err != nil {
				return fmt.Errorf("un-stop recovered amphorae: %w", err)
			}
			res.Recovered = int(tag.RowsAffected())
			if err := tx.QueryRow(ctx, countStale, timeout).Scan(&res.Stale); err != nil {
				return fmt.Errorf("count stale amphorae: %w", err)
			}
			if req.ThresholdSet && res.Stale >= req.Threshold {
				res.BreakerOpen = true
				rows, err := tx.Query(ctx, stopStale, timeout)
				if err != nil {
					return fmt.Errorf("mark stale amphorae FAILOVER_STOPPED: %w", err)
				}
				newly, err := pgx.CollectRows(rows, pgx.RowTo[bool])
				if err != nil {
					return fmt.Errorf("mark stale amphorae FAILOVER_STOPPED: %w", err)
				}
				for _, n := range newly {
					if n {
						res.Stopped++
					}
				}
				return nil
			}
			if req.Limit <= 0 {
				return nil
			}
			rows, err := tx.Query(ctx, claimStale, timeout, exclude, req.Limit)
			if err != nil {
				return fmt.Errorf("claim stale amphorae: %w", err)
			}
			defer rows.Close()
			for rows.Next() {
				var c healthdb.Claimed
				var lb *string
				if err := rows.Scan(&c.AmphoraID, &c.LastUpdate, &lb); err != nil {
					return fmt.Errorf("claim stale amphorae: %w", err)
				}
				if lb != nil {
					c.LoadBalancerID = *lb
				}
				res.Claimed = append(res.Claimed, c)
			}
			if err := rows.Err(); err != nil {
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

// Unclaim sets busy = false again on the given amphorae, so that a later
// cycle (of any health manager) may claim them.
func (s *Store) Unclaim(ctx context.Context, amphoraIDs []string) error {
	if len(amphoraIDs) == 0 {
		return nil
	}
	ids := append([]string(nil), amphoraIDs...)
	sort.Strings(ids)
	if _, err := s.pool.Exec(ctx, unclaim, ids); err != nil {
		return fmt.Errorf("un-claim %d amphorae: %w", len(ids), err)
	}
	return nil
}

// CandidatesExist reports whether any amphora in ALLOCATED or
// FAILOVER_STOPPED has a health row, i.e. whether heartbeats are expected.
func (s *Store) CandidatesExist(ctx context.Context) (bool, error) {
	var ok bool
	if err := s.pool.QueryRow(ctx, candidatesExist).Scan(&ok); err != nil {
		return false, fmt.Errorf("look for amphorae that should send heartbeats: %w", err)
	}
	return ok, nil
}

// claimTx runs fn in a transaction and commits it, as pgx.BeginFunc does,
// but tells an ambiguous COMMIT apart: when fn claimed amphorae, the
// transaction id is read before COMMIT, and a COMMIT that fails without an
// answer from the server is returned as a *healthdb.ClaimCommitUnknownError.
func (s *Store) claimTx(ctx context.Context, fn func(pgx.Tx) error, claimed func() []healthdb.Claimed) (err error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback(context.WithoutCancel(ctx)) // a no-op once COMMIT was sent
		}
	}()
	if err := fn(tx); err != nil {
		return err
	}
	var txID int64
	ids := make([]string, 0, len(claimed()))
	for _, c := range claimed() {
		ids = append(ids, c.AmphoraID)
	}
	if len(ids) > 0 {
		if err := tx.QueryRow(ctx, `SELECT txid_current()`).Scan(&txID); err != nil {
			return fmt.Errorf("claim stale amphorae: %w", err)
		}
	}
	err = tx.Commit(ctx)
	var pgErr *pgconn.PgError
	if err == nil || len(ids) == 0 || errors.As(err, &pgErr) {
		// An error the server sent means it rolled back.
		return err
	}
	return &healthdb.ClaimCommitUnknownError{TxID: txID, AmphoraIDs: ids, Err: err}
}

// TxStatus asks the server what became of a transaction (txid_status()).
func (s *Store) TxStatus(ctx context.Context, txID int64) (string, error) {
	var status *string
	if err := s.pool.QueryRow(ctx, `SELECT txid_status($1)`, txID).Scan(&status); err != nil {
		return "", fmt.Errorf("status of transaction %d: %w", txID, err)
	}
	if status == nil {
		return healthdb.TxUnknown, nil
	}
	return *status, nil
}

// loadBalancerOfClaim reads the load balancer of an amphora this watcher
// still holds: claimed (busy), still a failover candidate, on a load
// balancer. No row means the claim is no longer what it was.
const loadBalancerOfClaim = `
SELECT lb.id, lb.provisioning_status
FROM amphora_health h
JOIN amphora a ON a.id = h.amphora_id
JOIN load_balancer lb ON lb.id = a.load_balancer_id
WHERE h.amphora_id = $1 AND h.busy AND a.status IN ('ALLOCATED', 'FAILOVER_STOPPED')`

// LoadBalancerOfClaim returns the id and provisioning_status of the load
// balancer of a claimed amphora; ok is false when the amphora is no longer
// claimed, no longer a candidate, or on no load balancer.
func (s *Store) LoadBalancerOfClaim(ctx context.Context, amphoraID string) (lbID, provisioningStatus string, ok bool, err error) {
	err = s.pool.QueryRow(ctx, loadBalancerOfClaim, amphoraID).Scan(&lbID, &provisioningStatus)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", "", false, nil
	}
	if err != nil {
		return "", "", false, fmt.Errorf("read the load balancer of amphora %s: %w", amphoraID, err)
	}
	return lbID, provisioningStatus, true, nil
}
