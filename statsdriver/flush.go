package statsdriver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// FlushSink applies the Aggregator's flushes, each exactly once
// (docs/stats.md, "Exactly once").
//
// ApplyFlush either applies the whole batch, less the rows it refuses for
// good, and says so, or returns an error. An error wrapping
// ErrOutcomeUnknown means the batch may have been committed; the caller
// retries the same batch (same Seq, same rows, Retry set) until it gets
// an answer. Any other error means nothing of the batch was committed.
type FlushSink interface {
	ApplyFlush(ctx context.Context, b *FlushBatch) (FlushResult, error)
}

// FlushBatch is one flush of aggregated rows.
type FlushBatch struct {
	// Seq numbers one Aggregator's batches 1, 2, 3, ... in the order they
	// must be applied. A batch keeps its Seq when it is retried.
	Seq uint64
	// Replaces carry absolute values (heartbeats before version 3, with
	// any deltas after them folded in); Increments carry summed deltas.
	// A (listener, amphora) pair is in one of the two only.
	Replaces, Increments []ListenerStats
	// Retry is set once an attempt may have been committed.
	Retry bool
}

// FlushResult is what ApplyFlush did with a batch it has an answer for.
type FlushResult struct {
	// AlreadyApplied means an earlier attempt had committed the batch;
	// nothing was written this time.
	AlreadyApplied bool
	// Refused rows were not written, and never will be: the database
	// refuses them for what they hold (a negative counter, a listener
	// that no longer exists, a value out of range).
	Refused []RefusedRow
	// Unresolvable means a retried batch's key is gone (pruned after a
	// week without contact, or deleted by hand), so whether the earlier
	// attempt committed cannot be told. The batch was not written now: a
	// loss is preferred to a double count.
	Unresolvable bool
}

// RefusedRow is one row a flush refused for good.
type RefusedRow struct {
	ListenerID, AmphoraID string
	Reason                error
}

// ErrOutcomeUnknown wraps the error of a flush whose COMMIT may or may not
// have taken effect (the connection was lost while it was in flight).
var ErrOutcomeUnknown = errors.New("statistics flush outcome unknown")

// flushKeyRetention is how long a manager's flush key outlives its last
// flush. A manager that reaches the database again after longer than this
// with a flush in doubt drops that flush (FlushResult.Unresolvable).
const flushKeyRetention = 7 * 24 * time.Hour

// The flush key: one row per DB (so per manager process) in
// ovh_stats_flush, its seq the last batch committed. Advancing it is the
// first statement of every flush transaction; it only succeeds from the
// previous Seq, so a batch that committed once cannot commit again.
const (
	registerKey = `
INSERT INTO ovh_stats_flush (manager_id, seq, created_at, updated_at)
VALUES ($1, $2, now() AT TIME ZONE 'UTC', now() AT TIME ZONE 'UTC')
ON CONFLICT (manager_id) DO UPDATE SET seq = EXCLUDED.seq, updated_at = EXCLUDED.updated_at
WHERE ovh_stats_flush.seq < EXCLUDED.seq`
	pruneKeys = `
DELETE FROM ovh_stats_flush
WHERE updated_at < (now() AT TIME ZONE 'UTC') - make_interval(secs => $2) AND manager_id <> $1`
	advanceKey = `
UPDATE ovh_stats_flush SET seq = $2, updated_at = now() AT TIME ZONE 'UTC'
WHERE manager_id = $1 AND seq = $2 - 1`
	readKey = `SELECT seq FROM ovh_stats_flush WHERE manager_id = $1`
)

// errKeyLost: the manager's row in ovh_stats_flush is missing (or behind).
var errKeyLost = errors.New("flush key missing from ovh_stats_flush")

// errRefusedByDB: a statement of the one-shot attempt failed on some row's
// data; the batch is applied again row range by row range.
var errRefusedByDB = errors.New("the database refused a row")

// ManagerID is the key under which this DB records its flushes: the host
// name and a random part, new for every process, so that a restarted
// manager never meets its predecessor's keys.
func (d *DB) ManagerID() string { return d.managerID }

func newManagerID() string {
	var r [8]byte
	_, _ = rand.Read(r[:]) // never fails (crypto/rand)
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "manager"
	}
	host, _, _ = strings.Cut(host, ".")
	if len(host) > 40 {
		host = host[:40]
	}
	return host + "-" + hex.EncodeToString(r[:])
}

