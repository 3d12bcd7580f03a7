package security

import (
	"context"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/octavia-vpp/health/heartbeat"
)

// liveness watches amphora_health while a test runs: when each amphora's
// last_update last moved (by the test's clock, so database and test clocks
// need not agree), the longest it stood still, and the largest number of
// stale amphorae the health manager reported.
type liveness struct {
	mu       sync.Mutex
	last     map[string]time.Time // last_update as read
	moved    map[string]time.Time // when it last changed
	longest  map[string]time.Duration
	maxStale float64
}

func watchLiveness(t *testing.T, db *pgxpool.Pool, hm *healthManager) *liveness {
	l := &liveness{last: map[string]time.Time{}, moved: map[string]time.Time{}, longest: map[string]time.Duration{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			rows, err := db.Query(ctx, `SELECT amphora_id, last_update FROM amphora_health`)
			if err != nil {
				continue
			}
			now := time.Now()
			l.mu.Lock()
			for rows.Next() {
				var id string
				var at time.Time
				if rows.Scan(&id, &at) != nil {
					continue
				}
				if !at.Equal(l.last[id]) {
					l.last[id], l.moved[id] = at, now
				}
			}
			for id, m := range l.moved {
				l.longest[id] = max(l.longest[id], now.Sub(m))
			}
			l.mu.Unlock()
			rows.Close()
			if stale, err := hm.scrapeQuiet(); err == nil {
				l.mu.Lock()
				l.maxStale = max(l.maxStale, stale["octavia_hm_stale_amphorae"])
				l.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return l
}

// allMovedSince tells whether every amphora's last_update moved after t.
func (l *liveness) allMovedSince(amps []amphora, t time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, a := range amps {
		if !l.moved[a.id].After(t) {
			return false
		}
	}
	return true
}

// TestKeyRotationWithoutFailover rotates the heartbeat key under running
// agents as docs/operations.md tells an operator to: the health manager
// accepts both keys (SIGHUP), the agents are switched (SIGHUP for most, a
// restart for one), the old key is retired (SIGHUP). No amphora may go
// stale at any point, and the old key is refused at the end. The replay
// guard is on throughout, so the restarted agent's new boot (seq from 0
// again) must be accepted too.
func TestKeyRotationWithoutFailover(t *testing.T) {
	const (
		oldKey           = "rotation-old-k3y"
		newKey           = "rotation-new-k3y"
		heartbeatTimeout = 5 // seconds
		amphorae         = 3
	)
	url, db := newDB(t)
	amps := seedAmphorae(t, db, amphorae)
	const window = "replay_window = 30\n"
	hm := startHealthManager(t, url, heartbeatTimeout, "heartbeat_key = "+oldKey+"\n"+window)
	live := watchLiveness(t, db, hm)
	var agents []*agent
	for _, a := range amps {
		agents = append(agents, startAgent(t, a, oldKey, hm.udp))
	}
	t0 := time.Now()
	phase := func(name string) time.Time {
		t.Logf("%5.1fs phase: %s", time.Since(t0).Seconds(), name)
		return time.Now()
	}

	began := phase("old key everywhere")
	waitFor(t, "every amphora's first heartbeat", func() bool { return live.allMovedSince(amps, began) })
	// The health manager's stale check starts heartbeat_timeout after it
	// does; the rotation begins once it runs, so that it watches every step.
	waitFor(t, "the first stale-amphora check", func() bool { return hm.scrape(t)["octavia_hm_health_checks_total"] > 0 })

	step1 := phase("1: the health manager accepts both keys")
	hm.reload(t, "heartbeat_key = "+newKey+"\nheartbeat_key_previous = "+oldKey+"\n"+window)
	waitFor(t, "heartbeats under the old key, now previous", func() bool {
		return sum(hm.scrape(t), `octavia_hm_heartbeats_accepted_total{key="previous"`) > 0 && live.allMovedSince(amps, step1)
	})

	step2 := phase("2: the agents are switched to the new key")
	for i, a := range agents {
		a.writeConf(t, newKey, hm.udp)
		if i == len(agents)-1 {
			a.stop(t)
			a.restart(t)
			continue
		}
		a.signal(t, syscall.SIGHUP)
	}
	// Done when no heartbeat has arrived under the old key for a while
	// and every amphora was heard from since.
	previous, stillSince := -1.0, time.Now()
	waitFor(t, "the old key to fall silent", func() bool {
		p := sum(hm.scrape(t), `octavia_hm_heartbeats_accepted_total{key="previous"`)
		if p != previous {
			previous, stillSince = p, time.Now()
		}
		return time.Since(stillSince) > 2*time.Second && live.allMovedSince(amps, step2)
	})

	step3 := phase("3: the old key is retired")
	hm.reload(t, "heartbeat_key = "+newKey+"\n"+window)
	// Longer than heartbeat_timeout, so that an amphora still on the old
	// key would be found stale by the health manager's own check.
	time.Sleep((heartbeatTimeout + 2) * time.Second)
	if !live.allMovedSince(amps, step3) {
		t.Error("an amphora fell silent after the old key was retired")
	}
	m := hm.scrape(t)
	if n := m[rejected("bad_mac")]; n != 0 {
		t.Errorf("%v heartbeats refused for their key during the rotation", n)
	}
	for _, reason := range []string{"replay_not_newer", "replay_ts_outside_window", "replay_fields_invalid"} {
		if n := m[rejected(reason)]; n != 0 {
			t.Errorf("%v agent heartbeats refused as %s", n, reason)
		}
	}

	// The old key is refused now.
	old, _ := heartbeat.NewKeyring(heartbeat.KeyringConfig{Keys: []string{oldKey}})
	conn, err := net.Dial("udp", hm.udp)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write(old.SealMessage(&heartbeat.Message{AmphoraID: amps[0].id, Listeners: []heartbeat.Listener{}})); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the old key refused", func() bool { return hm.scrape(t)[rejected("bad_mac")] == 1 })

	m = hm.scrape(t)
	if m["octavia_hm_health_checks_total"] == 0 {
		t.Error("the health manager never checked for stale amphorae; the test proves nothing")
	}
	if n := sum(m, "octavia_hm_failover_claims_total") + sum(m, "octavia_hm_failovers_total"); n != 0 {
		t.Errorf("%v failovers", n)
	}
	live.mu.Lock()
	defer live.mu.Unlock()
	if live.maxStale != 0 {
		t.Errorf("the health manager reported up to %v stale amphorae", live.maxStale)
	}
	for _, a := range amps {
		gap := live.longest[a.id]
		t.Logf("%s: longest without a heartbeat applied: %v", a.id, gap.Round(10*time.Millisecond))
		if gap >= heartbeatTimeout*time.Second {
			t.Errorf("%s went %v without a heartbeat applied (heartbeat_timeout %ds)", a.id, gap, heartbeatTimeout)
		}
	}
	phase("done")
	for _, a := range agents {
		a.stop(t)
	}
	hm.stop(t)
	if log := hm.log.String(); strings.Contains(log, oldKey) || strings.Contains(log, newKey) {
		t.Error("the health manager's log shows key material")
	}
}
