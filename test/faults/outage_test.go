//go:build faults

package faults

import (
	"testing"
	"time"

	"github.com/octavia-vpp/health/healthdb/failover/failovertest"
	"github.com/octavia-vpp/health/test/pgtest"
)

const (
	outageAmphorae = 500
	outageLength   = 30 * time.Second
	// recoveryBound is the issue's "health updates resume within 2 s of
	// the database returning".
	recoveryBound = 2 * time.Second
)

// PostgreSQL stops for 30 s while 500 amphorae heartbeat. Nobody is failed
// over, no V3 delta is lost, and health rows are written again as soon as
// the database is back.
func TestDatabaseOutage(t *testing.T) {
	srv := pgtest.NewServer(t)
	databaseOutage(t, "outage", srv, db{t, srv.URL()}, srv.URL())
}

// The same outage on MariaDB, with the manager on the MySQL store.
func TestDatabaseOutageMariaDB(t *testing.T) {
	srv := newMariaDB(t)
	databaseOutage(t, "outage_mariadb", srv, srv.db, srv.connection)
}

// stoppable is a database server a scenario stops and starts again.
type stoppable interface {
	Stop()
	Start()
}

func databaseOutage(t *testing.T, scenario string, srv stoppable, d db, connection string) {
	fake := failovertest.New(t)
	f := newFleetOn(t, d, outageAmphorae)
	hm := startHM(t, "hm", writeConfig(t, hmConfig{database: connection, fake: fake}))
	f.setTargets(hm.udp)
	f.start()

	waitUntil(t, 30*time.Second, "every amphora's health row", func() bool {
		rows, _ := d.healthRows(time.Time{})
		return rows == outageAmphorae
	})
	// Past the start-up grace, so that the watcher is armed when the
	// database goes.
	time.Sleep(heartbeatTimeout)

	srv.Stop()
	time.Sleep(outageLength)
	if !hm.running() {
		t.Fatalf("the manager exited during the outage: %v", hm.waitErr)
	}
	suppressedDuring := hm.scrape().get("octavia_hm_health_checks_suppressed_total", "reason", "database_down")
	srv.Start()
	back := time.Now()

	var recovery time.Duration
	waitUntil(t, 30*time.Second, "a health row written after the database returned", func() bool {
		_, fresh := d.healthRows(back)
		recovery = time.Since(back)
		return fresh > 0
	})
	var allFresh time.Duration
	waitUntil(t, 30*time.Second, "every health row written after the database returned", func() bool {
		_, fresh := d.healthRows(back)
		allFresh = time.Since(back)
		return fresh == outageAmphorae
	})
	// The database_recovering suppression lasts heartbeat_timeout; run
	// armed checks after it too.
	time.Sleep(heartbeatTimeout + 3*healthCheckInterval)
	f.stop()

	sent := f.totalSent()
	// Every heartbeat the manager verified must be in the sums; one the
	// kernel dropped on a starved machine never reached it (counted apart).
	var m metrics
	waitUntil(t, 10*time.Second, "the manager to read every datagram", func() bool {
		m = hm.scrape()
		return m.get("octavia_hm_datagrams_received_total")+m.get("octavia_hm_queue_dropped_total", "queue", "socket") == float64(sent)
	})
	verified := m.get("octavia_hm_heartbeats_accepted_total")
	want := f.expected(int64(verified))
	var got statsSums
	waitUntil(t, 20*time.Second, "listener_statistics to settle", func() bool {
		got = d.stats()
		return got == want
	})
	m = hm.scrape()
	received := m.get("octavia_hm_datagrams_received_total")
	failovers := len(fake.Failovers())
	lost := verified - f.heartbeatsIn(got)
	fault(t, scenario, "amphorae", outageAmphorae, "outage_s", outageLength.Seconds(),
		"heartbeats_sent", sent, "received", received, "verified", verified,
		"kernel_dropped", m.get("octavia_hm_queue_dropped_total", "queue", "socket"), "failovers", failovers, "lost_deltas", lost,
		"recovery_s", recovery.Seconds(), "all_rows_fresh_s", allFresh.Seconds(),
		"suppressed_checks", m.byLabel("octavia_hm_health_checks_suppressed_total", "reason"),
		"health_batch_errors", m.get("octavia_hm_health_batch_errors_total"))

	if failovers != 0 {
		t.Errorf("%d amphorae failed over across a database outage: %v", failovers, fake.Failovers())
	}
	if got != want {
		t.Errorf("listener_statistics %+v after %.0f heartbeats verified; want %+v", got, verified, want)
	}
	if received != verified {
		t.Errorf("the manager read %.0f heartbeats but verified %.0f", received, verified)
	}
	if recovery > recoveryBound {
		t.Errorf("health rows written again %v after the database returned; want within %v", recovery, recoveryBound)
	}
	if suppressedDuring == 0 {
		t.Error("no health check was suppressed as database_down during the outage")
	}
	hm.stop()
}
