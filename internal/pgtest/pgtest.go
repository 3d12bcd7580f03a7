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
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/octavia-vpp/health/migrations"
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
func Main(m *testing.M) {
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
	os.Exit(code)
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

// binDir finds the directory holding initdb and postgres.
func binDir() (string, error) {
	var candidates []string
	if d := os.Getenv("PGTEST_BINDIR"); d != "" {
		candidates = append(candidates, d)
	}
	debian, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	// Newest major version first; the glob sorts "9" after "15".
	sort.Slice(debian, func(i, j int) bool {
		return majorOf(debian[i]) > majorOf(debian[j])
	})
	candidates = append(candidates, debian...)
	for _, d := range candidates {
		if isExecutable(filepath.Join(d, "initdb")) && isExecutable(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		d := filepath.Dir(p)
		if isExecutable(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	return "", errors.New("PostgreSQL server binaries (initdb, postgres) not found in $PGTEST_BINDIR, " +
		"/usr/lib/postgresql/*/bin or $PATH; run `make deps` (installs Debian's postgresql package) " +
		"or `apt-get install postgresql`. Tests that need a database fail rather than skip")
}

func majorOf(dir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return n
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// serverUser returns the credentials to run the server with, or nil to run
// it as ourselves.
func serverUser() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 != nil || err2 != nil {
			continue
		}
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, nil
	}
	return nil, errors.New("running as root, but neither a postgres nor a nobody user exists to run PostgreSQL as")
}

// newDataDir runs initdb into a new temporary directory owned by the
// server's user.
func newDataDir() (bin, dir string, cred *syscall.Credential, retErr error) {
	bin, err := binDir()
	if err != nil {
		return "", "", nil, err
	}
	if cred, err = serverUser(); err != nil {
		return "", "", nil, err
	}
	if dir, err = os.MkdirTemp("", "pgtest-"); err != nil {
		return "", "", nil, fmt.Errorf("create temporary directory: %w", err)
	}
	defer func() {
		if retErr != nil {
			os.RemoveAll(dir)
		}
	}()
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return "", "", nil, fmt.Errorf("hand %s to uid %d: %w", dir, cred.Uid, err)
		}
	}
	initdb := exec.Command(filepath.Join(bin, "initdb"),
		"-D", filepath.Join(dir, "data"), "-U", superuser, "--auth=trust", "--encoding=UTF8",
		"--locale=C", "--no-sync", "--no-instructions")
	prepare(initdb, dir, cred)
	if out, err := initdb.CombinedOutput(); err != nil {
		return "", "", nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	return bin, dir, cred, nil
}

// launchOnFreePort starts the server on a free port. The port is picked by
// binding and releasing it, so another process may grab it in between;
// retry with a new one if the server fails.
func launchOnFreePort(bin, dir string, cred *syscall.Credential, env []string) (c *cluster, err error) {
	for attempt := 0; attempt < 5; attempt++ {
		if c, err = launch(bin, dir, cred, 0, env); err == nil {
			return c, nil
		}
	}
	return nil, err
}

func start() (_ *cluster, retErr error) {
	bin, dir, cred, err := newDataDir()
	if err != nil {
		return nil, err
	}
	defer func() {
		if retErr != nil {
			os.RemoveAll(dir)
		}
	}()
	c, err := launchOnFreePort(bin, dir, cred, nil)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if err := c.buildTemplate(ctx); err != nil {
		_ = c.kill()
		return nil, fmt.Errorf("build template database: %w", err)
	}
	return c, nil
}

func prepare(cmd *exec.Cmd, dir string, cred *syscall.Credential) {
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C", "HOME=" + dir}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: cred,
		// If the test binary dies without running Main's cleanup, the
		// server is told to shut down rather than left running.
		Pdeathsig: syscall.SIGINT,
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// launch starts postgres on dir's data directory, on port (0: a free one),
// with env added to its environment.
func launch(bin, dir string, cred *syscall.Credential, port int, env []string) (*cluster, error) {
	data, logPath := filepath.Join(dir, "data"), filepath.Join(dir, "postgres.log")
	if port == 0 {
		var err error
		if port, err = freePort(); err != nil {
			return nil, err
		}
	}
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open server log: %w", err)
	}
	defer logFile.Close()
	cmd := exec.Command(filepath.Join(bin, "postgres"),
		"-D", data,
		"-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories=",
		"-c", "fsync=off",
		"-c", "synchronous_commit=off",
		"-c", "full_page_writes=off",
		"-c", "max_connections=300",
		"-c", "TimeZone=Pacific/Chatham",
	)
	prepare(cmd, dir, cred)
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	c := &cluster{dir: dir, port: port, cmd: cmd, exited: make(chan struct{}), logPath: logPath}
	go func() {
		c.waitErr = cmd.Wait()
		close(c.exited)
	}()

	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if err := c.connect(ctx); err != nil {
		_ = c.kill()
		return nil, fmt.Errorf("PostgreSQL did not come up on port %d: %w\n%s", port, err, c.logTail())
	}
	return c, nil
}

func (c *cluster) connect(ctx context.Context) error {
	for {
		select {
		case <-c.exited:
			return fmt.Errorf("server exited: %v", c.waitErr)
		default:
		}
		conn, err := pgx.Connect(ctx, c.url("postgres"))
		if err == nil {
			c.conn = conn
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
		case <-c.exited:
			return fmt.Errorf("server exited: %v", c.waitErr)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// buildTemplate applies the migrations to the template database through
// the same code path the migrate command uses.
func (c *cluster) buildTemplate(ctx context.Context) error {
	if err := c.admin(ctx, "CREATE DATABASE "+templateName); err != nil {
		return err
	}
	db, err := migrations.Open(c.url(templateName))
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := migrations.Migrate(ctx, db, nil); err != nil {
		return err
	}
	// CREATE DATABASE ... TEMPLATE refuses a template that has sessions.
	return db.Close()
}

func (c *cluster) logTail() string {
	b, err := os.ReadFile(c.logPath)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	return "server log:\n" + strings.Join(lines, "\n")
}

// shutdown stops the server ("fast" mode: clients are disconnected and
// open transactions rolled back) and keeps its files.
func (c *cluster) shutdown() error {
	if c.conn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = c.conn.Close(ctx)
		cancel()
		c.conn = nil
	}
	_ = c.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-c.exited:
		return nil
	case <-time.After(30 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.exited
		return errors.New("server ignored SIGINT for 30s and was killed")
	}
}

func (c *cluster) kill() error {
	_ = c.cmd.Process.Kill()
	<-c.exited
	return nil
}

// stop shuts the server down ("fast" mode) and removes its files.
func (c *cluster) stop() error {
	err := c.shutdown()
	if rmErr := os.RemoveAll(c.dir); rmErr != nil && err == nil {
		err = fmt.Errorf("remove %s: %w", c.dir, rmErr)
	}
	return err
}

// Server is a PostgreSQL server of one test's own, which the test may stop
// and start again, for outage tests. Its "postgres" database holds the
// migrated schema. It is removed when the test ends.
type Server struct {
	t    testing.TB
	bin  string
	dir  string
	cred *syscall.Credential
	port int
	env  []string
	c    *cluster
}

// ServerOption changes how NewServer runs its server.
type ServerOption func(*serverOptions) error

type serverOptions struct{ env []string }

// LibfaketimePaths are where ClockOffset looks for libfaketime (Debian's
// libfaketime package), after $PGTEST_LIBFAKETIME.
var LibfaketimePaths = []string{
	"/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
	"/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
	"/usr/lib/faketime/libfaketime.so.1",
}

// ClockOffset runs the server with its clock offset from the real one
// (positive: ahead; whole seconds), by preloading libfaketime into the server process
// only, so that tests can show which clock a time came from. `make test`
// installs Debian's faketime package; when libfaketime is still missing,
// NewServer fails the test rather than skip it.
func ClockOffset(offset time.Duration) ServerOption {
	return func(o *serverOptions) error {
		lib := os.Getenv("PGTEST_LIBFAKETIME")
		if lib == "" {
			for _, p := range LibfaketimePaths {
				if _, err := os.Stat(p); err == nil {
					lib = p
					break
				}
			}
		}
		if lib == "" {
			return errors.New("libfaketime not found (looked in $PGTEST_LIBFAKETIME and " +
				strings.Join(LibfaketimePaths, ", ") + "); run `make deps` or `apt-get install faketime`")
		}
		o.env = append(o.env, "LD_PRELOAD="+lib,
			fmt.Sprintf("FAKETIME=%+ds", int64(offset/time.Second)),
			// Offset the wall clock only; the server's timeouts run on
			// the monotonic clock, which stays real.
			"FAKETIME_DONT_FAKE_MONOTONIC=1")
		return nil
	}
}

// NewServer starts a dedicated server.
func NewServer(t testing.TB, opts ...ServerOption) *Server {
	t.Helper()
	var o serverOptions
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			t.Fatalf("pgtest: %v", err)
		}
	}
	bin, dir, cred, err := newDataDir()
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	c, err := launchOnFreePort(bin, dir, cred, o.env)
	if err != nil {
		os.RemoveAll(dir)
		t.Fatalf("pgtest: %v", err)
	}
	s := &Server{t: t, bin: bin, dir: dir, cred: cred, port: c.port, env: o.env, c: c}
	t.Cleanup(func() {
		if s.c != nil {
			_ = s.c.shutdown()
		}
		os.RemoveAll(dir)
	})
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	db, err := migrations.Open(c.url("postgres"))
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	defer db.Close()
	if _, err := migrations.Migrate(ctx, db, nil); err != nil {
		t.Fatalf("pgtest: migrate: %v", err)
	}
	return s
}

// URL is the connection URL of the server's "postgres" database.
func (s *Server) URL() string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/postgres?sslmode=disable", superuser, s.port)
}

// Stop shuts the server down, disconnecting every client.
func (s *Server) Stop() {
	s.t.Helper()
	if err := s.c.shutdown(); err != nil {
		s.t.Fatalf("pgtest: stop: %v", err)
	}
	s.c = nil
}

// Start brings a stopped server back on the same port.
func (s *Server) Start() {
	s.t.Helper()
	c, err := launch(s.bin, s.dir, s.cred, s.port, s.env)
	if err != nil {
		s.t.Fatalf("pgtest: restart on port %d: %v", s.port, err)
	}
	s.c = c
}
