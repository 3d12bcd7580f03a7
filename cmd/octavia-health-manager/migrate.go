package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/octavia-vpp/health/healthdb/manager"
	"github.com/octavia-vpp/health/internal/octaviaconf"
	"github.com/octavia-vpp/health/internal/oslocli"
	"github.com/octavia-vpp/health/internal/oslolog"
	"github.com/octavia-vpp/health/migrations"
)

// migrateTimeout bounds a whole migrate run, including waiting up to ten
// minutes for another process's migration to release the lock.
const migrateTimeout = 15 * time.Minute

// The verbs of migrate, named as octavia-db-manage names them.
const (
	verbUpgrade = "upgrade"
	verbCurrent = "current"
	verbHistory = "history"
)

func migrateCommand() *cli.Command {
	return &cli.Command{
		Name:  "migrate",
		Usage: "create the Octavia tables in PostgreSQL, or verify existing ones (upgrade head, current, history)",
		Description: "The verbs follow octavia-db-manage's. \"migrate upgrade head\" (or \"migrate\" alone)\n" +
			"applies the embedded schema migrations to the database named by [database] connection,\n" +
			"recording Octavia 11.0.0's alembic head in alembic_version when it creates the schema.\n" +
			"Running it again, or from several hosts at once, is safe: it takes an advisory lock\n" +
			"(logging every 5 s, with the holder's PID, while another process holds it) and applies\n" +
			"only what is pending. If the database already holds an Octavia schema that these\n" +
			"migrations did not create (octavia-db-manage built it), nothing is created but our own\n" +
			"table; the columns and lookup rows the health manager uses are verified and anything\n" +
			"missing is listed. Progress goes to standard error; the exit code is non-zero on failure.",
		Action: migrateVerb(verbUpgrade),
		Subcommands: []*cli.Command{
			{
				Name:      verbUpgrade,
				Usage:     "apply pending migrations (only \"head\" is accepted as the revision)",
				ArgsUsage: "head",
				Action:    migrateVerb(verbUpgrade),
			},
			{
				Name:   verbCurrent,
				Usage:  "print the recorded alembic revision and the newest of our migrations applied",
				Action: migrateVerb(verbCurrent),
			},
			{
				Name:    verbHistory,
				Aliases: []string{"status"},
				Usage:   "list applied and pending migrations, or verify an existing Octavia schema",
				Action:  migrateVerb(verbHistory),
			},
		},
	}
}

// migrateVerb is the one place the verbs are dispatched: to the
// PostgreSQL implementations below, the only database migrate supports.
func migrateVerb(verb string) cli.ActionFunc {
	return func(c *cli.Context) error {
		if err := checkMigrateArgs(c, verb); err != nil {
			return err
		}
		db, cfg, err := openConfiguredDB(c)
		if err != nil {
			return err
		}
		defer db.Close()
		where := octaviaconf.RedactURL(cfg.Connection)
		if err := awaitDatabase(c, db, cfg); err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(c.Context, migrateTimeout)
		defer cancel()
		if migrations.IsMySQL(db) {
			// The schema is Octavia's there: upgrade verifies it, and
			// current and history report what was verified.
			if verb == verbUpgrade {
				return runMigrateMySQL(ctx, c, db, where)
			}
			return runMigrateStatusMySQL(ctx, c, db, where)
		}
		switch verb {
		case verbUpgrade:
			return pgUpgrade(ctx, c, db, where)
		case verbCurrent:
			return pgCurrent(ctx, c, db, where)
		default:
			return pgHistory(ctx, c, db, where)
		}
	}
}

// checkMigrateArgs refuses what octavia-db-manage would mean differently:
// the embedded migrations are applied together, so the only revision is
// head.
func checkMigrateArgs(c *cli.Context, verb string) error {
	args := c.Args().Slice()
	if verb == verbUpgrade && c.Command.Name == verbUpgrade && len(args) == 1 && (args[0] == "head" || args[0] == "heads") {
		return nil
	}
	if len(args) == 0 {
		return nil
	}
	if verb == verbUpgrade {
		return usageError("migrate upgrade: only the revision \"head\" is supported, not %q", strings.Join(args, " "))
	}
	return usageError("migrate %s takes no arguments, got %q", verb, strings.Join(args, " "))
}

// awaitDatabase waits for the database's first answer as serve does, and
// as oslo.db's engine does at start ([database] max_retries attempts,
// retry_interval apart; 0 makes no attempt).
func awaitDatabase(c *cli.Context, db *sql.DB, cfg *octaviaconf.Database) error {
	if cfg.MaxRetries == 0 {
		return nil
	}
	log := slog.New(slog.NewTextHandler(c.App.ErrWriter, &slog.HandlerOptions{ReplaceAttr: oslolog.ReplaceLevel}))
	err := manager.WaitForDatabase(c.Context, manager.DatabaseWait{
		Ping: db.PingContext, Where: octaviaconf.RedactURL(cfg.Connection),
		MaxRetries: cfg.MaxRetries, RetryInterval: cfg.RetryInterval, Logger: log,
	})
	if err != nil {
		return cli.Exit("octavia-health-manager: migrate: "+err.Error(), exitUnavailable)
	}
	return c.Context.Err()
}

