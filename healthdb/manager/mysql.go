package manager

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/octavia-vpp/health/healthdb/mysqlstore"
	"github.com/octavia-vpp/health/internal/mysqlconf"
	"github.com/octavia-vpp/health/internal/octaviaconf"
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
// reachable is awaited as with PostgreSQL.
func (m *Manager) openMySQL(ctx context.Context, cfg *octaviaconf.Config) (isMySQL bool, err error) {
	if !cfg.Database.IsMySQL() {
		return false, nil
	}
	where := octaviaconf.RedactURL(cfg.Database.Connection)
	// Every new connection checks the server's version, so that a
	// database address moved to an older node later is refused too: its
	// writes then fail, and are counted, never a failover.
	connect := mysqlconf.NewConnector
	if cfg.HealthManager.Shadow {
		connect = mysqlconf.NewReadOnlyConnector
	}
	c, err := connect(mysqlstore.Config(cfg.Database.MySQL), checkMySQLVersion)
	if err != nil {
		return true, fmt.Errorf("[database] connection %s: %v", where, err)
	}
	db := sql.OpenDB(c)
	pool := max(cfg.Database.MaxPoolSize, 2)
	db.SetMaxOpenConns(pool)
	db.SetMaxIdleConns(pool)
	// A server reachable now and too old is refused before anything is
	// bound; one not reachable yet is awaited by Run (awaitDatabase),
	// which refuses it as well when it answers.
	if err := db.PingContext(ctx); errors.Is(err, mysqlconf.ErrServerTooOld) {
		db.Close()
		return true, fmt.Errorf("[database] connection %s: %v", where, err)
	}
	s := mysqlstore.New(db)
	m.mysqlDB = db
	m.ping = db.PingContext
	m.opts.Stores = &Stores{Updater: s, Watcher: s, StatsSink: statsdriver.NewMySQLSink(db), StatsDialect: statsdriver.MySQL,
		Shadow: s}
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

// checkMySQLVersion judges SELECT VERSION() of each new connection; tests
// substitute a fake version string.
var checkMySQLVersion = mysqlconf.CheckServerVersion

func closeMySQL(db *sql.DB) {
	if db != nil {
		db.Close()
	}
}
