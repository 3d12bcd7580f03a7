package statsdriver

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// MySQLDB is stats_db heartbeat by heartbeat on MySQL and MariaDB, for
// replay (PipelineConfig.PerHeartbeat): Octavia 11.0.0's rules (next), and
// its shape: each listener in a transaction of its own, in the message's
// order, stopping at the first one the database or the rules refuse, the
// ones before it staying written. Rows are found as Octavia's queries find
// them, by the columns' collation. serve uses MySQLSink instead.
type MySQLDB struct{ db *sql.DB }

// NewMySQLDB writes into the database behind db, whose connections parse
// times (mysqlstore.Config).
func NewMySQLDB(db *sql.DB) *MySQLDB { return &MySQLDB{db: db} }

var _ Driver = (*MySQLDB)(nil)

// Update writes one message's statistics.
func (d *MySQLDB) Update(ctx context.Context, stats []ListenerStats, deltas bool) error {
	keys := make([]statsKey, len(stats))
	for i := range stats {
		keys[i] = statsKey{stats[i].ListenerID, stats[i].AmphoraID}
		if keys[i].amphora == "" {
			keys[i].amphora = keys[i].listener // a provider driver's report
		}
	}
	for i := range stats {
		if err := d.one(ctx, &stats[i], keys[i], deltas); err != nil {
			var rules *ruleError
			if errors.As(err, &rules) || myRefusedByDB(err) {
				return notRecorded(stats, keys, i, err)
			}
			return fmt.Errorf("listener %q of amphora %q (%d written before it): %w", keys[i].listener, keys[i].amphora, i, err)
		}
	}
	return nil
}

// ruleError is a refusal by Octavia's rules (next), not by the database.
type ruleError struct{ err error }

func (e *ruleError) Error() string { return e.err.Error() }
func (e *ruleError) Unwrap() error { return e.err }

func (d *MySQLDB) one(ctx context.Context, s *ListenerStats, k statsKey, deltas bool) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var old counters
	found := true
	err = tx.QueryRowContext(ctx, `SELECT bytes_in, bytes_out, total_connections, request_errors
FROM listener_statistics WHERE listener_id = ? AND amphora_id = ? FOR UPDATE`, k.listener, k.amphora).
		Scan(&old.bytesIn, &old.bytesOut, &old.totalConns, &old.requestErrors)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		found = false
	case err != nil:
		return fmt.Errorf("read listener_statistics: %w", err)
	}
	c, conns, err := next(s, old, found, deltas)
	if err != nil {
		return &ruleError{err}
	}
	if found {
		_, err = tx.ExecContext(ctx, `UPDATE listener_statistics SET bytes_in = ?, bytes_out = ?, active_connections = ?,
    total_connections = ?, request_errors = ? WHERE listener_id = ? AND amphora_id = ?`,
			c.bytesIn, c.bytesOut, conns, c.totalConns, c.requestErrors, k.listener, k.amphora)
	} else {
		_, err = tx.ExecContext(ctx, `INSERT INTO listener_statistics
    (listener_id, amphora_id, bytes_in, bytes_out, active_connections, total_connections, request_errors)
VALUES (?, ?, ?, ?, ?, ?, ?)`, k.listener, k.amphora, c.bytesIn, c.bytesOut, conns, c.totalConns, c.requestErrors)
	}
	if err != nil {
		return err
	}
	return tx.Commit()
}
