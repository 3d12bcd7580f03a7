package manager_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/octavia-vpp/health/healthdb/failover/failovertest"
	"github.com/octavia-vpp/health/healthdb/manager"
	"github.com/octavia-vpp/health/healthdb/manager/managertest"
	"github.com/octavia-vpp/health/heartbeat"
	"github.com/octavia-vpp/health/internal/testproc"
	"github.com/octavia-vpp/health/test/pgtest"
)

// writeFaultSQL installs a fault switch on heartbeat writes: while
// hm_fault.mode is set, every INSERT of an amphora_health row, and every
// UPDATE that moves its last_update, fails with a real server error. A
// claim (busy = true) does not move last_update, so the watcher's reads
// and claims keep working.
const writeFaultSQL = `
CREATE TABLE hm_fault (mode text);
INSERT INTO hm_fault VALUES (NULL);
CREATE TABLE hm_fault_probe (n int);
CREATE TABLE hm_fault_lock (n int);
CREATE FUNCTION hm_fault() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE m text;
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.last_update IS NOT DISTINCT FROM OLD.last_update THEN
        RETURN NEW;
    END IF;
    SELECT mode INTO m FROM hm_fault;
    CASE
    WHEN m IS NULL THEN
        NULL;
    WHEN m = 'statement_timeout' THEN
        -- The manager's connections run with statement_timeout = 1 s.
        PERFORM pg_sleep(5);
    WHEN m = 'read_only' THEN
        -- The transaction turns read-only; its next write is refused.
        PERFORM set_config('transaction_read_only', 'on', true);
        INSERT INTO hm_fault_probe VALUES (1);
    WHEN m = 'lock_timeout' THEN
        -- The test holds hm_fault_lock.
        PERFORM set_config('lock_timeout', '200ms', true);
        LOCK TABLE hm_fault_lock IN SHARE MODE;
    ELSE
        RAISE EXCEPTION 'injected fault' USING ERRCODE = m;
    END CASE;
    RETURN NEW;
END $$;
CREATE TRIGGER hm_fault BEFORE INSERT OR UPDATE ON amphora_health
    FOR EACH ROW EXECUTE FUNCTION hm_fault();
`

// Heartbeat writes that fail, or hang, for three times heartbeat_timeout,
// while the watcher's reads and claims succeed, fail nothing over,
// whatever the SQLSTATE; once writes succeed again, the one amphora that really went
// silent is failed over, and only after heartbeat_timeout of good writes.
// This runs the whole daemon: the updater's results reach the observer
// through serve.go's wiring.
func TestServeFailedHealthWritesFailNothingOver(t *testing.T) {
	tests := []struct {
		name, sqlstate string
		mode           string // hm_fault.mode, or row_lock
	}{
		{"57014", "57014", "statement_timeout"}, // a real statement timeout
		{"53100", "53100", "53100"},             // disk full, raised
		{"25006", "25006", "read_only"},         // a real read-only transaction
		{"55P03", "55P03", "lock_timeout"},      // a real lock timeout
		{"53300", "53300", "53300"},             // too many connections, raised
		// No error at all: a row lock held elsewhere, and no
		// lock_timeout or statement_timeout, hangs every batch.
		{"hung", "", "row_lock"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			testFailedHealthWrites(t, tt.sqlstate, tt.mode)
		})
	}
}

