package manager_test

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/octavia-vpp/health/healthdb/failover/failovertest"
	"github.com/octavia-vpp/health/healthdb/manager/managertest"
	"github.com/octavia-vpp/health/heartbeat"
	"github.com/octavia-vpp/health/internal/testproc"
	"github.com/octavia-vpp/health/test/mysqltest"
)

// writeFaultMySQL is writeFaultSQL on MariaDB: while hm_fault.mode is
// set, every INSERT into amphora_health (the upsert of heartbeat writes
// starts with one) fails with the scenario's SIGNAL (its SQLSTATE and
// error number).
// Claims are UPDATEs and keep working.
var writeFaultMySQL = []string{
	`CREATE TABLE hm_fault (mode varchar(16))`,
	`INSERT INTO hm_fault VALUES (NULL)`,
	`CREATE TRIGGER hm_fault BEFORE INSERT ON amphora_health FOR EACH ROW
BEGIN
    DECLARE m varchar(16);
    SELECT mode INTO m FROM hm_fault;
    IF m IS NOT NULL THEN
        SIGNAL SQLSTATE '45000' SET MYSQL_ERRNO = 1644, MESSAGE_TEXT = 'injected fault';
    END IF;
END`,
}

// The MariaDB half of TestServeFailedHealthWritesFailNothingOver: heartbeat
// writes that fail (a Galera certification failure on every attempt, an
// error raised by the server) or hang (a row lock) for three
// heartbeat_timeouts fail nothing over; once they succeed again, the one
// amphora that really went silent is, after heartbeat_timeout.
func TestServeFailedHealthWritesFailNothingOverMariaDB(t *testing.T) {
	tests := []struct {
		name, sqlstate string
		signal         string // the trigger's SIGNAL, or "" for a row lock
	}{
		{"galera 1213", "40001", `SIGNAL SQLSTATE '40001' SET MYSQL_ERRNO = 1213, MESSAGE_TEXT = 'Deadlock: wsrep aborted transaction'`},
		{"raised 53100", "53100", `SIGNAL SQLSTATE '53100' SET MYSQL_ERRNO = 1644, MESSAGE_TEXT = 'injected disk full'`},
		{"hung", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			testFailedHealthWritesMariaDB(t, tt.sqlstate, tt.signal)
		})
	}
}

