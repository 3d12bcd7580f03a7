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
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
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
func (d *DB) ManagerID() string { return d.key.managerID }

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

// flushKey is a sink's row in ovh_stats_flush: its manager id, and
// whether the row is known to exist.
type flushKey struct {
	managerID string

	mu         sync.Mutex
	registered bool
}

// flushDialect is one database's part of the exactly-once flush
// procedure (applyFlush): its SQL for the flush key and the rows.
type flushDialect interface {
	// registerKey makes sure managerID's key exists and is at least seq
	// (it only moves forward), and prunes the keys of managers gone for
	// flushKeyRetention.
	registerKey(ctx context.Context, managerID string, seq uint64) error
	// applyAttempt runs one transaction: it advances managerID's key from
	// seq-1 to seq (keyNotAdvanced says what a key that did not move
	// means), writes rows, and commits (commitFailed classifies a failed
	// COMMIT).
	applyAttempt(ctx context.Context, managerID string, seq uint64, rows []flushRow) (FlushResult, error)
}

// applyFlush applies a batch in one transaction that also advances the
// flush key to b.Seq. On a retry the key tells whether an earlier
// attempt committed.
func applyFlush(ctx context.Context, k *flushKey, dialect flushDialect, b *FlushBatch) (FlushResult, error) {
	if b.Seq == 0 {
		return FlushResult{}, errors.New("flush sequence numbers start at 1")
	}
	rows, refused := flushRows(b)
	for attempt := 0; ; attempt++ {
		if err := k.register(ctx, dialect, b.Seq-1); err != nil {
			return FlushResult{}, err
		}
		res, err := dialect.applyAttempt(ctx, k.managerID, b.Seq, rows)
		if !errors.Is(err, errKeyLost) {
			res.Refused = append(refused, res.Refused...)
			return res, err
		}
		k.mu.Lock()
		k.registered = false
		k.mu.Unlock()
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

// register runs the dialect's registerKey once per process (and again if
// the key was lost), outside any flush.
func (k *flushKey) register(ctx context.Context, dialect flushDialect, seq uint64) error {
	k.mu.Lock()
	done := k.registered
	k.mu.Unlock()
	if done {
		return nil
	}
	if err := dialect.registerKey(ctx, k.managerID, seq); err != nil {
		return err
	}
	k.mu.Lock()
	k.registered = true
	k.mu.Unlock()
	return nil
}

// keyNotAdvanced says what it means that the key did not move from seq-1
// to seq: readErr is the error of reading the key's seq (at), missing
// that there is no key.
func keyNotAdvanced(seq uint64, at int64, missing bool, readErr error) (FlushResult, error) {
	switch {
	case missing:
		return FlushResult{}, errKeyLost
	case readErr != nil:
		return FlushResult{}, fmt.Errorf("statistics flush %d: read key: %w", seq, readErr)
	case uint64(at) >= seq:
		return FlushResult{AlreadyApplied: true}, nil
	default:
		return FlushResult{}, fmt.Errorf("%w: it is at %d, flush %d follows %d", errKeyLost, at, seq, seq-1)
	}
}

// commitFailed is the error of a failed COMMIT. Only the server's own
// answer (rolledBack) says the transaction rolled back; any other failure
// leaves the outcome unknown.
func commitFailed(seq uint64, err error, rolledBack bool) error {
	if rolledBack {
		return fmt.Errorf("commit statistics flush %d: %w", seq, err)
	}
	return fmt.Errorf("%w: commit of flush %d: %w", ErrOutcomeUnknown, seq, err)
}

// ApplyFlush applies a batch in one transaction that also advances this
// manager's flush key to b.Seq. On a retry the key tells whether an
// earlier attempt committed.
func (d *DB) ApplyFlush(ctx context.Context, b *FlushBatch) (FlushResult, error) {
	return applyFlush(ctx, &d.key, pgFlush{d.pool}, b)
}

// pgFlush is PostgreSQL's flushDialect.
type pgFlush struct{ pool *pgxpool.Pool }

func (p pgFlush) registerKey(ctx context.Context, managerID string, seq uint64) error {
	batch := &pgx.Batch{}
	batch.Queue(registerKey, managerID, int64(seq))
	batch.Queue(pruneKeys, managerID, flushKeyRetention.Seconds())
	if err := p.pool.SendBatch(ctx, batch).Close(); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42P01" { // undefined_table
			return fmt.Errorf("register statistics flush key: table ovh_stats_flush is missing "+
				"(run octavia-health-manager migrate; it creates only this table in an existing Octavia schema): %w", err)
		}
		return fmt.Errorf("register statistics flush key %s: %w", managerID, err)
	}
	return nil
}