// openConfiguredDB loads the config files and opens the database they
// name; it returns their [database] section.
func openConfiguredDB(c *cli.Context) (*sql.DB, *octaviaconf.Database, error) {
	cfg, err := octaviaconf.Load(oslocli.Files(c)...)
	if err != nil {
		return nil, nil, cli.Exit("octavia-health-manager: "+err.Error(), exitUsage)
	}
	if cfg.Database.Connection == "" {
		return nil, nil, cli.Exit("octavia-health-manager: no [database] connection in the config files "+
			"(give them with --config-file or --config-dir)", exitUsage)
	}
	var db *sql.DB
	if cfg.Database.IsMySQL() {
		db, err = migrations.OpenMySQL(cfg.Database.MySQL)
	} else {
		db, err = migrations.Open(cfg.Database.Connection)
	}
	if err != nil {
		return nil, nil, cli.Exit("octavia-health-manager: "+err.Error(), exitUsage)
	}
	return db, &cfg.Database, nil
}

func pgUpgrade(ctx context.Context, c *cli.Context, db *sql.DB, where string) error {
	log := slog.New(slog.NewTextHandler(c.App.ErrWriter, &slog.HandlerOptions{ReplaceAttr: oslolog.ReplaceLevel}))
	log.Info("migrating", "database", where)
	res, err := migrations.Migrate(ctx, db, log)
	if errors.Is(err, migrations.ErrIncompatibleSchema) {
		for _, p := range res.Problems {
			log.Error("existing Octavia schema: "+p, "database", where)
		}
		return cli.Exit(fmt.Sprintf("octavia-health-manager: migrate: %v; nothing was changed", err), exitRejected)
	}
	if err != nil {
		return cli.Exit(fmt.Sprintf("octavia-health-manager: migrate %s: %v", where, err), exitRejected)
	}
	switch {
	case res.Existing && len(res.CreatedOwn) > 0:
		log.Info("existing Octavia schema verified; created only our own table(s), nothing of Octavia's",
			"database", where, "created", strings.Join(res.CreatedOwn, ","))
	case res.Existing:
		log.Info("existing Octavia schema verified; created nothing", "database", where)
	case len(res.Applied) == 0:
		log.Info("schema already up to date; nothing applied", "database", where)
	default:
		log.Info("schema migrated", "database", where, "applied", strings.Join(res.Applied, ","))
	}
	return nil
}

func pgHistory(ctx context.Context, c *cli.Context, db *sql.DB, where string) error {
	st, err := migrations.Status(ctx, db)
	if err != nil {
		return cli.Exit(fmt.Sprintf("octavia-health-manager: migrate history %s: %v", where, err), exitRejected)
	}
	out := c.App.Writer
	if st.Existing {
		fmt.Fprintln(out, "existing Octavia schema, not created by these migrations; nothing to apply")
		if len(st.Problems) == 0 {
			fmt.Fprintln(out, "verified: every column and lookup row the health manager uses is present")
			return nil
		}
		for _, p := range st.Problems {
			fmt.Fprintln(out, "problem:", p)
		}
		return cli.Exit("", exitRejected)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tSTATE\tAPPLIED AT\tMIGRATION")
	for _, m := range st.Migrations {
		state, at := "pending", "-"
		if m.Applied {
			state, at = "applied", m.AppliedAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", m.Version, state, at, m.Name)
	}
	return tw.Flush()
}

// pgCurrent prints two lines: the alembic revision Octavia's tool sees,
// and ours.
func pgCurrent(ctx context.Context, c *cli.Context, db *sql.DB, where string) error {
	rev, err := migrations.Current(ctx, db)
	if err != nil {
		return cli.Exit(fmt.Sprintf("octavia-health-manager: migrate current %s: %v", where, err), exitRejected)
	}
	out := c.App.Writer
	switch rev.Alembic {
	case "":
		fmt.Fprintln(out, "alembic_version: none")
	case migrations.OctaviaAlembicHead:
		fmt.Fprintf(out, "alembic_version: %s (head of Octavia 11.0.0)\n", rev.Alembic)
	default:
		fmt.Fprintf(out, "alembic_version: %s (not Octavia 11.0.0's head %s)\n", rev.Alembic, migrations.OctaviaAlembicHead)
	}
	switch {
	case rev.Existing:
		fmt.Fprintln(out, "migrations: none (an Octavia schema these migrations did not create; \"migrate history\" verifies it)")
	case rev.Version == 0:
		fmt.Fprintf(out, "migrations: none (%d pending)\n", rev.Latest)
	case rev.Version >= rev.Latest:
		fmt.Fprintf(out, "migrations: %05d (head)\n", rev.Version)
	default:
		fmt.Fprintf(out, "migrations: %05d (%d pending)\n", rev.Version, rev.Latest-rev.Version)
	}
	return nil
}