func testFailedHealthWritesMariaDB(t *testing.T, sqlstate, signal string) {
	// heartbeat_timeout below. Twice the PostgreSQL twin's: last_update is
	// a DATETIME of whole seconds here, so rows look up to a second older
	// than they are; with 2 s, a row written just before the fault looked
	// stale 0.8 s into it, before any rule could see a hang begin.
	const timeout = 4 * time.Second
	ctx := context.Background()
	dsn := mysqltest.NewDB(t)
	db := seedOneLBMySQL(t, dsn)
	amphorae := []string{"amp-1", "amp-2", "amp-3", "amp-4", "amp-5", "amp-6"}
	for _, id := range amphorae[2:] {
		if _, err := db.Exec(`INSERT INTO amphora (id, load_balancer_id, status, compute_id, cert_busy)
			VALUES (?, 'lb-1', 'ALLOCATED', ?, 0)`, id, "c-"+id); err != nil {
			t.Fatal(err)
		}
	}
	trigger := writeFaultMySQL
	if signal != "" {
		trigger = append(append([]string(nil), trigger[:2]...),
			strings.Replace(trigger[2], `SIGNAL SQLSTATE '45000' SET MYSQL_ERRNO = 1644, MESSAGE_TEXT = 'injected fault'`, signal, 1))
	}
	for _, q := range trigger {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	victim := "amp-6"

	fake := failovertest.New(t)
	var mu sync.Mutex
	calledAt := map[string]time.Time{}
	fake.Respond(func(id string, _ int) int {
		mu.Lock()
		defer mu.Unlock()
		if _, ok := calledAt[id]; !ok {
			calledAt[id] = time.Now()
		}
		return 202
	})
	failing := "health_writes_failing"
	if signal == "" {
		failing = "health_writes_stalled"
	}
	conf := testproc.WriteFile(t, "octavia.conf", []byte(fmt.Sprintf(`[database]
connection = %s
[health_manager]
heartbeat_key = k
bind_ip = 127.0.0.1
bind_port = 0
metrics_bind =
health_batch_wait_ms = 5
heartbeat_timeout = 4
health_check_interval = 1
[controller_worker]
compute_driver = compute_noop_driver
%s`, sqlalchemyURL(t, dsn), fake.ServiceAuthSection())))
	var logs testproc.Output
	defer func() {
		if t.Failed() {
			t.Log(logs.String())
		}
	}()
	r := managertest.Start(t, managertest.Options{Files: []string{conf}, LogOutput: &logs})
	d := r.Manager

	udp, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(d.ListenAddr()))
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	kr, _ := heartbeat.NewKeyring(heartbeat.KeyringConfig{Keys: []string{"k"}})
	var silent sync.Map
	stop := make(chan struct{})
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for seq := int64(1); ; seq++ {
			for _, id := range amphorae {
				if _, quiet := silent.Load(id); quiet {
					continue
				}
				m := managertest.TypicalHeartbeat(id, "UP")
				m.Seq = seq
				udp.Write(kr.SealMessage(m))
			}
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	defer func() { close(stop); <-sent }()

	gauge := func(reason, state string) float64 {
		v, _ := seriesValue(t, d, fmt.Sprintf(`octavia_hm_failover_suppressed_reason{reason=%q,sqlstate=%q}`, reason, state))
		return v
	}
	// No amphora_health row is seeded: each is created by the manager from
	// the amphora's first heartbeat, so none can be stale before the
	// amphorae have been heard from (see testFailedHealthWrites).
	testproc.WaitFor(t, "every amphora's health row written", func() bool {
		var n int
		if err := db.QueryRow(`SELECT count(*) FROM amphora_health`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == len(amphorae)
	})
	testproc.WaitFor(t, "two health checks", func() bool { return testutilValue(t, d, `octavia_hm_health_checks_total`) >= 2 })
	testproc.WaitFor(t, "failovers allowed before the fault", func() bool {
		return testutilValue(t, d, `octavia_hm_failover_suppressed`) == 0
	})
	if got := fake.Failovers(); len(got) != 0 {
		t.Fatalf("failover calls %v before the fault, while every amphora heartbeats", got)
	}

	var lockTx *sql.Tx
	if signal == "" {
		if lockTx, err = db.BeginTx(ctx, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := lockTx.Exec(`SELECT 1 FROM amphora_health WHERE amphora_id = 'amp-1' FOR UPDATE`); err != nil {
			t.Fatal(err)
		}
	} else if _, err := db.Exec(`UPDATE hm_fault SET mode = 'on'`); err != nil {
		t.Fatal(err)
	}
	silent.Store(victim, true)
	faultAt := time.Now()

	time.Sleep(3*timeout - time.Since(faultAt))
	var fresh int
	if err := db.QueryRow(`SELECT count(*) FROM amphora_health WHERE last_update > UTC_TIMESTAMP(6) - INTERVAL ? MICROSECOND`,
		timeout.Microseconds()).Scan(&fresh); err != nil {
		t.Fatal(err)
	}
	if fresh != 0 {
		t.Errorf("%d amphora_health rows written during the fault; the fault did not hold", fresh)
	}
	if got := fake.Failovers(); len(got) != 0 {
		t.Fatalf("%d failover calls (%v) for %d amphorae while heartbeat writes failed", len(got), got, len(amphorae))
	}
	if v := gauge(failing, sqlstate); v != 1 {
		t.Errorf("octavia_hm_failover_suppressed_reason{reason=%s,sqlstate=%q} = %v; want 1", failing, sqlstate, v)
	}
	if v := testutilValue(t, d, `octavia_hm_health_batch_errors_total`); (v == 0) != (signal == "") {
		t.Errorf("%v failed batches counted", v)
	}

	if lockTx != nil {
		if err := lockTx.Rollback(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec(`UPDATE hm_fault SET mode = NULL`); err != nil {
		t.Fatal(err)
	}
	healedAt := time.Now()
	testproc.WaitFor(t, "writes recovering", func() bool { return gauge("health_writes_recovering", sqlstate) == 1 })
	if got := fake.Failovers(); len(got) != 0 {
		t.Fatalf("failover calls %v as soon as writes came back", got)
	}
	testproc.WaitFor(t, victim+" failed over", func() bool { return fake.Failovers()[victim] == 1 })
	mu.Lock()
	after := calledAt[victim].Sub(healedAt)
	mu.Unlock()
	if after < timeout {
		t.Errorf("%s failed over %v after writes came back; want at least heartbeat_timeout (%v)", victim, after, timeout)
	}
	time.Sleep(1200 * time.Millisecond)
	if got := fake.Failovers(); len(got) != 1 {
		t.Errorf("failover calls %v; want %s once and no working amphora", got, victim)
	}
	t.Logf("SQLSTATE %q: writes failed %v, 0 failovers; %s failed over %v after writes came back",
		sqlstate, healedAt.Sub(faultAt).Round(100*time.Millisecond), victim, after.Round(100*time.Millisecond))
	if err := r.Stop(); err != nil {
		t.Errorf("daemon exit: %v", err)
	}
}
