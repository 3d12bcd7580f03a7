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

	"github.com/octavia-vpp/health/internal/octaviaconf"
	"github.com/octavia-vpp/health/migrations"
)

// migrateTimeout bounds a whole migrate run, including waiting up to ten
// minutes for another process's migration to release the lock.
const migrateTimeout = 15 * time.Minute

func migrateCommand() *cli.Command {
	return &cli.Command{
		Name:  "migrate",
		Usage: "create the Octavia tables in PostgreSQL, or verify existing ones",
		Description: "Applies the embedded schema migrations to the database named by [database] connection.\n" +
			"Running it again, or from several hosts at once, is safe: it takes an advisory lock\n" +
			"and applies only what is pending. If the database already holds an Octavia schema\n" +
			"that these migrations did not create, nothing is created; the columns and lookup\n" +
			"rows the health manager uses are verified and anything missing is listed.\n" +
			"Progress goes to standard error; the exit code is non-zero on failure.",
		Action: runMigrate,
		Subcommands: []*cli.Command{{
			Name:   "status",
			Usage:  "list applied and pending migrations",
			Action: runMigrateStatus,
		}},
	}
}

// openConfiguredDB loads the config files and opens the database they name.
func openConfiguredDB(c *cli.Context) (*sql.DB, string, error) {
	cfg, err := octaviaconf.Load(c.StringSlice("config-file")...)
	if err != nil {
		return nil, "", cli.Exit("octavia-health-manager: "+err.Error(), exitUsage)
	}
	if cfg.Database.Connection == "" {
		return nil, "", cli.Exit("octavia-health-manager: no [database] connection in the config files "+
			"(give them with --config-file)", exitUsage)
	}
	var db *sql.DB
	if cfg.Database.IsMySQL() {
		db, err = migrations.OpenMySQL(cfg.Database.MySQL)
	} else {
		db, err = migrations.Open(cfg.Database.Connection)
	}
	if err != nil {
		return nil, "", cli.Exit("octavia-health-manager: "+err.Error(), exitUsage)
	}
	return db, octaviaconf.RedactURL(cfg.Database.Connection), nil
}

func runMigrate(c *cli.Context) error {
	db, where, err := openConfiguredDB(c)
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(c.Context, migrateTimeout)
	defer cancel()
	if migrations.IsMySQL(db) {
		return runMigrateMySQL(ctx, c, db, where)
	}

	log := slog.New(slog.NewTextHandler(c.App.ErrWriter, nil))
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

func runMigrateStatus(c *cli.Context) error {
	db, where, err := openConfiguredDB(c)
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(c.Context, migrateTimeout)
	defer cancel()

	if migrations.IsMySQL(db) {
		return runMigrateStatusMySQL(ctx, c, db, where)
	}
	st, err := migrations.Status(ctx, db)
	if err != nil {
		return cli.Exit(fmt.Sprintf("octavia-health-manager: migrate status %s: %v", where, err), exitRejected)
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
