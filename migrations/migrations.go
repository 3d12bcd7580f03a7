// Package migrations holds the Octavia-compatible PostgreSQL schema as
// embedded SQL and applies it with pressly/goose v3.
//
// Octavia's own alembic migrations cannot run on PostgreSQL (they drop a
// constraint called "PRIMARY"), so these files reproduce Octavia 11's
// migrated schema: names, types as mapped in docs/schema.md, nullability,
// keys, foreign keys, indexes and lookup rows, and record Octavia 11's
// alembic head in alembic_version. docs/schema.md lists what they add
// beyond Octavia.
//
// Three situations are told apart before anything is written:
//
//   - a database these migrations manage (their version table records
//     them): pending migrations are applied, or nothing happens;
//   - an empty database: the migrations are applied;
//   - a database that already holds an Octavia schema made by someone else
//     (a load_balancer or alembic_version table): nothing of Octavia's is
//     created or changed; the columns and lookup rows the health manager
//     uses are verified instead, and only our own prefixed table
//     (StatsFlushTable) is created.
//
// Migrations run under a PostgreSQL session advisory lock, so two processes
// migrating at once serialise and both succeed.
package migrations

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"log/slog"
	"strings"
	"time"

	"github.com/pressly/goose/v3"
)

//go:embed sql/*.sql
var embedded embed.FS

// VersionTable is the table in which goose records applied migrations. It
// has its own name, not goose's default, so that another goose-managed
// application sharing the database cannot be mistaken for us.
const VersionTable = "octavia_vpp_health_schema_version"

// StatsFlushTable is our own table of listener-statistics flush keys
// (docs/stats.md). It is the one table migrate creates in a database whose
// Octavia schema someone else made.
const StatsFlushTable = "ovh_stats_flush"

// ownTablesMigration is the migration file that creates StatsFlushTable;
// its Up part is written with IF NOT EXISTS so that it can also run on its
// own, outside goose.
const ownTablesMigration = "sql/00002_ovh_stats_flush.sql"

// LockID keys the advisory lock migrations run under. It is derived from
// the module path rather than goose's default id for the same reason as
// VersionTable. Exported so that tools and tests can find its holder in
// pg_locks (classid 0, objid LockID, objsubid 1).
var LockID = int64(crc32.ChecksumIEEE([]byte("github.com/octavia-vpp/health/migrations")))

// OctaviaAlembicHead is the alembic revision of Octavia 11.0.0's newest
// migration (octavia/db/migration/alembic_migrations/versions), which
// migration 00004 records in alembic_version so that Octavia's own
// octavia-db-manage finds the schema current.
const OctaviaAlembicHead = "0995c26fc506"

// ErrIncompatibleSchema is returned when an existing Octavia schema lacks a
// column or lookup row the health manager needs, or has it with an
// incompatible type.
var ErrIncompatibleSchema = errors.New("existing Octavia schema is not usable by the health manager")

// Result says what Migrate did.
type Result struct {
	// Existing is true when the database already held an Octavia schema
	// that these migrations did not create. Nothing of Octavia's was
	// written; the schema was verified, and Problems lists what failed
	// verification. If nothing did, our own StatsFlushTable was created
	// (if missing), and nothing else.
	Existing bool
	// CreatedOwn names our own tables created in an existing schema.
	CreatedOwn []string
	// Applied names the migration files applied by this call, in order.
	// It is empty when the schema was already current.
	Applied []string
	// Problems lists, for an existing schema, every missing or
	// incompatible column and missing lookup row.
	Problems []string
}

