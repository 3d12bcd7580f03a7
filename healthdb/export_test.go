package healthdb

import "github.com/jackc/pgx/v5/pgxpool"

// The PostgreSQL store lives in healthdb/pgstore, which imports this
// package, so this package's internal tests cannot import it. The
// external test package sets pgStoreFor (pgstore_hook_test.go), and these
// tests reach the store through NewStore.

// PGTestStore is what the internal tests use of the PostgreSQL store.
type PGTestStore interface {
	UpdaterStore
	WatcherStore
	TopologyCacher
}

// PGStoreFor makes a PostgreSQL store on a pool; set before the tests run.
var PGStoreFor func(*pgxpool.Pool) PGTestStore

// NewStore is the PostgreSQL store on db.
func NewStore(db *pgxpool.Pool) PGTestStore { return PGStoreFor(db) }

// dbNow is the database server's clock as naive UTC, as the PostgreSQL
// store writes it.
const dbNow = `(now() AT TIME ZONE 'UTC')`

// WaitZombieDeletes blocks until no zombie delete is queued or running.
func (u *Updater) WaitZombieDeletes() { u.zombies.wait() }

// CloseZombieDeletes drops the queued zombie deletes and waits for those
// running, as the end of Run does.
func (u *Updater) CloseZombieDeletes() { u.zombies.close() }
