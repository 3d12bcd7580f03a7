//go:build faults

package faults

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/octavia-vpp/health/healthdb/failover/failovertest"
	"github.com/octavia-vpp/health/healthdb/manager/loadgen"
	"github.com/octavia-vpp/health/test/pgtest"
)

const (
	multiAmphorae = 300
	multiManagers = 3
	// Every silentEvery-th amphora stops heartbeating.
	silentEvery = 10
)

// Three managers share one database; every amphora round-robins its
// heartbeats across them. Some amphorae fall silent: each of them is
// failed over exactly once, by whichever manager claims it, and no live
// amphora is.
func TestThreeManagersOneDatabase(t *testing.T) {
	srv := pgtest.NewServer(t)
	d := db{t, srv.URL()}
	fake := failovertest.New(t)
	f := newFleet(t, srv.URL(), multiAmphorae)
	var hms []*hmProcess
	var targets []netip.AddrPort
	for i := 0; i < multiManagers; i++ {
		hm := startHM(t, fmt.Sprintf("hm-%d", i+1), writeConfig(t, hmConfig{database: srv.URL(), fake: fake}))
		hms = append(hms, hm)
		targets = append(targets, hm.udp)
	}
	f.setTargets(targets...)
	f.start()
	waitUntil(t, 30*time.Second, "every amphora's health row", func() bool {
		rows, _ := d.healthRows(time.Time{})
		return rows == multiAmphorae
	})
	// Every manager hears every amphora (the round robin), past the grace.
	time.Sleep(heartbeatTimeout)

	silent := map[string]bool{}
	for a := 0; a < multiAmphorae; a += silentEvery {
		f.silence(a, true)
		silent[loadgen.AmphoraID(a)] = true
	}
	silenced := time.Now()
	var detection time.Duration
	waitUntil(t, 4*heartbeatTimeout+30*time.Second, "every silent amphora failed over", func() bool {
		detection = time.Since(silenced)
		return len(fake.Failovers()) >= len(silent)
	})
	// More checks by every manager: nothing is failed over again.
	time.Sleep(5 * healthCheckInterval)
	f.stop()

	calls := fake.Failovers()
	var once, duplicates, live int
	for id, n := range calls {
		switch {
		case !silent[id]:
			live++
		case n == 1:
			once++
		default:
			duplicates++
		}
	}
	perManager := ""
	for _, hm := range hms {
		perManager += fmt.Sprintf("%s:%.0f,", hm.name, hm.scrape().get("octavia_hm_failovers_total", "result", "accepted"))
	}
	fault(t, "three_managers", "amphorae", multiAmphorae, "managers", multiManagers, "silent", len(silent),
		"failed_over_once", once, "failed_over_twice_or_more", duplicates, "live_failed_over", live,
		"last_failover_after_silence_s", detection.Seconds(), "accepted_by", perManager[:len(perManager)-1])

	if once != len(silent) || duplicates != 0 || live != 0 {
		t.Errorf("failover calls %v; want each of the %d silent amphorae exactly once and no live one", calls, len(silent))
	}
	for _, hm := range hms {
		hm.stop()
	}
}