// Migrate brings the database to the latest schema, or verifies an existing
// Octavia schema without touching Octavia's tables (adding only ours). Progress is logged to logger (which
// may be nil). An existing schema that fails verification yields the
// Result together with an error wrapping ErrIncompatibleSchema.
func Migrate(ctx context.Context, db *sql.DB, logger *slog.Logger) (*Result, error) {
	logger = orDiscard(logger)
	existing, err := isForeignOctaviaSchema(ctx, db)
	if err != nil {
		return nil, err
	}
	if existing {
		logger.Info("database already holds an Octavia schema not created by these migrations; verifying it, creating nothing of Octavia's")
		problems, err := Verify(ctx, db)
		if err != nil {
			return nil, err
		}
		res := &Result{Existing: true, Problems: problems}
		if len(problems) > 0 {
			return res, fmt.Errorf("%w: %d problem(s)", ErrIncompatibleSchema, len(problems))
		}
		logger.Info("verified existing Octavia schema: every column and lookup row the health manager uses is present")
		created, err := createOwnTables(ctx, db)
		if err != nil {
			return res, err
		}
		if created {
			res.CreatedOwn = []string{StatsFlushTable}
			logger.Info("created our own table in the existing schema; nothing of Octavia's was changed", "table", StatsFlushTable)
		}
		return res, nil
	}

	p, err := newProvider(db)
	if err != nil {
		return nil, err
	}
	var results []*goose.MigrationResult
	err = withMigrationLock(ctx, db, logger, func() error {
		var err error
		results, err = p.Up(ctx)
		return err
	})
	res := &Result{}
	for _, r := range results {
		if r.Error == nil {
			res.Applied = append(res.Applied, r.Source.Path)
			logger.Info("applied migration", "migration", r.Source.Path, "duration", r.Duration.Round(time.Millisecond))
		}
	}
	if err != nil {
		return res, fmt.Errorf("apply migrations: %w", err)
	}
	if len(res.Applied) == 0 {
		logger.Info("schema is up to date; nothing to apply")
	}
	return res, nil
}

// MigrationState is one migration file and whether it has been applied.
type MigrationState struct {
	Version   int64
	Name      string
	Applied   bool
	AppliedAt time.Time // zero when pending
}

// StatusReport is what Status found.
type StatusReport struct {
	// Existing is true for an Octavia schema these migrations did not
	// create; Migrations is then empty and Problems holds the result of
	// verifying it.
	Existing   bool
	Migrations []MigrationState
	Problems   []string
}

// Status lists the applied and pending migrations, or, for an existing
// Octavia schema, the result of verifying it. On a database these
// migrations have never touched it creates goose's version table, as
// every goose operation does; it creates nothing of Octavia's.
func Status(ctx context.Context, db *sql.DB) (*StatusReport, error) {
	existing, err := isForeignOctaviaSchema(ctx, db)
	if err != nil {
		return nil, err
	}
	if existing {
		problems, err := Verify(ctx, db)
		if err != nil {
			return nil, err
		}
		var own bool
		if err := db.QueryRowContext(ctx, `SELECT to_regclass($1) IS NOT NULL`, StatsFlushTable).Scan(&own); err != nil {
			return nil, fmt.Errorf("inspect database for %s: %w", StatsFlushTable, err)
		}
		if !own {
			problems = append(problems, "missing table "+StatsFlushTable+
				" (ours, for exactly-once statistics): run migrate to create it")
		}
		return &StatusReport{Existing: true, Problems: problems}, nil
	}
	p, err := newProvider(db)
	if err != nil {
		return nil, err
	}
	sts, err := p.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("read migration status: %w", err)
	}
	rep := &StatusReport{}
	for _, s := range sts {
		rep.Migrations = append(rep.Migrations, MigrationState{
			Version:   s.Source.Version,
			Name:      s.Source.Path,
			Applied:   s.State == goose.StateApplied,
			AppliedAt: s.AppliedAt,
		})
	}
	return rep, nil
}

// Revision is what `migrate current` reports.
type Revision struct {
	// Existing is true for an Octavia schema these migrations did not
	// create; Version is then 0.
	Existing bool
	// Version is the newest of our migrations applied, 0 for none.
	Version int64
	// Latest is the newest of our migrations.
	Latest int64
	// Alembic is the revision recorded in alembic_version, "" if none.
	Alembic string
}

