// Package mysqltest runs tests against a real, throwaway MariaDB server.
//
// One server is started per test binary, on first use: mariadb-install-db
// into a temporary directory, mariadbd on a free port on 127.0.0.1 (and a
// Unix socket in that directory), with small InnoDB buffers and no log
// flush at commit, so that it starts in a few seconds. Octavia's schema is
// built once, on a template database, by Octavia's own alembic migrations
// (`octavia-db-manage upgrade head`, Debian's python3-octavia with
// python3-pymysql), plus our own tables (migrations/sql/mysql). Every test
// gets its own copy of it: the template's CREATE TABLE statements are
// replayed into a new database and its rows (the lookup tables,
// alembic_version) copied, so tests are isolated and may run in parallel.
// The template's schema is cached between test binaries (see cachePath).
//
// Usage:
//
//	func TestMain(m *testing.M) { mysqltest.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		dsn := mysqltest.NewDB(t) // go-sql-driver/mysql DSN of a fresh database
//		db := mysqltest.NewSQLDB(t) // or a *sql.DB on one
//		...
//	}
//
// NewEmptyDB gives a database without any table. NewServer gives a test a
// server of its own, with Stop and Start, for database-outage tests.
//
// DSNs name the user root, without a password, over TCP; the server keeps
// its grant tables, so tests may create users with fewer privileges
// (Server.Admin, or Admin for the shared server).
//
// The binaries (mariadb-install-db, mariadbd) are looked up in
// $MYSQLTEST_BINDIR, then /usr/bin, /usr/sbin and $PATH. `make test`
// installs Debian's mariadb-server, python3-octavia and python3-pymysql
// when they are missing. If they are still missing the tests fail; they
// are never skipped.
//
// When the tests run as root, the server runs as the unprivileged "mysql"
// user (or "nobody" if there is none).
//
// The server's time zone is deliberately not UTC (+12:45), so that SQL
// which depends on the session time zone, such as NOW() written into one
// of Octavia's UTC DATETIME columns, fails its tests instead of passing by
// accident.
package mysqltest

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

const (
	templateName = "mysqltest_template"
	startTimeout = 60 * time.Second
	// schemaTimeout bounds octavia-db-manage upgrade head, about 15 s on
	// an idle machine.
	schemaTimeout = 5 * time.Minute
)

var (
	mainCalled atomic.Bool

	startOnce sync.Once
	current   *server
	tmpl      *template
	startErr  error

	dbSeq atomic.Int64
)

// Main runs the package's tests and stops the server afterwards, if a test
// started one. Call it from TestMain; it does not return.
func Main(m *testing.M) { os.Exit(Wrap(m.Run)) }

// Wrap runs the tests through run (m.Run, or another harness's runner,
// such as test/pgtest.Run) and stops the server afterwards; it returns
// the exit code. A TestMain that needs both servers:
//
//	func TestMain(m *testing.M) { os.Exit(mysqltest.Wrap(func() int { return pgtest.Run(m) })) }
func Wrap(run func() int) int {
	mainCalled.Store(true)
	code := run()
	if current != nil {
		if err := current.stop(); err != nil {
			fmt.Fprintf(os.Stderr, "mysqltest: stop MariaDB: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	return code
}

// NewDB creates a database holding Octavia's schema as its alembic builds
// it, plus our own tables, and returns its DSN. The database is dropped
// when the test ends.
func NewDB(t testing.TB) string {
	t.Helper()
	s := ensureServer(t)
	name := newName()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := tmpl.clone(ctx, s, name); err != nil {
		t.Fatalf("mysqltest: create database %s: %v", name, err)
	}
	dropAtCleanup(t, s, name)
	return s.dsn(name)
}

// NewSQLDB creates a database like NewDB and returns a *sql.DB on it
// (parseTime on, times in UTC), closed when the test ends.
func NewSQLDB(t testing.TB) *sql.DB {
	t.Helper()
	return Open(t, NewDB(t), func(cfg *mysql.Config) { cfg.ParseTime, cfg.Loc = true, time.UTC })
}

// Open opens dsn with the driver options adjust sets (nil: none), closed
// at the test's end.
func Open(t testing.TB, dsn string, adjust func(*mysql.Config)) *sql.DB {
	t.Helper()
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatalf("mysqltest: %v", err)
	}
	if adjust != nil {
		adjust(cfg)
	}
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatalf("mysqltest: %v", err)
	}
	db := sql.OpenDB(c)
	t.Cleanup(func() { db.Close() })
	return db
}

// NewEmptyDB creates an empty database and returns its DSN. The database
// is dropped when the test ends.
func NewEmptyDB(t testing.TB) string {
	t.Helper()
	s := ensureServer(t)
	name := newName()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.admin(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("mysqltest: create database %s: %v", name, err)
	}
	dropAtCleanup(t, s, name)
	return s.dsn(name)
}

// Admin runs statements as root on the shared server, for instance to
// create a user with fewer privileges.
func Admin(t testing.TB, stmts ...string) {
	t.Helper()
	s := ensureServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, q := range stmts {
		if err := s.admin(ctx, q); err != nil {
			t.Fatalf("mysqltest: %s: %v", q, err)
		}
	}
}

// OctaviaDBManage builds Octavia's schema on the database of dsn (which
// must exist and be empty) with `octavia-db-manage upgrade head`, as an
// operator would. NewDB's copies of the template are much faster; this is
// for tests that want the real thing on a database of their own.
func OctaviaDBManage(t testing.TB, dsn string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), schemaTimeout)
	defer cancel()
	if err := octaviaDBManage(ctx, t.TempDir(), dsn); err != nil {
		t.Fatalf("mysqltest: %v", err)
	}
}

func newName() string {
	return fmt.Sprintf("t%d_%d", os.Getpid(), dbSeq.Add(1))
}

func dropAtCleanup(t testing.TB, s *server, name string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// Connections a test forgot to close would hold metadata locks.
		s.killSessionsOf(ctx, name)
		if err := s.admin(ctx, "DROP DATABASE IF EXISTS "+name); err != nil {
			t.Errorf("mysqltest: drop database %s: %v", name, err)
		}
	})
}

func ensureServer(t testing.TB) *server {
	t.Helper()
	if !mainCalled.Load() {
		t.Fatal("mysqltest: call mysqltest.Main(m) from TestMain so that the MariaDB server is stopped after the tests")
	}
	startOnce.Do(func() {
		current, tmpl, startErr = start()
	})
	if startErr != nil {
		t.Fatalf("mysqltest: %v", startErr)
	}
	return current
}

func start() (*server, *template, error) {
	s, err := newServer(nil)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), schemaTimeout)
	defer cancel()
	tp, err := buildTemplate(ctx, s)
	if err != nil {
		_ = s.stop()
		return nil, nil, fmt.Errorf("build the template database: %w", err)
	}
	return s, tp, nil
}
