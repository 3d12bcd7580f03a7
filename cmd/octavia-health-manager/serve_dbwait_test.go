package main

import (
	"strings"
	"testing"

	"github.com/octavia-vpp/health/internal/testproc"
)

// serve whose database never answers at start gives up after [database]
// max_retries attempts, retry_interval apart: a WARNING per failed
// attempt naming the database without its password, then an error and
// exit code exitUnavailable, as oslo.db's engine gives up at start.
func TestServeGivesUpOnUnreachableDatabase(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ name, url string }{
		{"postgresql", "postgresql+psycopg2://octavia:hunter2@127.0.0.1:1/octavia?connect_timeout=2"},
		{"mysql", "mysql+pymysql://octavia:hunter2@127.0.0.1:1/octavia?connect_timeout=2"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			conf := testproc.WriteFile(t, "octavia.conf", []byte(`[health_manager]
heartbeat_key = k
failover_driver = noop
bind_ip = 127.0.0.1
bind_port = 0
metrics_bind =
[controller_worker]
compute_driver = compute_noop_driver
[database]
connection = `+tt.url+`
max_retries = 3
retry_interval = 1
`))
			r := runBinary(t, nil, "--config-file", conf, "serve")
			if r.code != exitUnavailable {
				t.Fatalf("exit %d, want %d\nstderr: %s", r.code, exitUnavailable, r.stderr)
			}
			if n := strings.Count(r.stderr, "database not reachable at start; retrying"); n != 2 {
				t.Errorf("%d retry warnings, want 2 (3 attempts):\n%s", n, r.stderr)
			}
			for _, want := range []string{"level=WARNING", "octavia:***@127.0.0.1:1", "attempts_left=2", "attempts_left=1",
				"retry_interval=1s", "database not reachable at start: ", "did not answer 3 attempt(s) 1s apart"} {
				if !strings.Contains(r.stderr, want) {
					t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
				}
			}
			if strings.Contains(r.stderr, "hunter2") {
				t.Errorf("stderr shows the password:\n%s", r.stderr)
			}
		})
	}
}
