package mysqltest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/octavia-vpp/health/test/dbserver"
)

// binaries finds mariadb-install-db and mariadbd.
func binaries() (installDB, server string, err error) {
	var dirs []string
	if d := os.Getenv("MYSQLTEST_BINDIR"); d != "" {
		dirs = append(dirs, d)
	}
	dirs = append(dirs, "/usr/bin", "/usr/sbin")
	dirs = append(dirs, filepath.SplitList(os.Getenv("PATH"))...)
	find := func(name string) string {
		for _, d := range dirs {
			p := filepath.Join(d, name)
			if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
				return p
			}
		}
		return ""
	}
	installDB, server = find("mariadb-install-db"), find("mariadbd")
	if installDB == "" || server == "" {
		return "", "", errors.New("MariaDB server binaries (mariadb-install-db, mariadbd) not found in " +
			"$MYSQLTEST_BINDIR, /usr/bin, /usr/sbin or $PATH; run `make deps` (installs Debian's mariadb-server) " +
			"or `apt-get install mariadb-server`. Tests that need a database fail rather than skip")
	}
	return installDB, server, nil
}

// serverFlags are shared by mariadb-install-db and mariadbd, so that the
// InnoDB files the first creates suit the second. Durability is traded for
// speed: a test server's data does not outlive the test.
func serverFlags(dir string) []string {
	return []string{
		"--no-defaults",
		"--datadir=" + filepath.Join(dir, "data"),
		"--tmpdir=" + dir,
		"--innodb-buffer-pool-size=32M",
		"--innodb-log-file-size=16M",
		"--innodb-log-buffer-size=4M",
		"--innodb-flush-log-at-trx-commit=0",
		"--innodb-doublewrite=0",
		// Tables in the system tablespace: CREATE and DROP DATABASE, run
		// for every test, create and delete no files.
		"--innodb-file-per-table=0",
		"--innodb-flush-method=nosync",
		"--innodb-use-native-aio=0",
		"--innodb-buffer-pool-load-at-startup=0",
		"--innodb-buffer-pool-dump-at-shutdown=0",
		"--skip-name-resolve",
		"--character-set-server=utf8mb4",
		"--collation-server=utf8mb4_general_ci",
		"--performance-schema=0",
	}
}

type server struct {
	installDB, bin string
	dir            string
	cred           *syscall.Credential
	port           int
	env            []string

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error
	db      *sql.DB // root, for administration; nil while stopped
}

// newServer runs mariadb-install-db into a new temporary directory and
// starts mariadbd on a free port.
func newServer(env []string) (_ *server, retErr error) {
	installDB, bin, err := binaries()
	if err != nil {
		return nil, err
	}
	cred, err := dbserver.User("MariaDB", "mysql")
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "mysqltest-")
	if err != nil {
		return nil, fmt.Errorf("create temporary directory: %w", err)
	}
	defer func() {
		if retErr != nil {
			os.RemoveAll(dir)
		}
	}()
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, fmt.Errorf("hand %s to uid %d: %w", dir, cred.Uid, err)
		}
	}
	args := append(serverFlags(dir),
		"--auth-root-authentication-method=normal", "--skip-test-db")
	if cred != nil {
		// Only names the owner of the files; the process already runs as it.
		if u, err := user.LookupId(strconv.Itoa(int(cred.Uid))); err == nil {
			args = append(args, "--user="+u.Username)
		}
	}
	install := exec.Command(installDB, args...)
	prepare(install, dir, cred)
	if out, err := install.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("mariadb-install-db: %w\n%s", err, out)
	}
	s := &server{installDB: installDB, bin: bin, dir: dir, cred: cred, env: env}
	for attempt := 0; ; attempt++ {
		// The port is picked by binding and releasing it, so another
		// process may grab it in between: retry with a new one.
		if s.port, err = dbserver.FreePort(); err == nil {
			if err = s.launch(); err == nil {
				return s, nil
			}
		}
		if attempt == 4 {
			return nil, err
		}
	}
}

func prepare(cmd *exec.Cmd, dir string, cred *syscall.Credential) {
	dbserver.Prepare(cmd, dir, cred, "/usr/bin:/bin:/usr/sbin:/sbin", syscall.SIGTERM)
}

func (s *server) socket() string  { return filepath.Join(s.dir, "mysqld.sock") }
func (s *server) logPath() string { return filepath.Join(s.dir, "error.log") }

// launch starts mariadbd on s.port and waits until it takes connections.
func (s *server) launch() error {
	args := append(serverFlags(s.dir),
		"--port="+strconv.Itoa(s.port),
		"--bind-address=127.0.0.1",
		"--skip-networking=0",
		"--socket="+s.socket(),
		"--pid-file="+filepath.Join(s.dir, "mysqld.pid"),
		"--log-error="+s.logPath(),
		"--default-time-zone=+12:45",
		"--max-connections=500",
	)
	cmd := exec.Command(s.bin, args...)
	prepare(cmd, s.dir, s.cred)
	cmd.Env = append(cmd.Env, s.env...)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start mariadbd: %w", err)
	}
	exited := make(chan struct{})
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()
	go func() {
		err := cmd.Wait()
		s.mu.Lock()
		s.waitErr = err
		s.mu.Unlock()
		close(exited)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if err := s.connect(ctx); err != nil {
		_ = cmd.Process.Kill()
		<-exited
		return fmt.Errorf("MariaDB did not come up on port %d: %w\n%s", s.port, err, s.logTail())
	}
	return nil
}

func (s *server) config(dbName string) *mysql.Config {
	cfg := mysql.NewConfig()
	cfg.User = "root"
	cfg.Net = "tcp"
	cfg.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
	cfg.DBName = dbName
	return cfg
}

func (s *server) dsn(dbName string) string { return s.config(dbName).FormatDSN() }

func (s *server) connect(ctx context.Context) error {
	c, err := mysql.NewConnector(s.config(""))
	if err != nil {
		return err
	}
	db := sql.OpenDB(c)
	for {
		err = db.PingContext(ctx)
		if err == nil {
			s.db = db
			return nil
		}
		select {
		case <-ctx.Done():
			db.Close()
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
		case <-s.exited:
			db.Close()
			return fmt.Errorf("server exited: %v", s.waitErr)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (s *server) admin(ctx context.Context, q string, args ...any) error {
	_, err := s.db.ExecContext(ctx, q, args...)
	return err
}

// killSessionsOf ends every connection using database name.
func (s *server) killSessionsOf(ctx context.Context, name string) {
	rows, err := s.db.QueryContext(ctx,
		"SELECT id FROM information_schema.processlist WHERE db = ? AND id <> CONNECTION_ID()", name)
	if err != nil {
		return
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if rows.Scan(&id) == nil {
			ids = append(ids, id)
		}
	}
	rows.Close()
	for _, id := range ids {
		_, _ = s.db.ExecContext(ctx, fmt.Sprintf("KILL %d", id))
	}
}

func (s *server) logTail() string { return dbserver.LogTail(s.logPath()) }

// shutdown stops the server (clients are disconnected, open transactions
// rolled back) and keeps its files.
func (s *server) shutdown() error {
	if s.db != nil {
		s.db.Close()
		s.db = nil
	}
	return dbserver.Shutdown(s.cmd.Process, s.exited, syscall.SIGTERM, "SIGTERM", 60*time.Second)
}

// stop shuts the server down and removes its files.
func (s *server) stop() error {
	err := s.shutdown()
	if rmErr := os.RemoveAll(s.dir); rmErr != nil && err == nil {
		err = fmt.Errorf("remove %s: %w", s.dir, rmErr)
	}
	return err
}