// ApplyFlush applies a batch in one transaction that also advances this
// manager's flush key to b.Seq. On a retry the key tells whether an
// earlier attempt committed.
func (d *DB) ApplyFlush(ctx context.Context, b *FlushBatch) (FlushResult, error) {
	if b.Seq == 0 {
		return FlushResult{}, errors.New("flush sequence numbers start at 1")
	}
	rows, refused := flushRows(b)
	for attempt := 0; ; attempt++ {
		if err := d.register(ctx, b.Seq-1); err != nil {
			return FlushResult{}, err
		}
		res, err := d.applyTx(ctx, b.Seq, rows, false)
		if errors.Is(err, errRefusedByDB) {
			res, err = d.applyTx(ctx, b.Seq, rows, true)
		}
		if !errors.Is(err, errKeyLost) {
			res.Refused = append(refused, res.Refused...)
			return res, err
		}
		d.mu.Lock()
		d.registered = false
		d.mu.Unlock()
		if b.Retry {
			return FlushResult{Unresolvable: true}, nil
		}
		// No attempt of this batch can have committed (none ended in
		// doubt): the key was pruned while this manager had nothing to
		// write. Register again and apply.
		if attempt > 0 {
			return FlushResult{}, err
		}
	}
}

// register makes sure this manager's key exists and is at least seq (it
// only moves forward), and prunes the keys of managers gone for
// flushKeyRetention. It runs once per process (and again if the key was
// lost), outside any flush.
func (d *DB) register(ctx context.Context, seq uint64) error {
	d.mu.Lock()
	done := d.registered
	d.mu.Unlock()
	if done {
		return nil
	}
	batch := &pgx.Batch{}
	batch.Queue(registerKey, d.managerID, int64(seq))
	batch.Queue(pruneKeys, d.managerID, flushKeyRetention.Seconds())
	if err := d.pool.SendBatch(ctx, batch).Close(); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42P01" { // undefined_table
			return fmt.Errorf("register statistics flush key: table ovh_stats_flush is missing "+
				"(run octavia-health-manager migrate; it creates only this table in an existing Octavia schema): %w", err)
		}
		return fmt.Errorf("register statistics flush key %s: %w", d.managerID, err)
	}
	d.mu.Lock()
	d.registered = true
	d.mu.Unlock()
	return nil
}

// flushRow is one row of a batch, with what it is.
type flushRow struct {
	s      *ListenerStats
	key    statsKey
	deltas bool
}

// flushRows lists a batch's rows, refusing at once those whose ids
// PostgreSQL cannot store.
func flushRows(b *FlushBatch) ([]flushRow, []RefusedRow) {
	rows := make([]flushRow, 0, len(b.Replaces)+len(b.Increments))
	var refused []RefusedRow
	for _, part := range []struct {
		stats  []ListenerStats
		deltas bool
	}{{b.Replaces, false}, {b.Increments, true}} {
		for i := range part.stats {
			s := &part.stats[i]
			k := statsKey{s.ListenerID, s.AmphoraID}
			if k.amphora == "" {
				k.amphora = k.listener // a provider driver's report
			}
			if err := storableID(k.listener); err != nil {
				refused = append(refused, RefusedRow{s.ListenerID, s.AmphoraID, fmt.Errorf("listener id: %w", err)})
				continue
			}
			if err := storableID(k.amphora); err != nil {
				refused = append(refused, RefusedRow{s.ListenerID, s.AmphoraID, fmt.Errorf("amphora id: %w", err)})
				continue
			}
			rows = append(rows, flushRow{s, k, part.deltas})
		}
	}
	return rows, refused
}

// applyTx runs one attempt. With bisect, rows are applied under savepoints
// and a range the database refuses is halved until the refused rows are
// found; without, they go in one pair of statements, and a refusal ends
// the attempt with errRefusedByDB.
func (d *DB) applyTx(ctx context.Context, seq uint64, rows []flushRow, bisect bool) (FlushResult, error) {
	tx, err := d.pool.Begin(ctx)
	if err != nil {
		return FlushResult{}, fmt.Errorf("begin statistics flush %d: %w", seq, err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit

	// Deferred constraints are checked per statement, so that a refusal
	// is met where it can be told apart rather than at COMMIT.
	batch := &pgx.Batch{}
	batch.Queue(`SET CONSTRAINTS ALL IMMEDIATE`)
	advanced := batch.Queue(advanceKey, d.managerID, int64(seq))
	var moved int64
	advanced.Exec(func(tag pgconn.CommandTag) error { moved = tag.RowsAffected(); return nil })
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		return FlushResult{}, fmt.Errorf("statistics flush %d: advance key: %w", seq, err)
	}
	if moved == 0 {
		var at int64
		err := tx.QueryRow(ctx, readKey, d.managerID).Scan(&at)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return FlushResult{}, errKeyLost
		case err != nil:
			return FlushResult{}, fmt.Errorf("statistics flush %d: read key: %w", seq, err)
		case uint64(at) >= seq:
			return FlushResult{AlreadyApplied: true}, nil
		default:
			return FlushResult{}, fmt.Errorf("%w: it is at %d, flush %d follows %d", errKeyLost, at, seq, seq-1)
		}
	}

	var res FlushResult
	if bisect {
		res.Refused, err = applyBisect(ctx, tx, rows)
	} else {
		res.Refused, err = applyRows(ctx, tx, rows)
		if refusedByDB(err) {
			err = fmt.Errorf("%w: %w", errRefusedByDB, err)
		}
	}
	if err != nil {
		return FlushResult{}, fmt.Errorf("statistics flush %d: %w", seq, err)
	}
	if err := tx.Commit(ctx); err != nil {
		// Only the server's own answer says the transaction rolled back.
		// pgconn.SafeToRetry is no proof that COMMIT was not sent: a read
		// that fails after it was sent can be reported as "conn closed",
		// which claims to be safe to retry.
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) || errors.Is(err, pgx.ErrTxCommitRollback) {
			return FlushResult{}, fmt.Errorf("commit statistics flush %d: %w", seq, err)
		}
		return FlushResult{}, fmt.Errorf("%w: commit of flush %d: %w", ErrOutcomeUnknown, seq, err)
	}
	return res, nil
}

