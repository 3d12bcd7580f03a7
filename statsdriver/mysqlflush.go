package statsdriver

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/go-sql-driver/mysql"
)

// MySQLSink is stats_db's FlushSink on MySQL and MariaDB: the design of
// DB.ApplyFlush (flush.go; docs/stats.md, "Exactly once"), with our own
// ovh_stats_flush table created by migrate there
// (migrations/sql/mysql). Every write is on the database's clock
// (UTC_TIMESTAMP(6)). The pool must parse times (see mysqlstore.Config).
type MySQLSink struct {
	db  *sql.DB
	key flushKey
}

var _ FlushSink = (*MySQLSink)(nil)

// NewMySQLSink writes into the database behind db, under a new manager id.
func NewMySQLSink(db *sql.DB) *MySQLSink {
	return &MySQLSink{db: db, key: flushKey{managerID: newManagerID()}}
}

// ManagerID is the key under which this sink records its flushes.
func (d *MySQLSink) ManagerID() string { return d.key.managerID }

const (
	// The key only moves forward; updated_at is assigned before seq, as
	// MySQL evaluates the assignments in order.
	myRegisterKey = `
INSERT INTO ovh_stats_flush (manager_id, seq, created_at, updated_at)
VALUES (?, ?, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))
ON DUPLICATE KEY UPDATE updated_at = IF(seq < VALUES(seq), VALUES(updated_at), updated_at),
    seq = GREATEST(seq, VALUES(seq))`
	myPruneKeys = `
DELETE FROM ovh_stats_flush
WHERE updated_at < UTC_TIMESTAMP(6) - INTERVAL ? SECOND AND manager_id <> ?`
	myAdvanceKey = `
UPDATE ovh_stats_flush SET seq = ?, updated_at = UTC_TIMESTAMP(6)
WHERE manager_id = ? AND seq = ?`
	myReadKey = `SELECT seq FROM ovh_stats_flush WHERE manager_id = ?`
)

// MySQL error numbers.
const (
	myErrNoSuchTable = 1146
)

// ApplyFlush applies a batch in one transaction that also advances this
// manager's flush key to b.Seq; see DB.ApplyFlush.
func (d *MySQLSink) ApplyFlush(ctx context.Context, b *FlushBatch) (FlushResult, error) {
	return applyFlush(ctx, &d.key, myFlush{d.db}, b)
}

// myFlush is MySQL's flushDialect.
type myFlush struct{ db *sql.DB }

func (m myFlush) registerKey(ctx context.Context, managerID string, seq uint64) error {
	_, err := m.db.ExecContext(ctx, myRegisterKey, managerID, int64(seq))
	if err == nil {
		_, err = m.db.ExecContext(ctx, myPruneKeys, int64(flushKeyRetention.Seconds()), managerID)
	}
	if err != nil {
		var my *mysql.MySQLError
		if errors.As(err, &my) && my.Number == myErrNoSuchTable {
			return fmt.Errorf("register statistics flush key: table ovh_stats_flush is missing "+
				"(run octavia-health-manager migrate; on MySQL it creates only our own ovh_ tables): %w", err)
		}
		return fmt.Errorf("register statistics flush key %s: %w", managerID, err)
	}
	return nil
}

