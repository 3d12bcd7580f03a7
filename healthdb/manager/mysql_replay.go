package manager

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/octavia-vpp/health/healthdb"
	"github.com/octavia-vpp/health/healthdb/mysqlstore"
	"github.com/octavia-vpp/health/internal/mysqlconf"
	"github.com/octavia-vpp/health/internal/octaviaconf"
	"github.com/octavia-vpp/health/statsdriver"
)

// OpenMySQLForReplay connects to a MySQL [database] connection for the
// offline commands, refusing a server without SKIP LOCKED, as serve does.
func OpenMySQLForReplay(ctx context.Context, cfg *octaviaconf.Config) (*sql.DB, error) {
	where := octaviaconf.RedactURL(cfg.Database.Connection)
	c, err := mysqlconf.NewConnector(mysqlstore.Config(cfg.Database.MySQL), checkMySQLVersion)
	if err != nil {
		return nil, fmt.Errorf("[database] connection %s: %v", where, err)
	}
	db := sql.OpenDB(c)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to %s: %v", where, err)
	}
	return db, nil
}

// NewReplayUpdaterMySQL is NewReplayUpdater on the MySQL store.
func NewReplayUpdaterMySQL(cfg *octaviaconf.Config, db *sql.DB, log *slog.Logger) (*healthdb.Updater, error) {
	return newReplayUpdater(cfg, mysqlstore.New(db), log)
}

// NewReplayStatsMySQL is NewReplayStats on MySQL: stats_db writes each
// heartbeat as it comes (statsdriver.MySQLDB).
func NewReplayStatsMySQL(cfg *octaviaconf.Config, db *sql.DB, log *slog.Logger) (*statsdriver.Pipeline, error) {
	reg := prometheus.NewRegistry()
	hm := &cfg.HealthManager
	return statsdriver.NewPipeline(statsdriver.PipelineConfig{
		Drivers:       cfg.ControllerWorker.StatisticsDrivers,
		Deps:          statsdriver.Deps{MySQL: db, Logger: log, Registerer: reg},
		FlushInterval: hm.StatsFlushInterval, MaxPairs: hm.StatsMaxPairs,
		Metrics: statsdriver.NewPipelineMetrics(reg), Logger: log,
		PerHeartbeat: true,
		Dialect:      statsdriver.MySQL,
	})
}