// refusedByDB reports an error about a row's data: a data exception
// (class 22: out of range, bad encoding), an integrity constraint (class
// 23: foreign key, check, not null) or an exception raised by a trigger.
// Retrying the same row would fail the same way.
func refusedByDB(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	return strings.HasPrefix(pgErr.Code, "22") || strings.HasPrefix(pgErr.Code, "23") || pgErr.Code == "P0001"
}

// applyBisect applies rows under a savepoint; if the database refuses the
// range, it is rolled back and its halves are tried, down to single rows,
// which are refused.
func applyBisect(ctx context.Context, tx pgx.Tx, rows []flushRow) ([]RefusedRow, error) {
	if len(rows) == 0 {
		return nil, nil
	}
	sp, err := tx.Begin(ctx)
	if err != nil {
		return nil, err
	}
	refused, err := applyRows(ctx, sp, rows)
	if err == nil {
		return refused, sp.Commit(ctx)
	}
	if !refusedByDB(err) {
		return nil, err
	}
	if rbErr := sp.Rollback(ctx); rbErr != nil {
		return nil, rbErr
	}
	if len(rows) == 1 {
		return []RefusedRow{{rows[0].s.ListenerID, rows[0].s.AmphoraID, err}}, nil
	}
	half := len(rows) / 2
	first, err := applyBisect(ctx, tx, rows[:half])
	if err != nil {
		return nil, err
	}
	second, err := applyBisect(ctx, tx, rows[half:])
	if err != nil {
		return nil, err
	}
	return append(first, second...), nil
}

// updateInPlace updates the rows that exist and whose new values Octavia
// would store without reading them back in Go: absolute values always
// (they replace the row unchecked), deltas when every sum and the gauge
// are non-negative and the sums fit in bigint (computed as numeric, so
// that an overflow leaves the row alone instead of failing the
// statement). It returns the indexes (1-based) of the rows it updated.
// The others, rows still missing and rows Octavia would refuse, go
// through applyRowsByReading, which decides them as before.
const updateInPlace = `
UPDATE listener_statistics AS s SET
    bytes_in = CASE WHEN v.deltas THEN s.bytes_in + v.bytes_in ELSE v.bytes_in END,
    bytes_out = CASE WHEN v.deltas THEN s.bytes_out + v.bytes_out ELSE v.bytes_out END,
    active_connections = v.active_connections,
    total_connections = CASE WHEN v.deltas THEN s.total_connections + v.total_connections ELSE v.total_connections END,
    request_errors = CASE WHEN v.deltas THEN s.request_errors + v.request_errors ELSE v.request_errors END
FROM unnest($1::varchar[], $2::varchar[], $3::boolean[], $4::bigint[], $5::bigint[], $6::integer[], $7::bigint[], $8::bigint[])
    WITH ORDINALITY AS v(listener_id, amphora_id, deltas, bytes_in, bytes_out, active_connections, total_connections, request_errors, i)
WHERE s.listener_id = v.listener_id AND s.amphora_id = v.amphora_id
  AND (NOT v.deltas OR (v.active_connections >= 0
       AND s.bytes_in::numeric + v.bytes_in BETWEEN 0 AND 9223372036854775807
       AND s.bytes_out::numeric + v.bytes_out BETWEEN 0 AND 9223372036854775807
       AND s.total_connections::numeric + v.total_connections BETWEEN 0 AND 9223372036854775807
       AND s.request_errors::numeric + v.request_errors BETWEEN 0 AND 9223372036854775807))
RETURNING v.i`

