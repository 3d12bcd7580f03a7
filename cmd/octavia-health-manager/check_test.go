package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// validCheckConf is a configuration serve would accept: a key, a
// PostgreSQL URL, and drivers that need no Keystone credentials.
const validCheckConf = `[health_manager]
heartbeat_key = insecure
failover_driver = noop
[controller_worker]
compute_driver = compute_noop_driver
statistics_drivers = stats_db, prometheus
[database]
connection = postgresql+psycopg2://octavia:secret@127.0.0.1:1/octavia
`

func TestCheckFlag(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	valid := write("valid.conf", validCheckConf)
	tests := []struct {
		name  string
		files []string
		code  int
		// want are substrings of standard error (standard output for a
		// valid configuration), one per problem.
		want []string
	}{
		{"valid", []string{valid}, checkOK, []string{"ok: " + valid}},
		// The shipped sample, with what it leaves to the operator.
		{"sample", []string{"../../etc/octavia.conf", valid}, checkOK, []string{"ok: ../../etc/octavia.conf"}},
		{"parse errors in two files", []string{
			write("broken1.conf", "[health_manager\nheartbeat_key = k\n"),
			valid,
			filepath.Join(dir, "missing.conf"),
		}, checkParse, []string{"broken1.conf", "missing.conf", "2 problem(s) found"}},
		{"bad values and start-up refusals", []string{valid, write("semantic.conf", `[DEFAULT]
debug = maybe
[health_manager]
bind_port = 70000
heartbeat_key =
failover_driver = octavia
metrics_bind = localhost
[controller_worker]
statistics_drivers = stats_db, stats_dbb
compute_driver = compute_nova
[database]
connection = mysql+pymysql://octavia:secret@db/octavia?sslmode=require
`)}, checkSemantic, []string{
			"[DEFAULT] debug",
			"[health_manager] bind_port",
			`unknown parameter(s) "sslmode"`,
			"heartbeat_key is not set",
			`failover_driver "octavia" is not supported`,
			`compute_driver "compute_nova" is not supported`,
			`"stats_dbb"`,
			"metrics_bind",
			"8 problem(s) found",
		}},
		// Octavia's MySQL URLs, as its deployment tools write them.
		{"mysql+pymysql", []string{valid, write("pymysql.conf", "[database]\nconnection = mysql+pymysql://octavia:secret@db.example:3306/octavia?charset=utf8&plugin=dbcounter\n")},
			checkOK, []string{"ok: "}},
		{"mysql+mysqldb over a socket", []string{valid, write("mysqldb.conf", "[database]\nconnection = mysql+mysqldb://octavia:secret@/octavia?unix_socket=/run/mysqld/mysqld.sock\n")},
			checkOK, []string{"ok: "}},
		{"plain mysql with an encoded password", []string{valid, write("mysql.conf", "[database]\nconnection = mysql://octavia:se%40cret@[fd00::1]/octavia\n")},
			checkOK, []string{"ok: "}},
		{"mysql option file missing", []string{valid, write("mycnf.conf", "[database]\nconnection = mysql+pymysql://octavia:secret@db/octavia?read_default_file=/nonexistent/my.cnf\n")},
			checkSemantic, []string{"read_default_file /nonexistent/my.cnf: no such file or directory", "1 problem(s) found"}},
		{"missing credentials and connection", []string{write("creds.conf", "[health_manager]\nheartbeat_key = k\n")},
			checkSemantic, []string{"[database] connection is not set", "[service_auth] lacks auth_url", "2 problem(s) found"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var args []string
			for _, f := range tt.files {
				args = append(args, "--config-file", f)
			}
			r := runBinary(t, nil, append(args, "--check")...)
			if r.code != tt.code {
				t.Errorf("exit code %d; want %d\nstdout: %s\nstderr: %s", r.code, tt.code, r.stdout, r.stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.stdout+r.stderr, w) {
					t.Errorf("output lacks %q\nstdout: %s\nstderr: %s", w, r.stdout, r.stderr)
				}
			}
			if strings.Contains(r.stderr, "secret") {
				t.Errorf("output leaks a password:\n%s", r.stderr)
			}
		})
	}
}
