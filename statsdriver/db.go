package statsdriver

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DB is stats_db: it keeps listener_statistics, one row per (listener_id,
// amphora_id), with Octavia 11.0.0's semantics (docs/stats.md#stats_db):
//
//   - absolute values (deltas false) replace the row's five columns;
//   - deltas add to bytes_in, bytes_out, total_connections and
//     request_errors, and overwrite active_connections, which is a gauge;
//   - a missing row is created with the reported values;
//   - there is no foreign key: rows are kept for any listener or amphora id.
//
// Octavia writes each listener in its own transaction, in the message's
// order, and stops at the first listener it cannot write; the ones before
// it stay written. DB gets the same rows with two set-based statements in
// one transaction: it locks and reads the existing rows, works out in Go
// where Octavia would have stopped, and upserts the listeners before that
// point.
//
// For the Aggregator, ApplyFlush applies a whole flush exactly once
// (flush.go, docs/stats.md).
type DB struct {
	pool *pgxpool.Pool
	key  flushKey
}

// NewDB writes into the database behind pool, under a new manager id.
func NewDB(pool *pgxpool.Pool) *DB { return &DB{pool: pool, key: flushKey{managerID: newManagerID()}} }

// ErrNotRecorded wraps the reason a listener's statistics, and those after
// it in the same message, were not written.
var ErrNotRecorded = errors.New("listener statistics not recorded")

const (
	// Ids are varchar(36); PostgreSQL rejects longer values, and text
	// holding NUL, so Octavia's write fails there.
	maxIDLen = 36
	// active_connections is an integer column; the others are bigint.
	maxInt32 = math.MaxInt32
)

// selectExisting locks the rows the message touches. Rows are locked in
// key order, so two managers writing the same rows cannot deadlock.
const selectExisting = `
SELECT s.listener_id, s.amphora_id, s.bytes_in, s.bytes_out, s.total_connections, s.request_errors
FROM unnest($1::varchar[], $2::varchar[]) AS k(listener_id, amphora_id)
JOIN listener_statistics s ON s.listener_id = k.listener_id AND s.amphora_id = k.amphora_id
ORDER BY s.listener_id, s.amphora_id
FOR UPDATE OF s`

// upsert writes final values, already summed in Go.
const upsert = `
INSERT INTO listener_statistics AS s
    (listener_id, amphora_id, bytes_in, bytes_out, active_connections, total_connections, request_errors)
SELECT * FROM unnest($1::varchar[], $2::varchar[], $3::bigint[], $4::bigint[], $5::integer[], $6::bigint[], $7::bigint[])
ON CONFLICT (listener_id, amphora_id) DO UPDATE SET
    bytes_in = EXCLUDED.bytes_in, bytes_out = EXCLUDED.bytes_out,
    active_connections = EXCLUDED.active_connections,
    total_connections = EXCLUDED.total_connections, request_errors = EXCLUDED.request_errors`

type statsKey struct{ listener, amphora string }

type counters struct{ bytesIn, bytesOut, totalConns, requestErrors int64 }

// Update writes one message's statistics.
func (d *DB) Update(ctx context.Context, stats []ListenerStats, deltas bool) error {
	if len(stats) == 0 {
		return nil
	}
	keys := make([]statsKey, len(stats))
	for i := range stats {
		keys[i] = statsKey{stats[i].ListenerID, stats[i].AmphoraID}
		if keys[i].amphora == "" {
			keys[i].amphora = keys[i].listener // a provider driver's report
		}
	}
	// Ids PostgreSQL cannot store end the message here; the rows before
	// them can still be written.
	n, stop := len(stats), error(nil)
	for i, k := range keys {
		if err := storableID(k.listener); err != nil {
			n, stop = i, fmt.Errorf("listener id: %w", err)
			break
		}
		if err := storableID(k.amphora); err != nil {
			n, stop = i, fmt.Errorf("amphora id: %w", err)
			break
		}
	}
	if n == 0 {
		return notRecorded(stats, keys, 0, stop)
	}
	lIDs := make([]string, n)
	aIDs := make([]string, n)
	for i := 0; i < n; i++ {
		lIDs[i], aIDs[i] = keys[i].listener, keys[i].amphora
	}

	var written int
	err := pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		existing := make(map[statsKey]counters, n)
		rows, err := tx.Query(ctx, selectExisting, lIDs, aIDs)
		if err != nil {
			return fmt.Errorf("read listener_statistics: %w", err)
		}
		for rows.Next() {
			var k statsKey
			var c counters
			if err := rows.Scan(&k.listener, &k.amphora, &c.bytesIn, &c.bytesOut, &c.totalConns, &c.requestErrors); err != nil {
				rows.Close()
				return fmt.Errorf("read listener_statistics: %w", err)
			}
			existing[k] = c
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read listener_statistics: %w", err)
		}

		var bytesIn, bytesOut, active, total, reqErrs []int64
		written = n
		for i := 0; i < n; i++ {
			old, found := existing[keys[i]]
			c, conns, err := next(&stats[i], old, found, deltas)
			if err != nil {
				written, stop = i, err
				break
			}
			bytesIn, bytesOut, total, reqErrs = append(bytesIn, c.bytesIn), append(bytesOut, c.bytesOut), append(total, c.totalConns), append(reqErrs, c.requestErrors)
			active = append(active, conns)
		}
		if written == 0 {
			return nil
		}
		if _, err := tx.Exec(ctx, upsert, lIDs[:written], aIDs[:written], bytesIn, bytesOut, active, total, reqErrs); err != nil {
			return fmt.Errorf("write %d listener_statistics rows: %w", written, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if stop != nil {
		return notRecorded(stats, keys, written, stop)
	}
	return nil
}

// next computes a row's new values the way Octavia 11.0.0 does, or the
// error that stops Octavia at this listener:
//
//   - a new row is built through the ORM model, whose validators refuse a
//     negative value in any of the five columns;
//   - absolute values on an existing row go through a bulk UPDATE that
//     skips the validators, so negative values are stored;
//   - deltas on an existing row are summed in Python and assigned through
//     the model, so a negative sum is refused, and the gauge with it;
//   - values outside the column types fail in PostgreSQL.
func next(s *ListenerStats, old counters, found, deltas bool) (counters, int64, error) {
	c := counters{s.BytesIn, s.BytesOut, s.TotalConnections, s.RequestErrors}
	validate := !found
	if found && deltas {
		validate = true
		var ok [4]bool
		c.bytesIn, ok[0] = add(old.bytesIn, s.BytesIn)
		c.bytesOut, ok[1] = add(old.bytesOut, s.BytesOut)
		c.totalConns, ok[2] = add(old.totalConns, s.TotalConnections)
		c.requestErrors, ok[3] = add(old.requestErrors, s.RequestErrors)
		for _, fits := range ok {
			if !fits {
				return c, 0, errors.New("a summed counter is outside the bigint range")
			}
		}
	}
	if validate {
		for _, f := range []struct {
			name string
			v    int64
		}{
			{"bytes_in", c.bytesIn}, {"bytes_out", c.bytesOut},
			{"active_connections", s.ActiveConnections},
			{"total_connections", c.totalConns}, {"request_errors", c.requestErrors},
		} {
			if f.v < 0 {
				return c, 0, fmt.Errorf("the %s field can not have negative value", f.name)
			}
		}
	}
	if s.ActiveConnections > maxInt32 || s.ActiveConnections < math.MinInt32 {
		return c, 0, errors.New("active_connections is outside the integer range")
	}
	return c, s.ActiveConnections, nil
}

// add is a + b, and whether the sum fits in int64 (PostgreSQL's bigint).
func add(a, b int64) (int64, bool) {
	s := a + b
	return s, (s > a) == (b > 0)
}

func storableID(id string) error {
	if utf8.RuneCountInString(id) > maxIDLen {
		return fmt.Errorf("longer than %d characters", maxIDLen)
	}
	if strings.IndexByte(id, 0) >= 0 {
		return errors.New("contains NUL")
	}
	return nil
}

func notRecorded(stats []ListenerStats, keys []statsKey, i int, reason error) error {
	return &RefusedError{Written: i, ListenerID: keys[i].listener, AmphoraID: keys[i].amphora,
		After: len(stats) - i - 1, Reason: reason}
}

// RefusedError is how stats_db reports a listener it refused, as Octavia's
// refuses it: the Written listeners before it were written; it and the
// After listeners after it were not. It matches ErrNotRecorded.
type RefusedError struct {
	Written               int
	ListenerID, AmphoraID string
	After                 int
	Reason                error
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("%v: listener %q of amphora %q and the %d after it: %v",
		ErrNotRecorded, e.ListenerID, e.AmphoraID, e.After, e.Reason)
}

// Is makes errors.Is(err, ErrNotRecorded) true.
func (e *RefusedError) Is(target error) bool { return target == ErrNotRecorded }

// Unwrap gives the reason.
func (e *RefusedError) Unwrap() error { return e.Reason }

// WrittenRows is how many leading rows were written; the Aggregator uses it
// to drop only the refused row.
func (e *RefusedError) WrittenRows() int { return e.Written }
