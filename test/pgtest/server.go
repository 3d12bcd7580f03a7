package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/octavia-vpp/health/migrations"
)

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
