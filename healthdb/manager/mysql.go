package manager

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/octavia-vpp/health/healthdb/mysqlstore"
	"github.com/octavia-vpp/health/internal/octaviaconf"
	"github.com/octavia-vpp/health/migrations"
	"github.com/octavia-vpp/health/statsdriver"
)

// The store is chosen here, from [database] connection, and nowhere else:
// a MySQL or MariaDB URL (octaviaconf's Database.MySQL) runs the pipeline
// on healthdb/mysqlstore and statsdriver.MySQLSink through Options.Stores
// (so, as with any Stores, without the clock skew check and the status
// page's database view); anything else runs on PostgreSQL (pgstore).

// openMySQL opens the MySQL stores when [database] connection is a MySQL
// URL; isMySQL is false, and nothing is done, otherwise. A server that is
// reachable must have SELECT ... FOR UPDATE SKIP LOCKED (MariaDB >= 10.6,
// MySQL >= 8.0), or the manager refuses to start; one that is not yet
// reachable is retried by every batch, as with PostgreSQL.
func (m *Manager) openMySQL(ctx context.Context, cfg *octaviaconf.Config) (isMySQL bool, err error) {
	if !cfg.Database.IsMySQL() {
		return false, nil
	}
	where := octaviaconf.RedactURL(cfg.Database.Connection)
	db, err := mysqlstore.OpenDB(cfg.Database.MySQL)
	if err != nil {
		return true, fmt.Errorf("[database] connection %s: %v", where, err)
	}
	pool := max(cfg.Database.MaxPoolSize, 2)
	db.SetMaxOpenConns(pool)
	db.SetMaxIdleConns(pool)
	if err := db.PingContext(ctx); err != nil {
		m.log.Warn("database not reachable yet; heartbeats will be retried as they arrive",
			"database", where, "err", err)
	} else if _, err := migrations.MySQLServerVersion(ctx, db); err != nil {
		db.Close()
		return true, fmt.Errorf("[database] connection %s: %v", where, err)
	}
	s := mysqlstore.New(db)
	m.mysqlDB = db
	m.opts.Stores = &Stores{Updater: s, Watcher: s, StatsSink: statsdriver.NewMySQLSink(db)}
	return true, nil
}

// checkDatabaseURL is StartupProblems' check of [database] connection,
// without connecting. A MySQL URL was checked whole when it loaded.
func checkDatabaseURL(cfg *octaviaconf.Config) error {
	if cfg.Database.IsMySQL() {
		return nil
	}
	pool, err := NewPool(context.Background(), cfg, 1)
	if err != nil {
		return err
	}
	pool.Close()
	return nil
}

func closeMySQL(db *sql.DB) {
	if db != nil {
		db.Close()
	}
}
