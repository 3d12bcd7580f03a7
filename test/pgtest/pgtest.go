// Package pgtest runs tests against a real, throwaway PostgreSQL server.
//
// One cluster is started per test binary, on first use: initdb into a
// temporary directory, a free port on 127.0.0.1, no Unix socket, fsync off.
// The schema from package migrations is applied once to a template
// database, and every test gets its own copy of it (CREATE DATABASE ...
// TEMPLATE), so tests are isolated, may run in parallel, and pay only for a
// file copy.
//
// Usage:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		url := pgtest.NewDB(t) // postgres://... of a fresh migrated database
//		pool := pgtest.NewPool(t) // or a pgx pool on one
//		...
//	}
//
// NewEmptyDB gives a database without the schema, for migration tests.
// NewServer gives a test a server of its own, with Stop and Start, for
// database-outage tests; with ClockOffset its clock differs from the
// tests' (libfaketime, preloaded into the server only).
//
// The server binaries (initdb, postgres) are looked up in $PGTEST_BINDIR,
// then /usr/lib/postgresql/<newest>/bin (Debian), then $PATH. `make test`
// installs Debian's postgresql package when they are missing. If they are
// still missing the tests fail; they are never skipped.
//
// When the tests run as root, the server runs as the unprivileged "postgres"
// user (or "nobody" if there is none), because PostgreSQL refuses to run as
// root.
//
// The server's default TimeZone is deliberately not UTC (Pacific/Chatham,
// UTC+12:45/+13:45), so that SQL which depends on the session time zone,
// such as a bare now() written into a timestamp column, fails its tests
// instead of passing by accident.
package pgtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

const (
	superuser    = "postgres"
	templateName = "pgtest_template"
	startTimeout = 60 * time.Second
)

var (
	mainCalled atomic.Bool

	startOnce sync.Once
	current   *cluster
	startErr  error

	// adminMu serialises use of the single admin connection.
	adminMu sync.Mutex
	dbSeq   atomic.Int64
)

// Main runs the package's tests and stops the cluster afterwards, if a test
// started one. Call it from TestMain; it does not return.
func Main(m *testing.M) { os.Exit(Run(m)) }

// Run is Main without the exit: it returns the tests' exit code, for a
// TestMain that also needs another server (test/mysqltest.Wrap).
func Run(m *testing.M) int {
	mainCalled.Store(true)
	code := m.Run()
	if current != nil {
		if err := current.stop(); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: stop PostgreSQL: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	return code
}

// NewDB creates a database holding the migrated Octavia schema (a clone of
// the template) and returns its connection URL. The database is dropped
// when the test ends.
func NewDB(t testing.TB) string {
	t.Helper()
	return newDB(t, templateName)
}

// NewPool creates a database like NewDB and returns a pgx pool on it,
// closed when the test ends.
func NewPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), NewDB(t))
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// NewEmptyDB creates an empty database (a clone of template0) and returns
// its connection URL. The database is dropped when the test ends.
func NewEmptyDB(t testing.TB) string {
	t.Helper()
	return newDB(t, "template0")
}

func newDB(t testing.TB, template string) string {
	t.Helper()
	c := ensureCluster(t)
	name := fmt.Sprintf("t%d_%d", os.Getpid(), dbSeq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.admin(ctx, fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s", name, template)); err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// FORCE ends connections a test forgot to close.
		if err := c.admin(ctx, fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", name)); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	return c.url(name)
}

func ensureCluster(t testing.TB) *cluster {
	t.Helper()
	if !mainCalled.Load() {
		t.Fatal("pgtest: call pgtest.Main(m) from TestMain so that the PostgreSQL cluster is stopped after the tests")
	}
	startOnce.Do(func() {
		current, startErr = start()
	})
	if startErr != nil {
		t.Fatalf("pgtest: %v", startErr)
	}
	return current
}

type cluster struct {
	dir     string
	port    int
	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error
	logPath string

	conn *pgx.Conn // admin connection to the postgres database
}

func (c *cluster) url(db string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", superuser, c.port, db)
}

func (c *cluster) admin(ctx context.Context, sql string) error {
	adminMu.Lock()
	defer adminMu.Unlock()
	_, err := c.conn.Exec(ctx, sql)
	return err
}
