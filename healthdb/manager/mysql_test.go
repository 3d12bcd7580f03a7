package manager_test

import (
	"context"
	"database/sql"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/octavia-vpp/health/healthdb/manager"
	"github.com/octavia-vpp/health/healthdb/manager/managertest"
	"github.com/octavia-vpp/health/heartbeat"
	"github.com/octavia-vpp/health/internal/mysqlconf"
	"github.com/octavia-vpp/health/internal/octaviaconf"
	"github.com/octavia-vpp/health/internal/testproc"
	"github.com/octavia-vpp/health/test/mysqltest"
)

// seedOneLBMySQL inserts managertest.SeedOneLB's rows into a MariaDB
// database and returns a pool on it.
func seedOneLBMySQL(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	db := mysqltest.Open(t, dsn, func(cfg *mysql.Config) { cfg.ParseTime, cfg.Loc = true, time.UTC })
	for _, q := range []string{
		`INSERT INTO load_balancer (id, provisioning_status, operating_status, enabled) VALUES ('lb-1', 'ACTIVE', 'OFFLINE', 1)`,
		`INSERT INTO amphora (id, load_balancer_id, status, compute_id, cert_busy) VALUES ('amp-1', 'lb-1', 'ALLOCATED', 'c-1', 0)`,
		`INSERT INTO amphora (id, load_balancer_id, status, compute_id, cert_busy) VALUES ('amp-2', 'lb-1', 'ALLOCATED', 'c-2', 0)`,
		`INSERT INTO pool (id, load_balancer_id, protocol, lb_algorithm, operating_status, enabled, provisioning_status) VALUES ('pool-1', 'lb-1', 'HTTP', 'ROUND_ROBIN', 'OFFLINE', 1, 'ACTIVE')`,
		`INSERT INTO member (id, pool_id, ip_address, protocol_port, operating_status, enabled, provisioning_status, backup) VALUES ('m-1', 'pool-1', '192.0.2.1', 80, 'OFFLINE', 1, 'ACTIVE', 0)`,
		`INSERT INTO listener (id, load_balancer_id, protocol, protocol_port, provisioning_status, operating_status, enabled, default_pool_id) VALUES ('l-1', 'lb-1', 'HTTP', 80, 'ACTIVE', 'OFFLINE', 1, 'pool-1')`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	return db
}

// sqlalchemyURL is the [database] connection an operator would write for
// dsn.
func sqlalchemyURL(t *testing.T, dsn string) string {
	t.Helper()
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u := url.URL{Scheme: "mysql+pymysql", User: url.User(cfg.User), Host: cfg.Addr, Path: "/" + cfg.DBName}
	return u.String()
}

// The manager, given an Octavia MySQL URL, runs on the MySQL store:
// heartbeats land in MariaDB, statistics go through stats_db's flushes.
func TestServeOnMariaDB(t *testing.T) {
	dsn := mysqltest.NewDB(t)
	db := seedOneLBMySQL(t, dsn)
	conf := testproc.WriteFile(t, "octavia.conf", []byte(`[database]
connection = `+sqlalchemyURL(t, dsn)+`
[health_manager]
heartbeat_key = e2e-key
failover_driver = noop
bind_ip = 127.0.0.1
bind_port = 0
metrics_bind = 127.0.0.1:0
health_batch_wait_ms = 5
stats_flush_interval_ms = 200
[controller_worker]
compute_driver = compute_noop_driver
statistics_drivers = stats_db
`))
	cfg, err := octaviaconf.Load(conf)
	if err != nil {
		t.Fatal(err)
	}
	if problems := manager.StartupProblems(cfg, nil); len(problems) != 0 {
		t.Fatalf("StartupProblems: %v", problems)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan *manager.Manager, 1)
	m, err := manager.New(ctx, cfg, manager.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Ready: func(m *manager.Manager) { ready <- m }})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	<-ready
	conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(m.ListenAddr()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	kr, _ := heartbeat.NewKeyring(heartbeat.KeyringConfig{Keys: []string{"e2e-key"}})
	if _, err := conn.Write(kr.SealMessage(managertest.TypicalHeartbeat("amp-1", "DOWN"))); err != nil {
		t.Fatal(err)
	}
	status := func(table, id string) string {
		var s string
		if err := db.QueryRow(`SELECT operating_status FROM `+table+` WHERE id = ?`, id).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	testproc.WaitFor(t, "member ERROR", func() bool { return status("member", "m-1") == "ERROR" })
	if got := status("load_balancer", "lb-1"); got != "DEGRADED" {
		t.Errorf("load balancer %s, want DEGRADED", got)
	}
	var busy bool
	if err := db.QueryRow(`SELECT busy FROM amphora_health WHERE amphora_id = 'amp-1'`).Scan(&busy); err != nil || busy {
		t.Errorf("amphora_health amp-1: busy %v, err %v", busy, err)
	}
	testproc.WaitFor(t, "listener statistics", func() bool {
		var in, out int64
		err := db.QueryRow(`SELECT bytes_in, bytes_out FROM listener_statistics WHERE listener_id = 'l-1' AND amphora_id = 'amp-1'`).Scan(&in, &out)
		return err == nil && in == 20 && out == 10
	})
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

// A reachable server without SELECT ... FOR UPDATE SKIP LOCKED stops the
// start, with a message naming its version and the versions needed
// (a fake version string in front of the real MariaDB).
func TestServeRefusesMySQLWithoutSkipLocked(t *testing.T) {
	manager.SetMySQLVersionCheck(t, func(string) error { return mysqlconf.CheckServerVersion("10.5.21-MariaDB-log") })
	dsn := mysqltest.NewDB(t)
	conf := testproc.WriteFile(t, "octavia.conf", []byte(`[database]
connection = `+sqlalchemyURL(t, dsn)+`
[health_manager]
heartbeat_key = k
failover_driver = noop
bind_ip = 127.0.0.1
bind_port = 0
metrics_bind =
[controller_worker]
compute_driver = compute_noop_driver
`))
	cfg, err := octaviaconf.Load(conf)
	if err != nil {
		t.Fatal(err)
	}
	_, err = manager.New(context.Background(), cfg, manager.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err == nil {
		t.Fatal("New accepted MariaDB 10.5")
	}
	for _, want := range []string{"MariaDB 10.5.21", "SKIP LOCKED needs MariaDB 10.6 or later, or MySQL 8.0 or later", "refusing to start"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}