// applyAttempt tries the rows in one go, and if the database refuses one
// of them, again with bisection (applyTx).
func (p pgFlush) applyAttempt(ctx context.Context, managerID string, seq uint64, rows []flushRow) (FlushResult, error) {
	res, err := p.applyTx(ctx, managerID, seq, rows, false)
	if errors.Is(err, errRefusedByDB) {
		res, err = p.applyTx(ctx, managerID, seq, rows, true)
	}
	return res, err
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
func (p pgFlush) applyTx(ctx context.Context, managerID string, seq uint64, rows []flushRow, bisect bool) (FlushResult, error) {
	tx, err := p.pool.Begin(ctx)
	if err != nil {
		return FlushResult{}, fmt.Errorf("begin statistics flush %d: %w", seq, err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit

	// Deferred constraints are checked per statement, so that a refusal
	// is met where it can be told apart rather than at COMMIT.
	batch := &pgx.Batch{}
	batch.Queue(`SET CONSTRAINTS ALL IMMEDIATE`)
	advanced := batch.Queue(advanceKey, managerID, int64(seq))
	var moved int64
	advanced.Exec(func(tag pgconn.CommandTag) error { moved = tag.RowsAffected(); return nil })
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		return FlushResult{}, fmt.Errorf("statistics flush %d: advance key: %w", seq, err)
	}
	if moved == 0 {
		var at int64
		err := tx.QueryRow(ctx, readKey, managerID).Scan(&at)
		return keyNotAdvanced(seq, at, errors.Is(err, pgx.ErrNoRows), err)
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
		return FlushResult{}, commitFailed(seq, err, errors.As(err, &pgErr) || errors.Is(err, pgx.ErrTxCommitRollback))
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

// bisect applies rows with apply, which reports a range the database
// refuses as a refusal, having written none of it: that range's halves are
// tried, down to single rows, which are refused.
func bisect(rows []flushRow, apply func([]flushRow) (refused []RefusedRow, refusal, err error)) ([]RefusedRow, error) {
	if len(rows) == 0 {
		return nil, nil
	}
	refused, refusal, err := apply(rows)
	if err != nil {
		return nil, err
	}
	if refusal == nil {
		return refused, nil
	}
	if len(rows) == 1 {
		return []RefusedRow{{rows[0].s.ListenerID, rows[0].s.AmphoraID, refusal}}, nil
	}
	half := len(rows) / 2
	first, err := bisect(rows[:half], apply)
	if err != nil {
		return nil, err
	}
	second, err := bisect(rows[half:], apply)
	if err != nil {
		return nil, err
	}
	return append(first, second...), nil
}

// applyBisect applies rows under a savepoint; if the database refuses the
// range, it is rolled back and bisected.
func applyBisect(ctx context.Context, tx pgx.Tx, rows []flushRow) ([]RefusedRow, error) {
	return bisect(rows, func(rows []flushRow) ([]RefusedRow, error, error) {
		sp, err := tx.Begin(ctx)
		if err != nil {
			return nil, nil, err
		}
		refused, err := applyRows(ctx, sp, rows)
		if err == nil {
			return refused, nil, sp.Commit(ctx)
		}
		if !refusedByDB(err) {
			return nil, nil, err
		}
		if rbErr := sp.Rollback(ctx); rbErr != nil {
			return nil, nil, rbErr
		}
		return nil, err, nil
	})
}

// updateInPlace updates the rows that exist and whose new values Octavia
// would store without reading them back in Go: absolute values always
// (they replace the row unchecked), deltas when the gauge is non-negative
// and every sum is non-negative and fits in bigint. Only rows whose deltas
// are all non-negative are sent here, so that both bounds can be checked
// in bigint without overflowing (s + v in [0, max] is s >= -v and
// s <= max - v when v >= 0): a sum out of range leaves the row alone
// instead of failing the statement. It returns the indexes (1-based) of
// the rows it updated. The others, rows still missing and rows Octavia
// would refuse, go through applyRowsByReading, which decides them as
// before.
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
       AND s.bytes_in >= -v.bytes_in AND s.bytes_in <= 9223372036854775807 - v.bytes_in
       AND s.bytes_out >= -v.bytes_out AND s.bytes_out <= 9223372036854775807 - v.bytes_out
       AND s.total_connections >= -v.total_connections AND s.total_connections <= 9223372036854775807 - v.total_connections
       AND s.request_errors >= -v.request_errors AND s.request_errors <= 9223372036854775807 - v.request_errors))
RETURNING v.i`

// applyRows writes a flush's rows as Octavia would, with the rows Octavia
// would refuse returned; unlike DB.Update, a refusal does not stop the
// rows after it, which come from other heartbeats. Rows that exist are
// updated in place in one statement (each read, checked and written once
// by PostgreSQL); the rest, new rows and the rare row to refuse, are read
// and decided in Go (applyRowsByReading).
func applyRows(ctx context.Context, tx pgx.Tx, rows []flushRow) ([]RefusedRow, error) {
	n := len(rows)
	inPlace := make([]int, 0, n) // rows[inPlace[k]] is the statement's row k+1
	byReading := make([]bool, n)
	size := 2*arrayHeaderSize + 6*arrayHeaderSize
	for i, r := range rows {
		if r.s.ActiveConnections > maxInt32 || r.s.ActiveConnections < math.MinInt32 {
			byReading[i] = true // refused there, as Octavia refuses it
			continue
		}
		if r.deltas && (r.s.BytesIn < 0 || r.s.BytesOut < 0 || r.s.TotalConnections < 0 || r.s.RequestErrors < 0) {
			byReading[i] = true // a negative delta: the sum is checked in Go
			continue
		}
		inPlace = append(inPlace, i)
		size += textElemSize(r.key.listener) + textElemSize(r.key.amphora) + boolElemSize + 4*int8ElemSize + int4ElemSize
	}
	if len(inPlace) > 0 {
		p := arrayParamsPool.Get().(*arrayParams)
		defer p.release()
		p.reset(size)
		m := len(inPlace)
		p.begin(oidVarchar, m)
		for _, i := range inPlace {
			p.text(rows[i].key.listener)
		}
		p.end()
		p.begin(oidVarchar, m)
		for _, i := range inPlace {
			p.text(rows[i].key.amphora)
		}
		p.end()
		p.begin(oidBool, m)
		for _, i := range inPlace {
			p.bool(rows[i].deltas)
		}
		p.end()
		for _, col := range []func(*ListenerStats) int64{
			func(s *ListenerStats) int64 { return s.BytesIn },
			func(s *ListenerStats) int64 { return s.BytesOut },
		} {
			p.begin(oidInt8, m)
			for _, i := range inPlace {
				p.int8(col(rows[i].s))
			}
			p.end()
		}
		p.begin(oidInt4, m)
		for _, i := range inPlace {
			p.int4(int32(rows[i].s.ActiveConnections)) // in range: checked above
		}
		p.end()
		for _, col := range []func(*ListenerStats) int64{
			func(s *ListenerStats) int64 { return s.TotalConnections },
			func(s *ListenerStats) int64 { return s.RequestErrors },
		} {
			p.begin(oidInt8, m)
			for _, i := range inPlace {
				p.int8(col(rows[i].s))
			}
			p.end()
		}
		updated := make([]bool, m)
		err := queryArrays(ctx, tx, updateInPlace, p, func(values [][]byte) error {
			if len(values) != 1 {
				return fmt.Errorf("%d columns returned", len(values))
			}
			k, err := int8Value(values[0])
			if err != nil {
				return err
			}
			if k < 1 || k > int64(m) {
				return fmt.Errorf("row %d of %d returned", k, m)
			}
			updated[k-1] = true
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("update %d listener_statistics rows: %w", m, err)
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
	q, err := tx.Query(ctx, selectExisting, lIDs, aIDs)
	if err != nil {
		return nil, fmt.Errorf("read listener_statistics: %w", err)
	}
	existing, err := scanExisting(q, n)
	q.Close()
	if err != nil {
		return nil, err
	}

	var wl, wa []string
	var bytesIn, bytesOut, active, total, reqErrs []int64
	refused := decideRows(rows, existing, func(r flushRow, c counters, conns int64) {
		wl, wa = append(wl, r.key.listener), append(wa, r.key.amphora)
		bytesIn, bytesOut, total, reqErrs = append(bytesIn, c.bytesIn), append(bytesOut, c.bytesOut), append(total, c.totalConns), append(reqErrs, c.requestErrors)
		active = append(active, conns)
	})
	if len(wl) == 0 {
		return refused, nil
	}
	if _, err := tx.Exec(ctx, upsert, wl, wa, bytesIn, bytesOut, active, total, reqErrs); err != nil {
		return nil, fmt.Errorf("write %d listener_statistics rows: %w", len(wl), err)
	}
	return refused, nil
}

// existingRows is a query's result of (listener_id, amphora_id, bytes_in,
// bytes_out, total_connections, request_errors) rows, in pgx or
// database/sql.
type existingRows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// scanExisting reads the current counters of a flush's rows; the caller
// closes q.
func scanExisting(q existingRows, n int) (map[statsKey]counters, error) {
	existing := make(map[statsKey]counters, n)
	for q.Next() {
		var k statsKey
		var c counters
		if err := q.Scan(&k.listener, &k.amphora, &c.bytesIn, &c.bytesOut, &c.totalConns, &c.requestErrors); err != nil {
			return nil, fmt.Errorf("read listener_statistics: %w", err)
		}
		existing[k] = c
	}
	if err := q.Err(); err != nil {
		return nil, fmt.Errorf("read listener_statistics: %w", err)
	}
	return existing, nil
}

// decideRows computes each row's new values from the existing ones as
// Octavia would (next), hands those to write, and returns the rows Octavia
// would refuse.
func decideRows(rows []flushRow, existing map[statsKey]counters, write func(r flushRow, c counters, activeConns int64)) []RefusedRow {
	var refused []RefusedRow
	for _, r := range rows {
		old, found := existing[r.key]
		c, conns, err := next(r.s, old, found, r.deltas)
		if err != nil {
			refused = append(refused, RefusedRow{r.s.ListenerID, r.s.AmphoraID, err})
			continue
		}
		write(r, c, conns)
	}
	return refused
}
