package migrations

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// The migration lock is a PostgreSQL session advisory lock on LockID, the
// same key goose's session locker takes (earlier releases used it), so
// old and new binaries exclude each other during a rolling upgrade. It is
// taken here rather than by goose so that a waiting process can say who
// it waits for.
var (
	// lockRetryEvery is how often a waiting process tries the lock again.
	lockRetryEvery = time.Second
	// lockLogEvery is how often a waiting process says so.
	lockLogEvery = 5 * time.Second
	// lockWaitMax bounds the wait: a migration takes seconds, so ten
	// minutes means the holder is stuck.
	lockWaitMax = 10 * time.Minute
)

// lockHolder is the backend holding the migration lock, as pg_locks and
// pg_stat_activity show it.
type lockHolder struct {
	pid         int64
	application string
	client      string
	since       time.Time // when its backend started; zero if not shown
}

// withMigrationLock runs fn while holding the migration lock, waiting for
// another process's migration to finish first; while waiting it logs every
// lockLogEvery, naming the holder's PID when PostgreSQL shows it.
func withMigrationLock(ctx context.Context, db *sql.DB, logger *slog.Logger, fn func() error) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("connect for the migration lock: %w", err)
	}
	defer conn.Close()

	start := time.Now()
	var lastLog time.Time
	for {
		var got bool
		if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock($1)`, LockID).Scan(&got); err != nil {
			return fmt.Errorf("take the migration lock: %w", err)
		}
		if got {
			break
		}
		waited := time.Since(start)
		if lastLog.IsZero() || time.Since(lastLog) >= lockLogEvery {
			lastLog = time.Now()
			logLockWait(ctx, conn, logger, waited)
		}
		if waited >= lockWaitMax {
			return fmt.Errorf("another process held the migration lock (id %d) for %s; gave up", LockID, waited.Round(time.Second))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the migration lock: %w", ctx.Err())
		case <-time.After(lockRetryEvery):
		}
	}
	if since := time.Since(start); since >= lockRetryEvery {
		logger.Info("took the migration lock", "lock_id", LockID, "waited", since.Round(time.Second))
	}

	fnErr := fn()

	// A session lock outlives the transaction: release it, or drop the
	// connection rather than return it to the pool still locked.
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	var released bool
	if err := conn.QueryRowContext(uctx, `SELECT pg_advisory_unlock($1)`, LockID).Scan(&released); err != nil || !released {
		_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	}
	return fnErr
}

func logLockWait(ctx context.Context, conn *sql.Conn, logger *slog.Logger, waited time.Duration) {
	h, err := migrationLockHolder(ctx, conn)
	args := []any{"lock_id", LockID, "waited", waited.Round(time.Second)}
	switch {
	case err != nil:
		args = append(args, "holder", "unknown: "+err.Error())
	case h == nil:
		// Released between our attempt and this query, or not visible.
		args = append(args, "holder", "not shown by PostgreSQL")
	default:
		args = append(args, "holder_pid", h.pid)
		if h.application != "" {
			args = append(args, "holder_application", h.application)
		}
		if h.client != "" {
			args = append(args, "holder_client", h.client)
		}
		if !h.since.IsZero() {
			args = append(args, "holder_backend_start", h.since.UTC().Format(time.RFC3339))
		}
	}
	logger.Info("waiting for the migration lock held by another process", args...)
}

// migrationLockHolder finds who holds LockID in this database. A bigint
// advisory key shows in pg_locks as classid (high 32 bits), objid (low 32
// bits) and objsubid 1.
func migrationLockHolder(ctx context.Context, conn *sql.Conn) (*lockHolder, error) {
	var (
		h     lockHolder
		app   sql.NullString
		cli   sql.NullString
		since sql.NullTime
	)
	err := conn.QueryRowContext(ctx, `
		SELECT l.pid, a.application_name, host(a.client_addr), a.backend_start
		FROM pg_locks l
		LEFT JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 AND l.pid IS NOT NULL
		  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
		  AND (l.classid::bigint << 32) | l.objid::bigint = $1
		  AND l.pid <> pg_backend_pid()
		LIMIT 1`, LockID).Scan(&h.pid, &app, &cli, &since)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	h.application, h.client, h.since = app.String, cli.String, since.Time
	return &h, nil
}
