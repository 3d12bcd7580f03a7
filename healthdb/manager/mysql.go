package manager

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/go-sql-driver/mysql"

	"github.com/octavia-vpp/health/healthdb/mysqlstore"
	"github.com/octavia-vpp/health/internal/octaviaconf"
	"github.com/octavia-vpp/health/statsdriver"
)

// The store is chosen here, from [database] connection's scheme, and
// nowhere else: a MySQL or MariaDB URL runs the pipeline on
// healthdb/mysqlstore and statsdriver.MySQLSink through Options.Stores
// (so, as with any Stores, without the clock skew check and the status
// page's database view); anything else on PostgreSQL (pgstore).

// mysqlConfig converts a MySQL [database] connection URL to the driver's
// configuration; ok is false for a URL of another database.
var mysqlConfig = parseMySQLURL

// parseMySQLURL understands SQLAlchemy's mysql://, mysql+pymysql:// and
// mysql+mysqldb:// with user, password, host, port, database and
// unix_socket; other query parameters are refused by name.
func parseMySQLURL(connection string) (cfg *mysql.Config, ok bool, err error) {
	scheme, _, found := strings.Cut(connection, "://")
	if !found {
		return nil, false, nil
	}
	switch strings.ToLower(scheme) {
	case "mysql", "mysql+pymysql", "mysql+mysqldb":
	default:
		return nil, false, nil
	}
	u, err := url.Parse(connection)
	if err != nil {
		// url.Parse's message would echo the password.
		return nil, true, errors.New("malformed MySQL URL (percent-encode special characters in the user name and password)")
	}
	cfg = mysql.NewConfig()
	cfg.User = u.User.Username()
	cfg.Passwd, _ = u.User.Password()
	cfg.DBName = strings.TrimPrefix(u.Path, "/")
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "3306"
	}
	if host == "" {
		host = "localhost"
	}
	cfg.Net, cfg.Addr = "tcp", net.JoinHostPort(host, port)
	for k, v := range u.Query() {
		switch k {
		case "unix_socket":
			cfg.Net, cfg.Addr = "unix", v[len(v)-1]
		default:
			return nil, true, fmt.Errorf("MySQL URL parameter %q is not supported", k)
		}
	}
	return cfg, true, nil
}

// openMySQL opens the MySQL stores when [database] connection is a MySQL
// URL; isMySQL is false, and nothing is done, otherwise.
func (m *Manager) openMySQL(ctx context.Context, cfg *octaviaconf.Config) (isMySQL bool, err error) {
	mcfg, ok, err := mysqlConfig(cfg.Database.Connection)
	if !ok {
		return false, nil
	}
	if err != nil {
		return true, fmt.Errorf("[database] connection %s: %v", octaviaconf.RedactURL(cfg.Database.Connection), err)
	}
	db, err := mysqlstore.OpenDB(mcfg)
	if err != nil {
		return true, fmt.Errorf("[database] connection %s: %v", octaviaconf.RedactURL(cfg.Database.Connection), err)
	}
	db.SetMaxOpenConns(max(cfg.Database.MaxPoolSize, 2))
	db.SetMaxIdleConns(max(cfg.Database.MaxPoolSize, 2))
	if err := db.PingContext(ctx); err != nil {
		m.log.Warn("database not reachable yet; heartbeats will be retried as they arrive",
			"database", octaviaconf.RedactURL(cfg.Database.Connection), "err", err)
	}
	s := mysqlstore.New(db)
	m.mysqlDB = db
	m.opts.Stores = &Stores{Updater: s, Watcher: s, StatsSink: statsdriver.NewMySQLSink(db)}
	return true, nil
}

// checkDatabaseURL is StartupProblems' check of [database] connection,
// without connecting.
func checkDatabaseURL(cfg *octaviaconf.Config) error {
	if _, ok, err := mysqlConfig(cfg.Database.Connection); ok {
		if err != nil {
			return fmt.Errorf("[database] connection %s: %v", octaviaconf.RedactURL(cfg.Database.Connection), err)
		}
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