func testFailedHealthWrites(t *testing.T, sqlstate, mode string) {
	const timeout = 2 * time.Second // heartbeat_timeout below
	ctx := context.Background()
	url := pgtest.NewDB(t)
	conn := managertest.SeedOneLB(t, ctx, url)
	amphorae := []string{"amp-1", "amp-2", "amp-3", "amp-4", "amp-5", "amp-6"}
	for _, id := range amphorae[2:] {
		if _, err := conn.Exec(ctx, `INSERT INTO amphora (id, load_balancer_id, status, compute_id, cert_busy)
			VALUES ($1, 'lb-1', 'ALLOCATED', $2, false)`, id, "c-"+id); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := conn.Exec(ctx, writeFaultSQL); err != nil {
		t.Fatal(err)
	}
	victim := "amp-6" // goes silent when the fault starts

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
	params := ""
	switch mode {
	case "statement_timeout":
		// pgx sends it as a run-time parameter of the manager's
		// connections only.
		params = "&statement_timeout=1000"
	case "row_lock":
		failing = "health_writes_stalled"
	}
	conf := testproc.WriteFile(t, "octavia.conf", []byte(fmt.Sprintf(`[database]
connection = %s%s
[health_manager]
heartbeat_key = k
bind_ip = 127.0.0.1
bind_port = 0
metrics_bind =
health_batch_wait_ms = 5
heartbeat_timeout = 2
health_check_interval = 1
[controller_worker]
compute_driver = compute_noop_driver
%s`, url, params, fake.ServiceAuthSection())))
	var logs testproc.Output
	r := managertest.Start(t, managertest.Options{Files: []string{conf}, LogOutput: &logs})
	d := r.Manager

	udp, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(d.ListenAddr()))
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	kr, _ := heartbeat.NewKeyring(heartbeat.KeyringConfig{Keys: []string{"k"}})
	var silent sync.Map // amphorae no longer heartbeating
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
	// Healthy first: the watcher runs its checks and allows failovers.
	// On a loaded machine a batch may wait past the stall limit during
	// start-up; what matters is that failovers are allowed before the fault.
	// No amphora_health row is seeded: each is created by the manager from
	// the amphora's first heartbeat. Rows seeded before the manager starts
	// age while it starts, and the amphorae begin to send only once it
	// listens; on a loaded machine, a row whose first batch had not yet
	// committed when the start-up grace ended was stale, with its heartbeat
	// received too recently to count as a stalled write, and was failed
	// over before any fault.
	testproc.WaitFor(t, "every amphora's health row written", func() bool {
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM amphora_health`).Scan(&n); err != nil {
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

	var lockTx pgx.Tx
	if lock := map[string]string{
		"lock_timeout": `LOCK TABLE hm_fault_lock IN ACCESS EXCLUSIVE MODE`,
		"row_lock":     `SELECT 1 FROM amphora_health WHERE amphora_id = 'amp-1' FOR UPDATE`,
	}[mode]; lock != "" {
		if lockTx, err = conn.Begin(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := lockTx.Exec(ctx, lock); err != nil {
			t.Fatal(err)
		}
	}
	control, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer control.Close(ctx)
	if lockTx == nil || mode == "lock_timeout" {
		if _, err := control.Exec(ctx, `UPDATE hm_fault SET mode = $1`, mode); err != nil {
			t.Fatal(err)
		}
	}
	silent.Store(victim, true)
	faultAt := time.Now()

	// Writes fail for three heartbeat_timeouts; every row goes stale.
	time.Sleep(3*timeout - time.Since(faultAt))
	var fresh int
	if err := control.QueryRow(ctx, `SELECT count(*) FROM amphora_health WHERE last_update > $1::timestamp`,
		time.Now().UTC().Add(-timeout)).Scan(&fresh); err != nil {
		t.Fatal(err)
	}
	if fresh != 0 {
		t.Errorf("%d amphora_health rows written during the fault; the fault did not hold", fresh)
	}
	if got := fake.Failovers(); len(got) != 0 {
		t.Fatalf("%d failover calls (%v) for %d amphorae while heartbeat writes failed (%s)",
			len(got), got, len(amphorae), mode)
	}
	if v := gauge(failing, sqlstate); v != 1 {
		t.Errorf("octavia_hm_failover_suppressed_reason{reason=%s,sqlstate=%q} = %v; want 1", failing, sqlstate, v)
	}
	if v := testutilValue(t, d, `octavia_hm_health_batch_errors_total`); (v == 0) != (mode == "row_lock") {
		t.Errorf("%v failed batches counted", v)
	}

	// Writes succeed again.
	if lockTx != nil {
		if err := lockTx.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := control.Exec(ctx, `UPDATE hm_fault SET mode = NULL`); err != nil {
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
	time.Sleep(1200 * time.Millisecond) // one more health check
	if got := fake.Failovers(); len(got) != 1 {
		t.Errorf("failover calls %v; want %s once and no working amphora", got, victim)
	}
	if v := gauge(failing, ""); v != 0 {
		t.Errorf("%s gauge %v after recovery", failing, v)
	}
	out := logs.String()
	for _, want := range []string{"reason=" + failing, "sqlstate=" + sqlstate, "reason=health_writes_recovering",
		"failovers allowed again"} {
		if !strings.Contains(out, want) {
			t.Errorf("the log lacks %q", want)
		}
	}
	t.Logf("SQLSTATE %q: writes failed %v, 0 failovers; %s failed over %v after writes came back",
		sqlstate, healedAt.Sub(faultAt).Round(100*time.Millisecond), victim, after.Round(100*time.Millisecond))
	if err := r.Stop(); err != nil {
		t.Errorf("daemon exit: %v", err)
	}
}

// seriesValue reads one series from the daemon's registry, if it exists.
func seriesValue(t *testing.T, d *manager.Manager, series string) (float64, bool) {
	t.Helper()
	families, err := d.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			name := f.GetName()
			if len(m.GetLabel()) > 0 {
				var parts []string
				for _, l := range m.GetLabel() {
					parts = append(parts, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
				}
				name += "{" + strings.Join(parts, ",") + "}"
			}
			if name == series {
				if c := m.GetCounter(); c != nil {
					return c.GetValue(), true
				}
				return m.GetGauge().GetValue(), true
			}
		}
	}
	return 0, false
}
