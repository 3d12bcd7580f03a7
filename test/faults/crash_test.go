//go:build faults

package faults

import (
	"testing"
	"time"

	"github.com/octavia-vpp/health/healthdb/failover/failovertest"
	"github.com/octavia-vpp/health/test/pgtest"
)

const (
	crashAmphorae = 300
	// crashDowntime is longer than heartbeat_timeout: every row is stale
	// when the manager comes back, so only the start-up grace stands
	// between the restart and a mass failover.
	crashDowntime = heartbeatTimeout + 2*time.Second
)

// The manager is killed with SIGKILL under load and started again. Rows
// have gone stale meanwhile, but the start-up grace gives amphorae time to
// reach it: nobody is failed over. No delta is written twice: the
// statistics the first process committed plus exactly what the second one
// received are in listener_statistics.
func TestManagerCrash(t *testing.T) {
	srv := pgtest.NewServer(t)
	d := db{t, srv.URL()}
	fake := failovertest.New(t)
	f := newFleet(t, srv.URL(), crashAmphorae)
	conf := writeConfig(t, hmConfig{database: srv.URL(), fake: fake, udpPort: freeUDPPort(t)})
	first := startHM(t, "hm-1", conf)
	f.setTargets(first.udp)
	f.start()
	waitUntil(t, 30*time.Second, "every amphora's health row", func() bool {
		rows, _ := d.healthRows(time.Time{})
		return rows == crashAmphorae
	})
	time.Sleep(heartbeatTimeout)
	sentBeforeKill := f.totalSent()
	first.kill()

	// What the killed process committed: once PostgreSQL has rolled back
	// whatever transaction it had open, the sums stop moving.
	committed := d.stats()
	waitUntil(t, 10*time.Second, "the killed manager's last transaction to end", func() bool {
		time.Sleep(500 * time.Millisecond)
		now := d.stats()
		stable := now == committed
		committed = now
		return stable
	})
	time.Sleep(crashDowntime - time.Second)
	staleAtRestart := d.staleRows()

	second := startHM(t, "hm-2", conf)
	restarted := time.Now()
	// The grace, then armed checks.
	time.Sleep(heartbeatTimeout + 5*healthCheckInterval)
	f.stop()
	var received float64
	waitUntil(t, 10*time.Second, "the second manager to apply what it received", func() bool {
		m := second.scrape()
		received = m.get("octavia_hm_heartbeats_accepted_total")
		return m.get("octavia_hm_heartbeats_applied_total") == received
	})
	want := committed
	extra := f.expected(int64(received))
	want.bytesIn += extra.bytesIn
	want.bytesOut += extra.bytesOut
	want.totalConns += extra.totalConns
	want.requestErrors += extra.requestErrors
	var got statsSums
	waitUntil(t, 20*time.Second, "listener_statistics to settle", func() bool {
		got = d.stats()
		return got == want
	})
	_, fresh := d.healthRows(restarted)
	failovers := len(fake.Failovers())
	m := second.scrape()
	fault(t, "crash", "amphorae", crashAmphorae, "downtime_s", crashDowntime.Seconds(),
		"stale_rows_at_restart", staleAtRestart, "failovers", failovers,
		"duplicate_deltas", f.heartbeatsIn(got)-f.heartbeatsIn(committed)-received,
		"lost_in_kill", float64(sentBeforeKill)-f.heartbeatsIn(committed),
		"rows_refreshed_after_restart", fresh,
		"suppressed_checks", m.byLabel("octavia_hm_health_checks_suppressed_total", "reason"))

	if staleAtRestart != crashAmphorae {
		t.Errorf("%d of %d rows stale when the manager restarted; the scenario needs them all stale", staleAtRestart, crashAmphorae)
	}
	if failovers != 0 {
		t.Errorf("%d amphorae failed over after a restart: %v", failovers, fake.Failovers())
	}
	if got != want {
		t.Errorf("listener_statistics %+v; want the killed manager's %+v plus %.0f heartbeats' deltas, %+v",
			got, committed, received, want)
	}
	if fresh != crashAmphorae {
		t.Errorf("%d of %d rows refreshed after the restart", fresh, crashAmphorae)
	}
	second.stop()
}
