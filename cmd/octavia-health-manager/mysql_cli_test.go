package main

import (
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/octavia-vpp/health/test/mysqltest"
)

// TestCLIOnMariaDB: with the [database] connection an Octavia MySQL URL
// given through --config-dir, --check (global and after serve) accepts
// the files, and migrate's verbs verify the schema Octavia's own
// octavia-db-manage built.
func TestCLIOnMariaDB(t *testing.T) {
	t.Parallel()
	dsn := mysqltest.NewDB(t)
	mc, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u := url.URL{Scheme: "mysql+pymysql", User: url.User(mc.User), Host: mc.Addr, Path: "/" + mc.DBName, RawQuery: "charset=utf8mb4"}
	dir := t.TempDir()
	base := writeFile(t, filepath.Join(dir, "octavia.conf"), `[health_manager]
heartbeat_key = insecure
failover_driver = noop
[controller_worker]
compute_driver = compute_noop_driver
`)
	confd := filepath.Join(dir, "octavia.conf.d")
	dbConf := writeFile(t, filepath.Join(confd, "50-database.conf"), "[database]\nconnection = "+u.String()+"\n")
	files := []string{"--config-file", base, "--config-dir", confd}
	okLine := "ok: " + base + ", " + dbConf
	steps := []struct {
		args           []string
		code           int
		stdout, stderr []string // substrings
	}{
		{[]string{"--check"}, checkOK, []string{okLine}, nil},
		{[]string{"serve", "--check"}, checkOK, []string{okLine}, nil},
		{[]string{"migrate", "current"}, 0, []string{"the schema is Octavia's", "verified: every table, column and lookup row"}, nil},
		{[]string{"migrate", "history"}, 0, []string{"the schema is Octavia's", "verified: every table, column and lookup row"}, nil},
		{[]string{"migrate", "upgrade", "head"}, 0, nil, []string{"Octavia's schema verified; created nothing"}},
		{[]string{"migrate"}, 0, nil, []string{"Octavia's schema verified"}},
		{[]string{"migrate", "upgrade", "0995c26fc506"}, exitUsage, nil, []string{`only the revision "head" is supported`}},
	}
	for _, s := range steps {
		r := runApp(t, append(append([]string{}, files...), s.args...)...)
		if r.code != s.code {
			t.Fatalf("%q: exit %d, want %d\nstdout: %s\nstderr: %s", s.args, r.code, s.code, r.stdout, r.stderr)
		}
		for _, w := range s.stdout {
			if !strings.Contains(r.stdout, w) {
				t.Errorf("%q: stdout lacks %q:\n%s", s.args, w, r.stdout)
			}
		}
		for _, w := range s.stderr {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("%q: stderr lacks %q:\n%s", s.args, w, r.stderr)
			}
		}
	}
}
