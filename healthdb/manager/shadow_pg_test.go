package manager_test

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/octavia-vpp/health/healthdb/manager"
	"github.com/octavia-vpp/health/healthdb/manager/managertest"
	"github.com/octavia-vpp/health/internal/octaviaconf"
	"github.com/octavia-vpp/health/internal/testproc"
	"github.com/octavia-vpp/health/test/pgtest"
)

// The shadow runs as a database role that may only read, beside the
// seeded rows, and compares heartbeats and polls the stale-amphora rules
// without a single error; the database is left as it was.
func TestShadowRunsAsReadOnlyRole(t *testing.T) {
	ctx := context.Background()
	owner := pgtest.NewDB(t)
	conn := managertest.SeedOneLB(t, ctx, owner)
	if _, err := conn.Exec(ctx, `INSERT INTO amphora_health (amphora_id, last_update, busy) VALUES ('amp-2', now() AT TIME ZONE 'UTC' - interval '1 hour', false)`); err != nil {
		t.Fatal(err)
	}
	for _, sql := range []string{
		`CREATE ROLE shadow_reader LOGIN`,
		`GRANT USAGE ON SCHEMA public TO shadow_reader`,
		`GRANT SELECT ON ALL TABLES IN SCHEMA public TO shadow_reader`,
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	u, err := url.Parse(owner)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User("shadow_reader")
	reader := u.String()

	file := filepath.Join(t.TempDir(), "disagreements.jsonl")
	conf := testproc.WriteFile(t, "octavia.conf", []byte(fmt.Sprintf(`[database]
connection = %s
[health_manager]
heartbeat_key = k
failover_driver = octavia_api
bind_ip = 127.0.0.1
bind_port = 0
metrics_bind =
health_check_interval = 1
shadow = true
shadow_disagreement_file = %s
[controller_worker]
statistics_drivers = stats_db
`, reader, file)))
	r := managertest.Start(t, managertest.Options{Files: []string{conf}})
	udp, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(r.ListenAddr()))
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	kr := sealer(t, "k")
	for i := 1; i <= 3; i++ {
		msg := managertest.TypicalHeartbeat("amp-1", "UP")
		msg.Seq = int64(i)
		if _, err := udp.Write(kr.SealMessage(msg)); err != nil {
			t.Fatal(err)
		}
		testproc.WaitFor(t, "the shadow compares the heartbeat", func() bool {
			return testutilValue(t, r.Manager, "octavia_hm_shadow_heartbeats_compared_total") >= float64(i)
		})
	}
	// At least two polls of the stale-amphora rules (every second).
	time.Sleep(2500 * time.Millisecond)
	if n := testutilValue(t, r.Manager, "octavia_hm_shadow_read_errors_total"); n != 0 {
		t.Errorf("%v reads failed as a read-only role", n)
	}
	var status string
	var healthRows int
	var busy bool
	if err := conn.QueryRow(ctx, `SELECT operating_status FROM member WHERE id = 'm-1'`).Scan(&status); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, `SELECT count(*), bool_or(busy) FROM amphora_health`).Scan(&healthRows, &busy); err != nil {
		t.Fatal(err)
	}
	if status != "OFFLINE" || healthRows != 1 || busy {
		t.Errorf("the database changed: member %s, %d amphora_health rows, busy %v", status, healthRows, busy)
	}
	// The stale amp-2, which Octavia (absent here) never fails over, is
	// not yet a disagreement: heartbeat_timeout + health_check_interval
	// have not passed since the shadow found it stale.
	for _, d := range r.Shadow().Recent() {
		if d.Kind == "failover" {
			t.Errorf("failover disagreement too early: %v", d)
		}
	}
}

// The shadow's pool is read-only even for the owner of the tables: a bug
// that tried to write would fail.
func TestShadowPoolRefusesWrites(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewDB(t)
	managertest.SeedOneLB(t, ctx, url)
	cfg := octaviaconf.Defaults()
	cfg.Database.Connection = url
	pool, err := manager.NewReadOnlyPool(ctx, cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	_, err = pool.Exec(ctx, `UPDATE member SET operating_status = 'ONLINE' WHERE id = 'm-1'`)
	if err == nil {
		t.Fatal("a write through the shadow's pool succeeded")
	}
	var ro string
	if err := pool.QueryRow(ctx, `SHOW default_transaction_read_only`).Scan(&ro); err != nil || ro != "on" {
		t.Errorf("default_transaction_read_only = %q, %v", ro, err)
	}
}
