//go:build faults

package faults

import (
	"net/url"
	"testing"
	"time"

	"github.com/octavia-vpp/health/healthdb/failover/failovertest"
	"github.com/octavia-vpp/health/test/pgtest"
)

const (
	slowAmphorae = 500
	// slowOneWay on each direction adds 200 ms to every round trip
	// between the manager and PostgreSQL.
	slowOneWay = 100 * time.Millisecond
	slowRun    = 25 * time.Second
)

// PostgreSQL answers 200 ms later than usual. Either the manager keeps
// every amphora_health row fresh, or it says it is falling behind (health
// queue drops) and the observer rule stops it from failing amphorae over;
// in no case is a live amphora failed over.
func TestSlowDatabase(t *testing.T) {
	srv := pgtest.NewServer(t)
	d := db{t, srv.URL()}
	fake := failovertest.New(t)
	f := newFleet(t, srv.URL(), slowAmphorae)
	u, err := url.Parse(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	proxy := newLatencyProxy(t, u.Host, slowOneWay)
	hm := startHM(t, "hm", writeConfig(t, hmConfig{database: proxy.proxiedURL(t, srv.URL()), fake: fake}))
	f.setTargets(hm.udp)
	f.start()

	waitUntil(t, 30*time.Second, "every amphora's health row", func() bool {
		rows, _ := d.healthRows(time.Time{})
		return rows == slowAmphorae
	})
	// Sample from the end of the start-up grace on: staleness before it
	// is not acted upon.
	time.Sleep(heartbeatTimeout)
	var maxStale, samples int
	var maxAge time.Duration
	for end := time.Now().Add(slowRun); time.Now().Before(end); {
		if n := d.staleRows(); n > maxStale {
			maxStale = n
		}
		var oldest time.Time
		d.mustQuery(`SELECT min(last_update) FROM amphora_health`, nil, &oldest)
		if age := time.Now().UTC().Sub(oldest); age > maxAge {
			maxAge = age
		}
		samples++
		time.Sleep(500 * time.Millisecond)
	}
	f.stop()
	m := hm.scrape()
	failovers := len(fake.Failovers())
	suppressed := m.get("octavia_hm_health_checks_suppressed_total")
	outcome := "fresh"
	if maxStale > 0 {
		outcome = "surfaced_and_suppressed"
	}
	fault(t, "slow_db", "amphorae", slowAmphorae, "added_rtt_ms", (2 * slowOneWay).Milliseconds(),
		"run_s", slowRun.Seconds(), "failovers", failovers, "max_stale_rows", maxStale,
		"max_row_age_s", maxAge.Seconds(), "outcome", outcome,
		"suppressed_checks", m.byLabel("octavia_hm_health_checks_suppressed_total", "reason"),
		"applied", m.byLabel("octavia_hm_heartbeats_applied_total", "outcome"),
		"queue_dropped", m.byLabel("octavia_hm_queue_dropped_total", "queue"),
		"health_checks", m.get("octavia_hm_health_checks_total"),
		"batch_mean_s", m.mean("octavia_hm_health_batch_duration_seconds"),
		"batch_mean_size", m.mean("octavia_hm_health_batch_size"))

	if failovers != 0 {
		t.Errorf("%d live amphorae failed over behind a slow database: %v", failovers, fake.Failovers())
	}
	if maxStale > 0 && suppressed == 0 {
		t.Errorf("up to %d rows went stale but no health check was suppressed", maxStale)
	}
	if m.get("octavia_hm_health_checks_total") == 0 {
		t.Error("the watcher ran no health check")
	}
	hm.stop()
}
