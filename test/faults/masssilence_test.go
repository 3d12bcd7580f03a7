//go:build faults

package faults

import (
	"testing"
	"time"

	"github.com/octavia-vpp/health/healthdb/failover/failovertest"
	"github.com/octavia-vpp/health/test/pgtest"
)

const (
	massAmphorae  = 100
	massSilent    = 40
	massThreshold = 20
)

// More amphorae fall silent than failover_threshold allows. The circuit
// breaker trips as Octavia's does: the stale amphorae become
// FAILOVER_STOPPED and nobody is failed over. When they heartbeat again
// they go back to ALLOCATED, the breaker lets go, and none of them is
// failed over, although some are still a moment from their heartbeat at
// the first check under the threshold.
func TestMassSilence(t *testing.T) {
	srv := pgtest.NewServer(t)
	d := db{t, srv.URL()}
	fake := failovertest.New(t)
	f := newFleet(t, srv.URL(), massAmphorae)
	hm := startHM(t, "hm", writeConfig(t, hmConfig{database: srv.URL(), fake: fake, failoverThreshold: massThreshold}))
	f.setTargets(hm.udp)
	// The silent amphorae must go stale at one instant: spread over a
	// period, a check could find fewer than failover_threshold of them
	// stale and fail those over before the breaker trips (Octavia's
	// semantics too, but not what this scenario is about).
	f.burst.Store(true)
	f.start()
	waitUntil(t, 30*time.Second, "every amphora's health row", func() bool {
		rows, _ := d.healthRows(time.Time{})
		return rows == massAmphorae
	})
	time.Sleep(heartbeatTimeout)

	// The silent ones are spread over the fleet, not a block of ids.
	for a := 0; a < massSilent; a++ {
		f.silence(a*massAmphorae/massSilent, true)
	}
	silenced := time.Now()
	var tripped time.Duration
	waitUntil(t, 4*heartbeatTimeout+30*time.Second, "the breaker to stop the silent amphorae", func() bool {
		tripped = time.Since(silenced)
		return d.amphoraeWithStatus("FAILOVER_STOPPED") == massSilent && hm.scrape().get("octavia_hm_failover_breaker_open") == 1
	})
	// The breaker holds over further checks.
	time.Sleep(5 * healthCheckInterval)
	stopped := d.amphoraeWithStatus("FAILOVER_STOPPED")
	failoversWhileOpen := len(fake.Failovers())

	// They come back at their own pace, as amphorae do: each sends its
	// next heartbeat at its own point of the period.
	f.burst.Store(false)
	for a := 0; a < massAmphorae; a++ {
		f.silence(a, false)
	}
	returned := time.Now()
	var recovered time.Duration
	waitUntil(t, 4*heartbeatTimeout+30*time.Second, "the breaker closed and every amphora ALLOCATED or failed over", func() bool {
		recovered = time.Since(returned)
		return hm.scrape().get("octavia_hm_failover_breaker_open") == 0 &&
			d.amphoraeWithStatus("ALLOCATED")+len(fake.Failovers()) == massAmphorae
	})
	// Past the hold after the breaker let go.
	time.Sleep(heartbeatTimeout + 3*healthCheckInterval)
	f.stop()
	m := hm.scrape()
	calls := fake.Failovers()
	fault(t, "mass_silence", "amphorae", massAmphorae, "silent", massSilent, "failover_threshold", massThreshold,
		"failover_stopped", stopped, "failovers_while_open", failoversWhileOpen, "tripped_after_s", tripped.Seconds(),
		"breaker_closed_after_s", recovered.Seconds(), "allocated_again", d.amphoraeWithStatus("ALLOCATED"),
		"failed_over_as_breaker_closed", len(calls),
		"held_checks", m.get("octavia_hm_health_checks_suppressed_total", "reason", "breaker_recovering"),
		"stopped_metric", m.get("octavia_hm_amphorae_failover_stopped_total"),
		"recovered_metric", m.get("octavia_hm_amphorae_failover_recovered_total"))

	if stopped != massSilent {
		t.Errorf("%d amphorae FAILOVER_STOPPED while the breaker held; want the %d silent ones", stopped, massSilent)
	}
	if failoversWhileOpen != 0 {
		t.Errorf("%d failovers while the breaker held", failoversWhileOpen)
	}
	// Octavia would fail over the amphorae still stale at the first check
	// under the threshold, although their heartbeat is a moment away; the
	// watcher holds claims for heartbeat_timeout after the breaker lets
	// go, and by then every one is back.
	if len(calls) != 0 {
		t.Errorf("%d returning amphorae failed over as the breaker let go: %v", len(calls), calls)
	}
	if got := m.get("octavia_hm_health_checks_suppressed_total", "reason", "breaker_recovering"); got == 0 {
		t.Error("no check held as breaker_recovering")
	}
	if got := m.get("octavia_hm_amphorae_failover_stopped_total"); got != massSilent {
		t.Errorf("octavia_hm_amphorae_failover_stopped_total = %v; want %d", got, massSilent)
	}
	if got := m.get("octavia_hm_amphorae_failover_recovered_total"); got+float64(len(calls)) != massSilent {
		t.Errorf("octavia_hm_amphorae_failover_recovered_total = %v and %d failed over; want %d in all", got, len(calls), massSilent)
	}
	if !hm.logContains("reason=failover_threshold") {
		t.Error("no ERROR with reason=failover_threshold logged")
	}
	hm.stop()
}
