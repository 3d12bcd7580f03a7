//go:build faults

package faults

import (
	"context"
	"database/sql"
	"net/url"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/octavia-vpp/health/healthdb/manager/loadgen"
	"github.com/octavia-vpp/health/test/mysqltest"
)

// The MariaDB side of the suite: the same scenarios, with the manager on
// the MySQL store (healthdb/mysqlstore) through Octavia's mysql+pymysql
// URL, on a MariaDB server of the scenario's own (test/mysqltest) whose
// schema Octavia's alembic built.

func (d db) openMySQL() (*sql.DB, error) {
	cfg, err := mysql.ParseDSN(d.url)
	if err != nil {
		return nil, err
	}
	cfg.ParseTime, cfg.Loc = true, time.UTC
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(c), nil
}

func (d db) queryMySQL(ctx context.Context, q string, args []any, dest ...any) error {
	conn, err := d.openMySQL()
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.QueryRowContext(ctx, q, args...).Scan(dest...)
}

func (d db) seedMySQL(ctx context.Context, lc *loadgen.Config) error {
	conn, err := d.openMySQL()
	if err != nil {
		return err
	}
	defer conn.Close()
	return loadgen.SeedSQL(ctx, conn, lc)
}

// mariaDB is a scenario's own MariaDB server, as the manager and the
// scenario reach it.
type mariaDB struct {
	*mysqltest.Server
	db db
	// connection is the [database] connection an operator would write.
	connection string
}

func newMariaDB(t *testing.T) *mariaDB {
	t.Helper()
	srv := mysqltest.NewServer(t)
	cfg, err := mysql.ParseDSN(srv.DSN())
	if err != nil {
		t.Fatal(err)
	}
	u := url.URL{Scheme: "mysql+pymysql", User: url.User(cfg.User), Host: cfg.Addr, Path: "/" + cfg.DBName}
	return &mariaDB{Server: srv, db: db{t: t, url: srv.DSN()}, connection: u.String()}
}
