package main

import (
	"io"
	"log/slog"

	"github.com/urfave/cli/v2"

	"github.com/octavia-vpp/health/healthdb/manager"
	"github.com/octavia-vpp/health/heartbeat"
	"github.com/octavia-vpp/health/internal/octaviaconf"
)

// replayMySQL is replay on a MySQL/MariaDB [database] connection: the MySQL
// store, and stats_db heartbeat by heartbeat.
func replayMySQL(c *cli.Context, cfg *octaviaconf.Config, kr *heartbeat.Keyring, f io.Reader, log *slog.Logger) error {
	db, err := manager.OpenMySQLForReplay(c.Context, cfg)
	if err != nil {
		return usageError("%v", err)
	}
	defer db.Close()
	updater, err := manager.NewReplayUpdaterMySQL(cfg, db, log)
	if err != nil {
		return usageError("%v", err)
	}
	stats, err := manager.NewReplayStatsMySQL(cfg, db, log)
	if err != nil {
		return usageError("%v", err)
	}
	return replayWith(c, &manager.Replayer{Keys: kr, Updater: updater, Stats: stats, Log: log}, f)
}
