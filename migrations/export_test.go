package migrations

import (
	"context"
	"database/sql"
	"time"
)

// Tests wait for the migration lock in milliseconds, not seconds. Set
// before any test runs, so no test races on them.
func init() {
	lockRetryEvery = 20 * time.Millisecond
	lockLogEvery = 100 * time.Millisecond
}

// MigrateUpTo applies the embedded migrations up to version only, as an
// earlier release with fewer of them did.
func MigrateUpTo(ctx context.Context, db *sql.DB, version int64) error {
	p, err := newProvider(db)
	if err != nil {
		return err
	}
	_, err = p.UpTo(ctx, version)
	return err
}
