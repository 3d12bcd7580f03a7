package main

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/octavia-vpp/health/healthdb/manager/managertest"
	"github.com/octavia-vpp/health/internal/testproc"
	"github.com/octavia-vpp/health/test/mysqltest"
	"github.com/octavia-vpp/health/test/pgtest"
)

// A short loadgen scenario against serve: seed the database, send, and
// read the summary. The figures are checked for consistency, not speed.
func TestLoadgenAgainstServe(t *testing.T) {
	url := pgtest.NewDB(t)
	conf := testproc.WriteFile(t, "octavia.conf", []byte(fmt.Sprintf(`[database]
connection = %s
[health_manager]
heartbeat_key = load-key
bind_ip = 127.0.0.1
bind_port = 0
metrics_bind = 127.0.0.1:0
health_batch_wait_ms = 5
failover_driver = noop
[controller_worker]
compute_driver = compute_noop_driver
`, url)))
	r := managertest.Start(t, managertest.Options{Files: []string{conf}})
	res := runBinary(t, nil, "--config-file", conf, "loadgen", "--seed-db",
		"--amphorae", "50", "--listeners", "2", "--pools", "2", "--members", "5",
		"--rate", "500", "--duration", "1s", "--churn", "0.2",
		"--target", r.ListenAddr().String(), "--metrics-url", "http://"+r.MetricsAddr().String()+"/metrics",
		// The manager runs in this test's process.
		"--watch-pid", fmt.Sprintf("manager=%d", os.Getpid()))
	if res.code != 0 {
		t.Fatalf("loadgen exit %d: %s", res.code, res.stderr)
	}
	if !strings.Contains(res.stderr, "seeding member: 100%") {
		t.Errorf("no plain progress lines on a non-terminal: %q", res.stderr)
	}
	var rep map[string]float64
	var cpu struct {
		CPUSeconds map[string]float64 `json:"cpu_s"`
		PerApplied map[string]float64 `json:"cpu_us_per_applied"`
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(res.stdout)), &cpu); err != nil || strings.Count(strings.TrimSpace(res.stdout), "\n") != 0 {
		t.Fatalf("stdout is not one JSON line: %q (%v)", res.stdout, err)
	}
	if cpu.CPUSeconds["manager"] <= 0 || cpu.PerApplied["manager"] <= 0 {
		t.Errorf("no CPU time for --watch-pid manager: %s", res.stdout)
	}
	var line map[string]any
	_ = json.Unmarshal([]byte(res.stdout), &line)
	rep = map[string]float64{}
	for k, v := range line {
		if f, ok := v.(float64); ok {
			rep[k] = f
		}
	}
	for _, field := range []string{"amphorae", "sent", "sent_per_s", "applied", "applied_per_s", "p50_ms", "p99_ms", "rejected", "dropped", "hm_rss_bytes", "seconds", "loadgen_cpu_s", "loadgen_cpu_us_per_sent"} {
		if _, ok := rep[field]; !ok {
			t.Errorf("summary lacks %q: %s", field, res.stdout)
		}
	}
	if rep["amphorae"] != 50 || rep["sent"] < 100 || rep["applied"] < 1 || rep["applied"] > rep["sent"] ||
		rep["rejected"] != 0 || rep["hm_rss_bytes"] <= 0 || rep["p99_ms"] < rep["p50_ms"] || rep["loadgen_cpu_s"] <= 0 {
		t.Errorf("inconsistent summary: %s", res.stdout)
	}
	t.Logf("loadgen summary: %s", strings.TrimSpace(res.stdout))
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
}

// On a MySQL/MariaDB connection (Octavia's URL form), --seed-db fills the
// schema octavia-db-manage built with INSERTs, and serve applies the
// heartbeats sent to those load balancers (make bench-cpu DB=mariadb).
func TestLoadgenSeedsMySQL(t *testing.T) {
	cfg, err := mysql.ParseDSN(mysqltest.NewDB(t))
	if err != nil {
		t.Fatal(err)
	}
	url := fmt.Sprintf("mysql+pymysql://%s@%s/%s", cfg.User, cfg.Addr, cfg.DBName)
	conf := testproc.WriteFile(t, "octavia.conf", []byte(fmt.Sprintf(`[database]
connection = %s
[health_manager]
heartbeat_key = load-key
bind_ip = 127.0.0.1
bind_port = 0
metrics_bind = 127.0.0.1:0
health_batch_wait_ms = 5
failover_driver = noop
[controller_worker]
compute_driver = compute_noop_driver
`, url)))
	r := managertest.Start(t, managertest.Options{Files: []string{conf}})
	res := runBinary(t, nil, "--config-file", conf, "loadgen", "--seed-db",
		"--amphorae", "20", "--listeners", "2", "--pools", "2", "--members", "3",
		"--rate", "100", "--duration", "300ms",
		"--target", r.ListenAddr().String(), "--metrics-url", "http://"+r.MetricsAddr().String()+"/metrics")
	if res.code != 0 {
		t.Fatalf("loadgen exit %d: %s", res.code, res.stderr)
	}
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for table, want := range map[string]int{"load_balancer": 20, "amphora": 20, "listener": 40, "pool": 40, "member": 120} {
		var n int
		if err := db.QueryRow("SELECT count(*) FROM " + table).Scan(&n); err != nil || n != want {
			t.Errorf("%s: %d rows (%v), want %d", table, n, err, want)
		}
	}
	var health int
	if err := db.QueryRow("SELECT count(*) FROM amphora_health").Scan(&health); err != nil || health == 0 {
		t.Errorf("amphora_health: %d rows (%v): no heartbeat applied; loadgen said %s", health, err, res.stdout)
	}
}
