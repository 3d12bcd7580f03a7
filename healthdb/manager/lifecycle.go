package manager

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// Liveness, readiness and systemd's notifications (docs/operations.md,
// "Readiness and systemd").

const (
	// loopTick is how often Run's loop turns when nothing else happens:
	// it proves the loop alive (/livez) and feeds the watchdog.
	loopTick = time.Second
	// liveLimit is how long the loop may go without turning before /livez
	// fails.
	liveLimit = 10 * time.Second
	// dbPingTimeout bounds /readyz's database check, and dbPingCache is
	// how long its answer is reused: /readyz notices an outage within
	// about their sum.
	dbPingTimeout = 500 * time.Millisecond
	dbPingCache   = time.Second
)

// lifecycle holds what /livez, /readyz and the watchdog judge by.
type lifecycle struct {
	// running is set while Run serves: after the socket is bound, until
	// shutdown starts.
	running atomic.Bool
	// loopTurn is when Run's loop last turned (UnixNano).
	loopTurn atomic.Int64
	// since is when Run started; lastCommit when a health batch last
	// committed (UnixNano, 0: none yet).
	since      atomic.Int64
	lastCommit atomic.Int64
	// lastBatchFailed: the newest batch did not commit.
	lastBatchFailed atomic.Bool
	// batches counts finished batches, committed or not; delivered counts
	// heartbeats handed to the queues. The watchdog compares them between
	// pings.
	batches   atomic.Uint64
	delivered atomic.Uint64

	dbMu      sync.Mutex
	dbChecked time.Time
	dbErr     error

	// progress is what the watchdog saw at its last ping.
	progress progressMark
	// readySent: READY=1 has gone out; the watchdog is fed only after.
	readySent atomic.Bool
}

type progressMark struct {
	batches, delivered uint64
	receiveQueue       int
}

// batchDone records a finished health batch.
func (l *lifecycle) batchDone(err error, now time.Time) {
	l.batches.Add(1)
	l.lastBatchFailed.Store(err != nil)
	if err == nil {
		l.lastCommit.Store(now.UnixNano())
	}
}

// databaseReachable pings the database, at most once per dbPingCache; a
// batch committed within dbPingCache counts as a successful ping, so a
// busy pool is not asked for one more connection.
func (m *Manager) databaseReachable(ctx context.Context, now time.Time) error {
	if m.ping == nil {
		return nil // Options.Stores: the batches tell
	}
	l := &m.life
	if c := l.lastCommit.Load(); c != 0 && now.Sub(time.Unix(0, c)) < dbPingCache {
		return nil
	}
	l.dbMu.Lock()
	defer l.dbMu.Unlock()
	if !l.dbChecked.IsZero() && now.Sub(l.dbChecked) < dbPingCache {
		return l.dbErr
	}
	pingCtx, cancel := context.WithTimeout(ctx, dbPingTimeout)
	defer cancel()
	l.dbErr = m.ping(pingCtx)
	l.dbChecked = time.Now()
	return l.dbErr
}

// readiness judges whether the manager can do its job now: the socket is
// bound and read, the database answers, and heartbeats do not wait for a
// commit that has not come for 2 x health_check_interval. The map names
// each check and what it found.
func (m *Manager) readiness(ctx context.Context, now time.Time) (bool, map[string]string) {
	l := &m.life
	checks := map[string]string{}
	ready := true
	fail := func(name, reason string) {
		ready = false
		checks[name] = reason
	}
	if l.running.Load() {
		checks["socket"] = "ok"
	} else {
		fail("socket", "not serving (starting or stopping)")
	}
	if err := m.databaseReachable(ctx, now); err != nil {
		fail("database", "unreachable: "+err.Error())
	} else {
		checks["database"] = "ok"
	}
	last := max(l.lastCommit.Load(), l.since.Load())
	pending := m.healthQ.Len() > 0 || l.lastBatchFailed.Load()
	if age := now.Sub(time.Unix(0, last)); pending && last != 0 && age > 2*m.healthCheckInterval {
		fail("health_batches", "heartbeats pending; no batch committed for "+age.Round(time.Millisecond).String())
	} else if pending && last == 0 {
		fail("health_batches", "not started")
	} else {
		checks["health_batches"] = "ok"
	}
	return ready, checks
}