func (m myFlush) applyAttempt(ctx context.Context, managerID string, seq uint64, rows []flushRow) (FlushResult, error) {
	tx, err := m.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if err != nil {
		return FlushResult{}, fmt.Errorf("begin statistics flush %d: %w", seq, err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit

	r, err := tx.ExecContext(ctx, myAdvanceKey, int64(seq), managerID, int64(seq)-1)
	if err != nil {
		return FlushResult{}, fmt.Errorf("statistics flush %d: advance key: %w", seq, err)
	}
	if moved, _ := r.RowsAffected(); moved == 0 {
		var at int64
		err := tx.QueryRowContext(ctx, myReadKey, managerID).Scan(&at)
		return keyNotAdvanced(seq, at, errors.Is(err, sql.ErrNoRows), err)
	}
	// A statement MySQL refuses is rolled back alone, and the
	// transaction goes on: the refused rows are found by halving.
	refused, err := myApplyBisect(ctx, tx, rows)
	if err != nil {
		return FlushResult{}, fmt.Errorf("statistics flush %d: %w", seq, err)
	}
	if err := tx.Commit(); err != nil {
		// Only the server's own answer says the transaction rolled back
		// (a Galera certification failure, 1213, is one).
		var my *mysql.MySQLError
		return FlushResult{}, commitFailed(seq, err, errors.As(err, &my) || errors.Is(err, sql.ErrTxDone))
	}
	return FlushResult{Refused: refused}, nil
}

// myRefusedByDB reports an error about a row's data, which retrying the
// same row would meet again: out of range, too long, a string the column's
// character set cannot hold, NULL, a foreign key or a check constraint.
func myRefusedByDB(err error) bool {
	var my *mysql.MySQLError
	if !errors.As(err, &my) {
		return false
	}
	switch my.Number {
	case 1048, 1264, 1265, 1292, 1366, 1406, 1452, 3819, 4025:
		return true
	}
	return false
}

// myApplyBisect applies rows; a statement MySQL refuses is rolled back
// alone, and the range is bisected.
func myApplyBisect(ctx context.Context, tx *sql.Tx, rows []flushRow) ([]RefusedRow, error) {
	return bisect(rows, func(rows []flushRow) ([]RefusedRow, error, error) {
		refused, err := myApplyRows(ctx, tx, rows)
		if myRefusedByDB(err) {
			return nil, err, nil
		}
		return refused, nil, err
	})
}

// myApplyRows locks and reads the rows' current values in key order,
// computes the new ones as Octavia would (next), and upserts them.
func myApplyRows(ctx context.Context, tx *sql.Tx, rows []flushRow) ([]RefusedRow, error) {
	n := len(rows)
	args := make([]any, 0, 2*n)
	for _, r := range rows {
		args = append(args, r.key.listener, r.key.amphora)
	}
	pairs := strings.Repeat("(?, ?), ", n-1) + "(?, ?)"
	q, err := tx.QueryContext(ctx, `
SELECT listener_id, amphora_id, bytes_in, bytes_out, total_connections, request_errors
FROM listener_statistics FORCE INDEX (PRIMARY) WHERE (listener_id, amphora_id) IN (`+pairs+`)
ORDER BY listener_id, amphora_id FOR UPDATE`, args...)
	if err != nil {
		return nil, fmt.Errorf("read listener_statistics: %w", err)
	}
	existing, err := scanExisting(q, n)
	q.Close()
	if err != nil {
		return nil, err
	}

	var values []any
	written := 0
	refused := decideRows(rows, existing, func(r flushRow, c counters, conns int64) {
		values = append(values, r.key.listener, r.key.amphora, c.bytesIn, c.bytesOut, conns, c.totalConns, c.requestErrors)
		written++
	})
	if written == 0 {
		return refused, nil
	}
	if _, err := tx.ExecContext(ctx, `
INSERT INTO listener_statistics
    (listener_id, amphora_id, bytes_in, bytes_out, active_connections, total_connections, request_errors)
VALUES `+strings.Repeat("(?, ?, ?, ?, ?, ?, ?), ", written-1)+`(?, ?, ?, ?, ?, ?, ?)
ON DUPLICATE KEY UPDATE
    bytes_in = VALUES(bytes_in), bytes_out = VALUES(bytes_out),
    active_connections = VALUES(active_connections),
    total_connections = VALUES(total_connections), request_errors = VALUES(request_errors)`, values...); err != nil {
		return nil, fmt.Errorf("write %d listener_statistics rows: %w", written, err)
	}
	return refused, nil
}