// Current reports the schema's revision without changing anything (on a
// database these migrations never touched it creates nothing, not even
// goose's version table).
func Current(ctx context.Context, db *sql.DB) (*Revision, error) {
	p, err := newProvider(db)
	if err != nil {
		return nil, err
	}
	rev := &Revision{}
	sources := p.ListSources()
	if len(sources) > 0 {
		rev.Latest = sources[len(sources)-1].Version
	}
	if rev.Existing, err = isForeignOctaviaSchema(ctx, db); err != nil {
		return nil, err
	}
	var ours, alembic bool
	if err := db.QueryRowContext(ctx, `SELECT to_regclass($1) IS NOT NULL, to_regclass('alembic_version') IS NOT NULL`,
		VersionTable).Scan(&ours, &alembic); err != nil {
		return nil, fmt.Errorf("inspect database: %w", err)
	}
	if ours && !rev.Existing {
		if rev.Version, err = p.GetDBVersion(ctx); err != nil {
			return nil, fmt.Errorf("read %s: %w", VersionTable, err)
		}
	}
	if alembic {
		// alembic keeps one row; with branches several, joined as alembic
		// prints them.
		err := db.QueryRowContext(ctx, `SELECT coalesce(string_agg(version_num, ',' ORDER BY version_num), '') FROM alembic_version`).Scan(&rev.Alembic)
		if err != nil {
			return nil, fmt.Errorf("read alembic_version: %w", err)
		}
	}
	return rev, nil
}

func newProvider(db *sql.DB) (*goose.Provider, error) {
	fsys, err := fs.Sub(embedded, "sql")
	if err != nil {
		return nil, fmt.Errorf("open embedded migrations: %w", err)
	}
	// No session locker: Migrate holds the migration lock itself
	// (withMigrationLock), to say whom it waits for.
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys,
		goose.WithTableName(VersionTable),
		// Only the embedded files count; never migrations registered in
		// goose's package-level registry by some other import.
		goose.WithDisableGlobalRegistry(true),
		// goose's own logging is per statement; Migrate logs per
		// migration instead.
		goose.WithSlog(orDiscard(nil)),
	)
	if err != nil {
		return nil, fmt.Errorf("create migration provider: %w", err)
	}
	return p, nil
}

// isForeignOctaviaSchema reports whether the database holds an Octavia
// schema that these migrations did not create.
//
// The order of the two queries matters when another process is migrating
// concurrently: goose commits the version row in the same transaction as
// the tables, so once load_balancer is visible, the row is too.
func isForeignOctaviaSchema(ctx context.Context, db *sql.DB) (bool, error) {
	var lb, alembic, ours bool
	err := db.QueryRowContext(ctx, `SELECT
		to_regclass('load_balancer') IS NOT NULL,
		to_regclass('alembic_version') IS NOT NULL,
		to_regclass($1) IS NOT NULL`, VersionTable).Scan(&lb, &alembic, &ours)
	if err != nil {
		return false, fmt.Errorf("inspect database for an existing schema: %w", err)
	}
	if !lb && !alembic {
		return false, nil
	}
	if ours {
		var recorded bool
		// VersionTable is a constant, so building the statement is safe.
		q := fmt.Sprintf(`SELECT EXISTS (SELECT 1 FROM %s WHERE version_id > 0 AND is_applied)`, VersionTable)
		if err := db.QueryRowContext(ctx, q).Scan(&recorded); err != nil {
			return false, fmt.Errorf("read %s: %w", VersionTable, err)
		}
		if recorded {
			return false, nil
		}
	}
	return true, nil
}

// createOwnTables creates StatsFlushTable from its migration's Up part,
// outside goose, and reports whether it was missing.
func createOwnTables(ctx context.Context, db *sql.DB) (bool, error) {
	var exists bool
	if err := db.QueryRowContext(ctx, `SELECT to_regclass($1) IS NOT NULL`, StatsFlushTable).Scan(&exists); err != nil {
		return false, fmt.Errorf("inspect database for %s: %w", StatsFlushTable, err)
	}
	if exists {
		return false, nil
	}
	b, err := embedded.ReadFile(ownTablesMigration)
	if err != nil {
		return false, fmt.Errorf("read %s: %w", ownTablesMigration, err)
	}
	_, up, ok := strings.Cut(string(b), "-- +goose Up")
	if ok {
		up, _, ok = strings.Cut(up, "-- +goose Down")
	}
	if !ok {
		return false, fmt.Errorf("%s lacks its goose Up/Down markers", ownTablesMigration)
	}
	if _, err := db.ExecContext(ctx, up); err != nil {
		return false, fmt.Errorf("create %s: %w", StatsFlushTable, err)
	}
	return true, nil
}

func orDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}
