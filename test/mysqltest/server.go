package mysqltest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/octavia-vpp/health/test/pgtest"
)

// Server is a MariaDB server of one test's own, which the test may stop and
// start again, for outage tests. Its "octavia" database holds Octavia's
// schema (a copy of the shared template, which this builds first if no
// test has). It is removed when the test ends.
type Server struct {
	t testing.TB
	s *server
}

// ServerOption changes how NewServer runs its server.
type ServerOption func(*serverOptions) error

type serverOptions struct{ env []string }

// ClockOffset runs the server with its clock offset from the real one
// (positive: ahead; whole seconds), by preloading libfaketime into the
// server process only (found as test/pgtest finds it).
func ClockOffset(offset time.Duration) ServerOption {
	return func(o *serverOptions) error {
		lib := os.Getenv("PGTEST_LIBFAKETIME")
		if lib == "" {
			for _, p := range pgtest.LibfaketimePaths {
				if _, err := os.Stat(p); err == nil {
					lib = p
					break
				}
			}
		}
		if lib == "" {
			return errors.New("libfaketime not found (looked in $PGTEST_LIBFAKETIME and " +
				strings.Join(pgtest.LibfaketimePaths, ", ") + "); run `make deps` or `apt-get install faketime`")
		}
		o.env = append(o.env, "LD_PRELOAD="+lib,
			fmt.Sprintf("FAKETIME=%+ds", int64(offset/time.Second)),
			"FAKETIME_DONT_FAKE_MONOTONIC=1")
		return nil
	}
}

// ServerDB is the database of a Server that holds Octavia's schema.
const ServerDB = "octavia"

// NewServer starts a dedicated server.
func NewServer(t testing.TB, opts ...ServerOption) *Server {
	t.Helper()
	var o serverOptions
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			t.Fatalf("mysqltest: %v", err)
		}
	}
	ensureServer(t) // the template
	s, err := newServer(o.env)
	if err != nil {
		t.Fatalf("mysqltest: %v", err)
	}
	srv := &Server{t: t, s: s}
	t.Cleanup(func() {
		if s.db != nil {
			_ = s.shutdown()
		}
		os.RemoveAll(s.dir)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := tmpl.clone(ctx, s, ServerDB); err != nil {
		t.Fatalf("mysqltest: %v", err)
	}
	return srv
}

// DSN is the DSN of the server's "octavia" database.
func (s *Server) DSN() string { return s.s.dsn(ServerDB) }

// DSNOf is the DSN of any database of the server.
func (s *Server) DSNOf(db string) string { return s.s.dsn(db) }

// Port is the server's TCP port on 127.0.0.1.
func (s *Server) Port() int { return s.s.port }

// Admin runs statements as root on the server.
func (s *Server) Admin(stmts ...string) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, q := range stmts {
		if err := s.s.admin(ctx, q); err != nil {
			s.t.Fatalf("mysqltest: %s: %v", q, err)
		}
	}
}

// Stop shuts the server down, disconnecting every client.
func (s *Server) Stop() {
	s.t.Helper()
	if err := s.s.shutdown(); err != nil {
		s.t.Fatalf("mysqltest: stop: %v", err)
	}
}

// Start brings a stopped server back on the same port.
func (s *Server) Start() {
	s.t.Helper()
	if err := s.s.launch(); err != nil {
		s.t.Fatalf("mysqltest: restart on port %d: %v", s.s.port, err)
	}
}
