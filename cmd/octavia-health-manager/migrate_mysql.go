package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/octavia-vpp/health/internal/oslolog"
	"github.com/octavia-vpp/health/migrations"
)

// On MySQL/MariaDB, migrate verifies the schema Octavia's own
// `octavia-db-manage upgrade head` built and creates only our own tables
// (docs/user-guide.md, "Running against MariaDB/Galera").

func runMigrateMySQL(ctx context.Context, c *cli.Context, db *sql.DB, where string) error {
	log := slog.New(slog.NewTextHandler(c.App.ErrWriter, &slog.HandlerOptions{ReplaceAttr: oslolog.ReplaceLevel}))
	log.Info("verifying Octavia's MySQL/MariaDB schema", "database", where)
	res, err := migrations.MigrateMySQL(ctx, db, log)
	if errors.Is(err, migrations.ErrIncompatibleSchema) {
		for _, p := range res.Problems {
			log.Error("Octavia's schema: "+p, "database", where)
		}
		return cli.Exit(fmt.Sprintf("octavia-health-manager: migrate: %v; nothing was changed "+
			"(Octavia's schema is upgraded by `octavia-db-manage upgrade head`, never by this command)", err), exitRejected)
	}
	if err != nil {
		return cli.Exit(fmt.Sprintf("octavia-health-manager: migrate %s: %v", where, err), exitRejected)
	}
	if len(res.CreatedOwn) > 0 {
		log.Info("Octavia's schema verified; created only our own table(s), nothing of Octavia's",
			"database", where, "created", strings.Join(res.CreatedOwn, ","))
	} else {
		log.Info("Octavia's schema verified; created nothing", "database", where)
	}
	return nil
}

func runMigrateStatusMySQL(ctx context.Context, c *cli.Context, db *sql.DB, where string) error {
	st, err := migrations.StatusMySQL(ctx, db)
	if err != nil {
		return cli.Exit(fmt.Sprintf("octavia-health-manager: migrate status %s: %v", where, err), exitRejected)
	}
	out := c.App.Writer
	fmt.Fprintln(out, "MySQL/MariaDB: the schema is Octavia's (octavia-db-manage upgrade head); migrate only verifies it and creates our own table(s)")
	if len(st.Problems) == 0 {
		fmt.Fprintln(out, "verified: every table, column and lookup row the health manager uses is present")
		return nil
	}
	for _, p := range st.Problems {
		fmt.Fprintln(out, "problem:", p)
	}
	return cli.Exit("", exitRejected)
}
