//go:build faults

package faults

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/octavia-vpp/health/healthdb/failover/failovertest"
	"github.com/octavia-vpp/health/test/mysqltest"
	"github.com/octavia-vpp/health/test/pgtest"
)

const (
	exactAmphorae = 100
	exactOutage   = 5 * time.Second
)

// V3 deltas reach listener_statistics exactly once although statistics
// flushes fail in every way the database can make them fail: a COMMIT cut
// off before the server saw it, a COMMIT the server carried out whose
// answer was lost (the ambiguous case), a database outage, and, after it,
// the answer to the COMMIT of the flush holding the outage's backlog lost
// too. The manager's connections go through a pgtest.Proxy, which cuts
// only transactions that write listener_statistics, so the health path is
// left alone.
func TestStatsExactlyOnce(t *testing.T) {
	srv := pgtest.NewServer(t)
	proxy, proxied := pgtest.NewProxy(t, srv.URL())
	statsExactlyOnce(t, "stats_exact", srv, db{t, srv.URL()}, proxied, func(afterReply bool) <-chan struct{} {
		return proxy.CutAtCommit(pgtest.CommitCut{AfterReply: afterReply, Mentioning: "listener_statistics"})
	})
}

// The same on MariaDB, with the manager on the MySQL store and its
// connections through a mysqltest.Proxy.
func TestStatsExactlyOnceMariaDB(t *testing.T) {
	srv := newMariaDB(t)
	proxy, proxiedDSN := mysqltest.NewProxy(t, srv.DSN())
	cfg, err := mysql.ParseDSN(proxiedDSN)
	if err != nil {
		t.Fatal(err)
	}
	u := url.URL{Scheme: "mysql+pymysql", User: url.User(cfg.User), Host: cfg.Addr, Path: "/" + cfg.DBName}
	statsExactlyOnce(t, "stats_exact_mariadb", srv, srv.db, u.String(), func(afterReply bool) <-chan struct{} {
		return proxy.CutAtCommit(mysqltest.CommitCut{AfterReply: afterReply, Mentioning: "listener_statistics"})
	})
}

// statsExactlyOnce runs the scenario; connection reaches the database
// through a proxy that cutAt arms.
func statsExactlyOnce(t *testing.T, scenario string, srv stoppable, d db, connection string, cutAt func(afterReply bool) <-chan struct{}) {
	fake := failovertest.New(t)
	f := newFleetOn(t, d, exactAmphorae)
	hm := startHM(t, "hm", writeConfig(t, hmConfig{database: connection, fake: fake}))
	f.setTargets(hm.udp)
	f.start()
	waitUntil(t, 30*time.Second, "every amphora's health row", func() bool {
		rows, _ := d.healthRows(time.Time{})
		return rows == exactAmphorae
	})

	cut := func(what string, afterReply bool) {
		t.Helper()
		fired := cutAt(afterReply)
		select {
		case <-fired:
		case <-time.After(20 * time.Second):
			t.Fatalf("no statistics flush COMMIT to cut (%s) in 20 s", what)
		}
		time.Sleep(time.Second) // a few flushes, the retry among them
	}
	cut("before the server sees it", false)
	cut("after the server committed", true)
	srv.Stop()
	time.Sleep(exactOutage)
	if !hm.running() {
		t.Fatalf("the manager exited during the outage: %v", hm.waitErr)
	}
	srv.Start()
	cut("the backlog's flush, after the server committed", true)
	time.Sleep(2 * time.Second)
	f.stop()

	sent := f.totalSent()
	var m metrics
	waitUntil(t, 10*time.Second, "the manager to read every datagram", func() bool {
		m = hm.scrape()
		return m.get("octavia_hm_datagrams_received_total")+m.get("octavia_hm_queue_dropped_total", "queue", "socket") == float64(sent)
	})
	verified := m.get("octavia_hm_heartbeats_accepted_total")
	want := f.expected(int64(verified))
	var got statsSums
	deadline := time.Now().Add(20 * time.Second)
	for got = d.stats(); got != want && time.Now().Before(deadline); got = d.stats() {
		time.Sleep(100 * time.Millisecond)
	}
	// Settled, and staying so: a late retry would show now.
	time.Sleep(time.Second)
	got = d.stats()
	m = hm.scrape()
	recognised := hm.logCount("not applied again")
	fault(t, scenario, "amphorae", exactAmphorae, "heartbeats_sent", sent, "verified", verified,
		"commit_cuts", 3, "outage_s", exactOutage.Seconds(),
		"flush_errors", m.get("octavia_hm_stats_flush_errors_total"),
		"flushes_found_committed", recognised,
		"discarded_rows", m.get("octavia_hm_stats_discarded_rows_total"),
		"stats_dropped", m.byLabel("octavia_hm_stats_dropped_total", "reason"),
		"heartbeats_in_sums", f.heartbeatsIn(got), "difference", f.heartbeatsIn(got)-verified)

	if got != want {
		t.Errorf("listener_statistics %+v after %.0f heartbeats verified; want %+v (%.2f heartbeats' worth)",
			got, verified, want, f.heartbeatsIn(got))
	}
	if recognised < 2 {
		t.Errorf("%d retried flushes found already committed; the two cuts after the server committed should give 2", recognised)
	}
	hm.stop()
}

// logCount counts the kept log lines holding s.
func (h *hmProcess) logCount(s string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, l := range h.log {
		if strings.Contains(l, s) {
			n++
		}
	}
	return n
}