// readyz answers /readyz (and /healthz, its alias): 200 when ready, 503
// otherwise, with each check's finding as JSON.
func (m *Manager) readyz(w http.ResponseWriter, r *http.Request) {
	ready, checks := m.readiness(r.Context(), time.Now())
	body := map[string]any{"status": "ok", "checks": checks}
	w.Header().Set("Content-Type", "application/json")
	if !ready {
		body["status"] = "unavailable"
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(body)
}

// livez answers /livez: 200 while Run's loop turns, whatever the
// database does (a restart would not bring it back).
func (m *Manager) livez(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	turn := m.life.loopTurn.Load()
	if turn == 0 || time.Since(time.Unix(0, turn)) > liveLimit {
		w.WriteHeader(http.StatusServiceUnavailable)
		_ = json.NewEncoder(w).Encode(map[string]string{"status": "unavailable", "reason": "the main loop is not turning"})
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]string{"status": "ok"})
}

// awaitDatabase waits for the database's first answer as oslo.db's engine
// does at start (WaitForDatabase), then sends READY=1 (Type=notify): the
// socket is already bound. With [database] max_retries 0, oslo.db does not
// test the connection at start: nothing is logged and nothing gives up,
// but READY=1 still waits for the database, checked every loopTick. It
// returns an error, and Run stops, when the attempts are used up or the
// server is refused for good. With Options.Stores there is no database to
// wait for.
func (m *Manager) awaitDatabase(ctx context.Context) error {
	wait := DatabaseWait{Ping: m.ping, Where: m.dbWhere, MaxRetries: m.dbRetry.max,
		RetryInterval: m.dbRetry.interval, Logger: m.log}
	if m.ping != nil && wait.MaxRetries == 0 {
		wait.MaxRetries, wait.RetryInterval, wait.quiet = -1, loopTick, true
	}
	if err := WaitForDatabase(ctx, wait); err != nil || ctx.Err() != nil {
		return err
	}
	m.notify(daemon.SdNotifyReady)
	m.life.readySent.Store(true)
	return nil
}

// pipelineProgressed tells whether the receive loop and the updater have
// each moved since the last watchdog ping, or have nothing to do. A
// database outage is progress (batches fail and finish): a restart would
// not cure it, and heartbeats must keep being read meanwhile.
func (m *Manager) pipelineProgressed() bool {
	l := &m.life
	now := progressMark{batches: l.batches.Load(), delivered: l.delivered.Load(), receiveQueue: m.receiver.QueueLen()}
	prev := l.progress
	l.progress = now
	receiving := now.receiveQueue == 0 || now.delivered != prev.delivered || now.receiveQueue < prev.receiveQueue
	updating := m.healthQ.Len() == 0 || now.batches != prev.batches
	return receiving && updating
}

// feedWatchdog sends WATCHDOG=1 when the pipeline progressed; called from
// Run's loop every watchdog period, so a stuck loop stops the pings too.
func (m *Manager) feedWatchdog() {
	progressed := m.pipelineProgressed()
	if !m.life.readySent.Load() {
		return // systemd's watchdog starts with READY=1
	}
	if progressed {
		m.notify(daemon.SdNotifyWatchdog)
	} else {
		m.log.Warn("not feeding systemd's watchdog: the pipeline made no progress with work waiting",
			"receive_queue", m.receiver.QueueLen(), "health_queue", m.healthQ.Len())
	}
}

func (m *Manager) notify(state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		m.log.Warn("sd_notify failed", "state", state, "err", err)
	}
}

// watchdogPeriod is half of systemd's WatchdogSec, the ping period
// systemd recommends; 0 without a watchdog.
func watchdogPeriod() time.Duration {
	d, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		return 0
	}
	return d / 2
}
