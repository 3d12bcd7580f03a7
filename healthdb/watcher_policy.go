package healthdb

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Pure decisions of the watcher: per-amphora backoff and the observer's
// self-health rules. Nothing here does I/O.

// backoffDelay is how long an amphora whose failover request failed
// transiently failures times in a row is left alone: base doubled per
// further failure, at most max.
func backoffDelay(failures int, base, max time.Duration) time.Duration {
	if failures <= 0 {
		return 0
	}
	d := base
	for i := 1; i < failures; i++ {
		if d >= max/2 {
			return max
		}
		d *= 2
	}
	return min(d, max)
}

// Reasons a cycle's failovers are suppressed (the "reason" label).
const (
	SuppressDatabaseDown       = "database_down"
	SuppressDatabaseRecovering = "database_recovering"
	SuppressNoHeartbeats       = "no_heartbeats"
	SuppressQueueDropping      = "health_queue_dropping"
	// SuppressBreakerRecovering: the failover_threshold breaker let go
	// less than heartbeat_timeout ago. Amphorae coming back from a mass
	// silence send their next heartbeat at their own point of the period;
	// until then they look stale, and Octavia would fail them over.
	SuppressBreakerRecovering = "breaker_recovering"
)

// SuppressReasons lists every suppression reason.
var SuppressReasons = []string{SuppressDatabaseDown, SuppressDatabaseRecovering, SuppressNoHeartbeats, SuppressQueueDropping,
	SuppressBreakerRecovering}

// breakerHolding says whether claims wait for the failover_threshold
// breaker: it was open at the last check, or let go less than hold
// (heartbeat_timeout) ago.
func breakerHolding(open bool, closedAt, now time.Time, hold time.Duration) bool {
	return open || (!closedAt.IsZero() && now.Sub(closedAt) < hold)
}

// observerState is what the observer knows at one instant. Zero times
// mean "never".
type observerState struct {
	started       time.Time
	lastHeartbeat time.Time
	// resumedAt is when heartbeats came back after a silence of at least
	// heartbeat_timeout.
	resumedAt time.Time
	lastDrop  time.Time
	dbDown    bool
	dbBackAt  time.Time
}

// selfHealthRules are the thresholds of the self-health rules.
type selfHealthRules struct {
	heartbeatTimeout time.Duration
}

// judgeSelfHealth returns why this health manager must not accuse
// amphorae right now, or "" when it may. candidatesExist says whether any
// amphora should be sending heartbeats.
func judgeSelfHealth(s observerState, now time.Time, r selfHealthRules, candidatesExist bool) string {
	switch {
	case s.dbDown:
		return SuppressDatabaseDown
	case !s.dbBackAt.IsZero() && now.Sub(s.dbBackAt) < r.heartbeatTimeout:
		return SuppressDatabaseRecovering
	case !s.lastDrop.IsZero() && now.Sub(s.lastDrop) < r.heartbeatTimeout:
		// Held for heartbeat_timeout, not heartbeat_interval: drops are
		// noticed when a batch ends, and behind a slow database batches
		// end further apart than heartbeat_interval; rows whose
		// heartbeats were dropped also need their next heartbeat
		// applied, which waits behind the same slow batches.
		return SuppressQueueDropping
	case candidatesExist && now.Sub(latest(s.lastHeartbeat, s.started)) >= r.heartbeatTimeout:
		return SuppressNoHeartbeats
	case !s.resumedAt.IsZero() && now.Sub(s.resumedAt) < r.heartbeatTimeout:
		// The other amphorae's rows are refreshed only as their own
		// heartbeats come back; until then they look stale.
		return SuppressNoHeartbeats
	}
	return ""
}

func latest(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// Observer records what the rest of the process sees of its own health:
// heartbeats received, work dropped, database results. It is safe for
// concurrent use and cheap enough to call per heartbeat.
type Observer struct {
	started       time.Time
	timeout       time.Duration
	lastHeartbeat atomic.Int64 // unix nanoseconds, 0 = never
	resumedAt     atomic.Int64
	lastDrop      atomic.Int64
	dbDown        atomic.Bool
	dbBackAt      atomic.Int64
}

// NewObserver starts an observer at the process's start time;
// heartbeatTimeout is the silence after which heartbeats that come back
// count as resumed.
func NewObserver(started time.Time, heartbeatTimeout time.Duration) *Observer {
	return &Observer{started: started, timeout: heartbeatTimeout}
}

// HeartbeatReceived records a valid heartbeat.
func (o *Observer) HeartbeatReceived(t time.Time) {
	now := t.UnixNano()
	prev := max(o.lastHeartbeat.Swap(now), o.started.UnixNano())
	if now-prev >= int64(o.timeout) {
		o.resumedAt.Store(now)
	}
}

// WorkDropped records that heartbeats were lost on their way to the
// database: discarded by a queue or dropped by the kernel unread.
func (o *Observer) WorkDropped(t time.Time) { o.lastDrop.Store(t.UnixNano()) }

// DatabaseResult records the outcome of a database operation. Only
// failures to reach the database count as an outage: an error the server
// itself returned (a deadlock, a constraint) means it is up.
func (o *Observer) DatabaseResult(err error, t time.Time) {
	if err != nil {
		if isOutage(err) {
			o.dbDown.Store(true)
		}
		return
	}
	if o.dbDown.CompareAndSwap(true, false) {
		o.dbBackAt.Store(t.UnixNano())
	}
}

func isOutage(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false // shutting down
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// Class 08 (connection exception) and 57P0x (the server is shutting
		// down or starting) mean the database is not usable.
		return strings.HasPrefix(pgErr.Code, "08") || strings.HasPrefix(pgErr.Code, "57P0")
	}
	return true // no answer from the server: refused, reset, timed out
}

func (o *Observer) state() observerState {
	at := func(v *atomic.Int64) time.Time {
		if n := v.Load(); n != 0 {
			return time.Unix(0, n)
		}
		return time.Time{}
	}
	return observerState{
		started: o.started, lastHeartbeat: at(&o.lastHeartbeat), resumedAt: at(&o.resumedAt), lastDrop: at(&o.lastDrop),
		dbDown: o.dbDown.Load(), dbBackAt: at(&o.dbBackAt),
	}
}
