package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/octavia-vpp/health/migrations"
	"github.com/octavia-vpp/health/test/dbserver"
)

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

// newDataDir runs initdb into a new temporary directory owned by the
// server's user.
func newDataDir() (bin, dir string, cred *syscall.Credential, retErr error) {
	bin, err := binDir()
	if err != nil {
		return "", "", nil, err
	}
	if cred, err = dbserver.User("PostgreSQL", "postgres"); err != nil {
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
	dbserver.Prepare(cmd, dir, cred, "/usr/bin:/bin", syscall.SIGINT)
}

// launch starts postgres on dir's data directory, on port (0: a free one),
// with env added to its environment.
func launch(bin, dir string, cred *syscall.Credential, port int, env []string) (*cluster, error) {
	data, logPath := filepath.Join(dir, "data"), filepath.Join(dir, "postgres.log")
	if port == 0 {
		var err error
		if port, err = dbserver.FreePort(); err != nil {
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

func (c *cluster) logTail() string { return dbserver.LogTail(c.logPath) }

// shutdown stops the server ("fast" mode: clients are disconnected and
// open transactions rolled back) and keeps its files.
func (c *cluster) shutdown() error {
	if c.conn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = c.conn.Close(ctx)
		cancel()
		c.conn = nil
	}
	return dbserver.Shutdown(c.cmd.Process, c.exited, syscall.SIGINT, "SIGINT", 30*time.Second)
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
