package manager_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/octavia-vpp/health/healthdb/manager/managertest"
	"github.com/octavia-vpp/health/internal/testproc"
	"github.com/octavia-vpp/health/test/mysqltest"
	"github.com/octavia-vpp/health/test/pgtest"
)

// fakeSystemd listens where the manager sends its sd_notify messages and
// returns a function giving the next one, or "" when none comes within
// wait.
func fakeSystemd(t *testing.T) func(wait time.Duration) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", sock)
	buf := make([]byte, 256)
	return func(wait time.Duration) string {
		_ = conn.SetReadDeadline(time.Now().Add(wait))
		n, err := conn.Read(buf)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return ""
		}
		if err != nil {
			t.Fatal(err)
		}
		return string(buf[:n])
	}
}

func dbWaitConfig(connection string) []byte {
	return []byte(fmt.Sprintf(`[database]
connection = %s
max_retries = 120
retry_interval = 1
[health_manager]
heartbeat_key = k
failover_driver = noop
bind_ip = 127.0.0.1
bind_port = 0
metrics_bind = 127.0.0.1:0
health_batch_wait_ms = 5
[controller_worker]
compute_driver = compute_noop_driver
`, connection))
}

// awaitFirstContact checks what a manager started with its database down
// does until the database starts: a WARNING per attempt, no READY=1,
// /readyz 503 and /livez 200; then, once start() brings the database up,
// READY=1 and /readyz 200.
func awaitFirstContact(t *testing.T, r *managertest.Running, logs *testproc.Output, next func(time.Duration) string, start func()) {
	t.Helper()
	testproc.WaitFor(t, "two warnings that the database is not reachable", func() bool {
		return strings.Count(logs.String(), "database not reachable at start; retrying") >= 2
	})
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "attempts_left=") {
		t.Errorf("the retry is not a warning with the attempts left:\n%s", logs)
	}
	if got := next(100 * time.Millisecond); got != "" {
		t.Fatalf("systemd told %q before the database answered", got)
	}
	if code, body := probe(t, r.MetricsAddr(), "/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz %d before the database answered: %v", code, body)
	}
	if code, body := probe(t, r.MetricsAddr(), "/livez"); code != http.StatusOK {
		t.Errorf("/livez %d while the database is awaited: %v", code, body)
	}
	start()
	if got := next(30 * time.Second); got != "READY=1" {
		t.Fatalf("after the database started, systemd was told %q, want READY=1\n%s", got, logs)
	}
	if !strings.Contains(logs.String(), `msg="database reachable"`) {
		t.Errorf("no log that the database answered:\n%s", logs)
	}
	testproc.WaitFor(t, "/readyz 200 once the database answers", func() bool {
		code, _ := probe(t, r.MetricsAddr(), "/readyz")
		return code == http.StatusOK
	})
	if exited, err := r.Exited(); exited {
		t.Fatalf("the manager stopped: %v", err)
	}
}

// serve started while PostgreSQL is down retries every retry_interval and
// carries on, READY=1 sent, once it starts.
func TestStartWaitsForPostgreSQL(t *testing.T) {
	srv := pgtest.NewServer(t)
	managertest.SeedOneLB(t, context.Background(), srv.URL()).Close(context.Background())
	srv.Stop()
	next := fakeSystemd(t)
	logs := &testproc.Output{}
	conf := testproc.WriteFile(t, "octavia.conf", dbWaitConfig(srv.URL()))
	r := managertest.Start(t, managertest.Options{Files: []string{conf}, LogOutput: logs})
	awaitFirstContact(t, r, logs, next, srv.Start)
	if err := r.Stop(); err != nil {
		t.Errorf("manager exit: %v", err)
	}
}

// On MariaDB: the start waits for the server as on PostgreSQL; READY=1
// comes once it answers; /readyz fails within 2 s of the server stopping
// and recovers when it returns; the pool's statistics are exported.
func TestMariaDBReadinessAndPoolMetrics(t *testing.T) {
	srv := mysqltest.NewServer(t)
	seedOneLBMySQL(t, srv.DSN())
	srv.Stop()
	next := fakeSystemd(t)
	logs := &testproc.Output{}
	conf := testproc.WriteFile(t, "octavia.conf", dbWaitConfig(sqlalchemyURL(t, srv.DSN())))
	r := managertest.Start(t, managertest.Options{Files: []string{conf}, LogOutput: logs})
	awaitFirstContact(t, r, logs, next, srv.Start)

	addr := r.MetricsAddr()
	body := testproc.Scrape(t, addr.String())
	for _, series := range []string{"octavia_hm_db_pool_max_conns", "octavia_hm_db_pool_total_conns", "octavia_hm_db_pool_acquired_conns",
		"octavia_hm_db_pool_idle_conns", "octavia_hm_db_pool_empty_acquires_total"} {
		if testproc.MetricValue(body, series) == "" {
			t.Errorf("/metrics lacks %s on MariaDB", series)
		}
	}
	if got := testproc.MetricValue(body, "octavia_hm_db_pool_max_conns"); got != "10" {
		t.Errorf("octavia_hm_db_pool_max_conns %q, want 10 (max_pool_size)", got)
	}
	if got := testproc.MetricValue(body, "octavia_hm_db_pool_total_conns"); got == "0" {
		t.Errorf("octavia_hm_db_pool_total_conns 0 after the database answered")
	}

	srv.Stop()
	stopped := time.Now()
	for {
		code, body := probe(t, addr, "/readyz")
		if code == http.StatusServiceUnavailable {
			if checks, _ := body["checks"].(map[string]any); checks["database"] == "ok" {
				t.Errorf("the database check passed while MariaDB is down: %v", body)
			}
			break
		}
		if time.Since(stopped) > 2*time.Second {
			t.Fatalf("/readyz still %d 2 s after MariaDB stopped: %v", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("/readyz 503 %v after MariaDB stopped", time.Since(stopped).Round(time.Millisecond))
	if code, body := probe(t, addr, "/livez"); code != http.StatusOK {
		t.Errorf("/livez %d while only the database is down: %v", code, body)
	}
	srv.Start()
	testproc.WaitFor(t, "/readyz 200 after MariaDB returned", func() bool {
		code, _ := probe(t, addr, "/readyz")
		return code == http.StatusOK
	})
	if err := r.Stop(); err != nil {
		t.Errorf("manager exit: %v", err)
	}
}