// applyRows writes a flush's rows as Octavia would, with the rows Octavia
// would refuse returned; unlike DB.Update, a refusal does not stop the
// rows after it, which come from other heartbeats. Rows that exist are
// updated in place in one statement (each read, checked and written once
// by PostgreSQL); the rest, new rows and the rare row to refuse, are read
// and decided in Go (applyRowsByReading).
func applyRows(ctx context.Context, tx pgx.Tx, rows []flushRow) ([]RefusedRow, error) {
	n := len(rows)
	lIDs, aIDs := make([]string, 0, n), make([]string, 0, n)
	deltas := make([]bool, 0, n)
	bytesIn, bytesOut, active, total, reqErrs := make([]int64, 0, n), make([]int64, 0, n), make([]int64, 0, n), make([]int64, 0, n), make([]int64, 0, n)
	inPlace := make([]int, 0, n) // rows[inPlace[k]] is the statement's row k+1
	byReading := make([]bool, n)
	for i, r := range rows {
		if r.s.ActiveConnections > maxInt32 || r.s.ActiveConnections < math.MinInt32 {
			byReading[i] = true // refused there, as Octavia refuses it
			continue
		}
		inPlace = append(inPlace, i)
		lIDs, aIDs, deltas = append(lIDs, r.key.listener), append(aIDs, r.key.amphora), append(deltas, r.deltas)
		bytesIn, bytesOut = append(bytesIn, r.s.BytesIn), append(bytesOut, r.s.BytesOut)
		active, total, reqErrs = append(active, r.s.ActiveConnections), append(total, r.s.TotalConnections), append(reqErrs, r.s.RequestErrors)
	}
	if len(inPlace) > 0 {
		updated := make([]bool, len(inPlace))
		q, err := tx.Query(ctx, updateInPlace, lIDs, aIDs, deltas, bytesIn, bytesOut, active, total, reqErrs)
		if err != nil {
			return nil, fmt.Errorf("update %d listener_statistics rows: %w", len(inPlace), err)
		}
		for q.Next() {
			var k int64
			if err := q.Scan(&k); err != nil {
				q.Close()
				return nil, fmt.Errorf("update %d listener_statistics rows: %w", len(inPlace), err)
			}
			if k < 1 || int(k) > len(updated) {
				q.Close()
				return nil, fmt.Errorf("update listener_statistics: row %d of %d returned", k, len(updated))
			}
			updated[k-1] = true
		}
		if err := q.Err(); err != nil {
			return nil, fmt.Errorf("update %d listener_statistics rows: %w", len(inPlace), err)
		}
		for k, done := range updated {
			byReading[inPlace[k]] = !done
		}
	}
	var rest []flushRow // in the batch's order, so that refusals keep it
	for i, r := range rows {
		if byReading[i] {
			rest = append(rest, r)
		}
	}
	if len(rest) == 0 {
		return nil, nil
	}
	return applyRowsByReading(ctx, tx, rest)
}

// applyRowsByReading locks and reads the rows' current values, computes
// the new ones as Octavia would (next), and upserts them. Rows Octavia
// would refuse are returned, the others written.
func applyRowsByReading(ctx context.Context, tx pgx.Tx, rows []flushRow) ([]RefusedRow, error) {
	n := len(rows)
	lIDs, aIDs := make([]string, n), make([]string, n)
	for i, r := range rows {
		lIDs[i], aIDs[i] = r.key.listener, r.key.amphora
	}
	existing := make(map[statsKey]counters, n)
	q, err := tx.Query(ctx, selectExisting, lIDs, aIDs)
	if err != nil {
		return nil, fmt.Errorf("read listener_statistics: %w", err)
	}
	for q.Next() {
		var k statsKey
		var c counters
		if err := q.Scan(&k.listener, &k.amphora, &c.bytesIn, &c.bytesOut, &c.totalConns, &c.requestErrors); err != nil {
			q.Close()
			return nil, fmt.Errorf("read listener_statistics: %w", err)
		}
		existing[k] = c
	}
	if err := q.Err(); err != nil {
		return nil, fmt.Errorf("read listener_statistics: %w", err)
	}

	var refused []RefusedRow
	var wl, wa []string
	var bytesIn, bytesOut, active, total, reqErrs []int64
	for _, r := range rows {
		old, found := existing[r.key]
		c, conns, err := next(r.s, old, found, r.deltas)
		if err != nil {
			refused = append(refused, RefusedRow{r.s.ListenerID, r.s.AmphoraID, err})
			continue
		}
		wl, wa = append(wl, r.key.listener), append(wa, r.key.amphora)
		bytesIn, bytesOut, total, reqErrs = append(bytesIn, c.bytesIn), append(bytesOut, c.bytesOut), append(total, c.totalConns), append(reqErrs, c.requestErrors)
		active = append(active, conns)
	}
	if len(wl) == 0 {
		return refused, nil
	}
	if _, err := tx.Exec(ctx, upsert, wl, wa, bytesIn, bytesOut, active, total, reqErrs); err != nil {
		return nil, fmt.Errorf("write %d listener_statistics rows: %w", len(wl), err)
	}
	return refused, nil
}
