package healthdb

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"
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
	// SuppressWritesFailing: the last health batch was not committed,
	// whatever the error (a statement timeout, a full disk, a read-only
	// database, a lock timeout, a deadline): the heartbeats it held were
	// lost, so the rows of working amphorae age as if they were silent.
	SuppressWritesFailing = "health_writes_failing"
	// SuppressWritesRecovering: health batches commit again, but less
	// than heartbeat_timeout ago; amphorae whose heartbeats were lost are
	// refreshed only by their next one.
	SuppressWritesRecovering = "health_writes_recovering"
	// SuppressWritesStalled: a heartbeat received heartbeat_timeout/2 ago
	// or more is still waiting for a health batch to end: a write hangs
	// (a row lock held elsewhere, a database that never answers), and the
	// rows of working amphorae age behind it.
	SuppressWritesStalled = "health_writes_stalled"
)

// SuppressReasons lists every suppression reason.
var SuppressReasons = []string{SuppressDatabaseDown, SuppressDatabaseRecovering, SuppressNoHeartbeats, SuppressQueueDropping,
	SuppressBreakerRecovering, SuppressWritesFailing, SuppressWritesRecovering, SuppressWritesStalled}

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
	// writesFailing is set while the last health batch failed;
	// writesBackAt is when one committed again after a failure.
	writesFailing bool
	writesBackAt  time.Time
	// rowTimeResolution is the precision of amphora_health.last_update.
	rowTimeResolution time.Duration
	// pendingSince is when the oldest heartbeat no health batch has
	// ended after was received (the batch under way's oldest, or the
	// first received since the last batch ended); zero when none waits or
	// batches are not tracked.
	pendingSince time.Time
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
	case s.writesFailing:
		// This manager cannot commit the heartbeats it receives: it must
		// not accuse amphorae of silence, however well its reads work.
		return SuppressWritesFailing
	case !s.dbBackAt.IsZero() && now.Sub(s.dbBackAt) < r.heartbeatTimeout:
		return SuppressDatabaseRecovering
	case !s.writesBackAt.IsZero() && now.Sub(s.writesBackAt) < r.heartbeatTimeout:
		// Every amphora whose heartbeat was lost needs its next one
		// committed; a new failure starts the wait again.
		return SuppressWritesRecovering
	case !s.lastDrop.IsZero() && now.Sub(s.lastDrop) < r.heartbeatTimeout:
		// Held for heartbeat_timeout, not heartbeat_interval: drops are
		// noticed when a batch ends, and behind a slow database batches
		// end further apart than heartbeat_interval; rows whose
		// heartbeats were dropped also need their next heartbeat
		// applied, which waits behind the same slow batches.
		return SuppressQueueDropping
	case !s.pendingSince.IsZero() && now.Sub(s.pendingSince) >= stallLimit(r.heartbeatTimeout, s.rowTimeResolution):
		return SuppressWritesStalled
	case candidatesExist && now.Sub(latest(s.lastHeartbeat, s.started)) >= r.heartbeatTimeout:
		return SuppressNoHeartbeats
	case !s.resumedAt.IsZero() && now.Sub(s.resumedAt) < r.heartbeatTimeout:
		// The other amphorae's rows are refreshed only as their own
		// heartbeats come back; until then they look stale.
		return SuppressNoHeartbeats
	}
	return ""
}

// stallLimit is how long a received heartbeat may wait for a health
// batch to end before the writes count as stalled. A row is refreshed at
// most an amphora's heartbeat interval apart, which Octavia's defaults
// keep at a sixth of heartbeat_timeout (10 s of 60 s): a stall this long
// is seen before any row of a working amphora ages past
// heartbeat_timeout, as long as the interval is at most half of it. A
// batch that merely takes long (a slow database) stays well under it.
// Where last_update keeps whole seconds (Octavia's DATETIME column on
// MySQL and MariaDB), a row can look up to that resolution older than it
// is, and the stall is seen that much sooner, down to a quarter of
// heartbeat_timeout.
func stallLimit(heartbeatTimeout, rowTimeResolution time.Duration) time.Duration {
	return max(heartbeatTimeout/2-rowTimeResolution, heartbeatTimeout/4)
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
	lastOutage    atomic.Pointer[FailureCause]
	writesFailing atomic.Bool
	writesBackAt  atomic.Int64
	lastWriteErr  atomic.Pointer[FailureCause]
	// trackBatches enables pendingSince (TrackHealthBatches).
	trackBatches atomic.Bool
	pendingSince atomic.Int64
	// runningSince is when the oldest heartbeat of the health batch under
	// way was received (HealthBatchStarted); 0 when none runs.
	runningSince atomic.Int64
	// rowTimeResolution is the precision of amphora_health.last_update
	// (SetRowTimeResolution).
	rowTimeResolution atomic.Int64
}

// SetRowTimeResolution says that the database keeps amphora_health's
// last_update to this precision (a second on MySQL and MariaDB, whose
// DATETIME column drops the fraction): rows can then look up to that much
// older than they are, and a stall must be seen that much sooner.
func (o *Observer) SetRowTimeResolution(d time.Duration) { o.rowTimeResolution.Store(int64(d)) }

// FailureCause is what the observer keeps of an error, for the
// suppression log line and the metric's labels.
type FailureCause struct {
	// SQLState is the PostgreSQL error code, or "" when the error carried
	// none (no answer, a deadline, a lost connection).
	SQLState string
	Err      string
}

func causeOf(err error) FailureCause {
	c := FailureCause{SQLState: SQLState(err)}
	if err != nil {
		c.Err = err.Error()
	}
	return c
}

// SQLState returns the SQLSTATE of a PostgreSQL or MySQL error wrapped in
// err, or "".
func SQLState(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	var myErr *mysql.MySQLError
	if errors.As(err, &myErr) && myErr.SQLState != [5]byte{} {
		return string(myErr.SQLState[:])
	}
	return ""
}

// NewObserver starts an observer at the process's start time;
// heartbeatTimeout is the silence after which heartbeats that come back
// count as resumed.
func NewObserver(started time.Time, heartbeatTimeout time.Duration) *Observer {
	return &Observer{started: started, timeout: heartbeatTimeout}
}

// TrackHealthBatches says that every heartbeat passed to
// HeartbeatReceived goes to health batches whose end is reported to
// HealthBatchResult; from then on, a heartbeat that waits
// heartbeat_timeout/2 for a batch to end suppresses failovers
// (health_writes_stalled).
func (o *Observer) TrackHealthBatches() { o.trackBatches.Store(true) }

// HealthBatchStarted records that a health batch holding heartbeats
// received from oldest on is being applied. Heartbeats that arrived while
// the batch before it ran are not in pendingSince, which that batch's end
// cleared; without this, a hang of this batch would be seen only from the
// next heartbeat on, up to a heartbeat interval later than the rows it
// holds began to age.
func (o *Observer) HealthBatchStarted(oldest time.Time) {
	if o.trackBatches.Load() && !oldest.IsZero() {
		o.runningSince.Store(oldest.UnixNano())
	}
}

// waitingSince is the earlier of pendingSince and runningSince, ignoring
// zeros.
func (o *Observer) waitingSince() int64 {
	p, r := o.pendingSince.Load(), o.runningSince.Load()
	if p == 0 || (r != 0 && r < p) {
		return r
	}
	return p
}

// HeartbeatReceived records a valid heartbeat.
func (o *Observer) HeartbeatReceived(t time.Time) {
	now := t.UnixNano()
	if o.trackBatches.Load() {
		// Only the first heartbeat after a batch's end is recorded: a
		// heartbeat that arrives while a batch runs and is left for the
		// next one is caught up by the one after it, a heartbeat gap
		// later.
		o.pendingSince.CompareAndSwap(0, now)
	}
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
			c := causeOf(err)
			o.lastOutage.Store(&c)
			o.dbDown.Store(true)
		}
		return
	}
	if o.dbDown.CompareAndSwap(true, false) {
		o.dbBackAt.Store(t.UnixNano())
	}
}

// HealthBatchResult records the outcome of a health batch. Any error
// counts: whether the server refused the write (57014, 53100, 25006,
// 53300, 55P03, ...), never answered, or the batch was abandoned, the
// heartbeats it held were not committed. Failovers then stay suspended
// until batches have committed for heartbeat_timeout.
func (o *Observer) HealthBatchResult(err error, t time.Time) {
	// pendingSince is cleared last (only this goroutine clears it; a
	// heartbeat sets it only when clear), so that state, which reads it
	// first, never sees it clear before the rule that replaces it.
	pending := o.waitingSince()
	defer func() {
		o.runningSince.Store(0)
		o.pendingSince.Store(0)
	}()
	if err != nil {
		c := causeOf(err)
		o.lastWriteErr.Store(&c)
		o.writesFailing.Store(true)
		return
	}
	waited := time.Duration(t.UnixNano() - pending)
	stalled := pending != 0 && waited >= stallLimit(o.timeout, time.Duration(o.rowTimeResolution.Load()))
	if stalled {
		// A stall that ends is held like a failure: heartbeats waited
		// behind it, and a hung batch writes the time it began.
		c := FailureCause{Err: fmt.Sprintf("a received heartbeat waited %v for its health batch", waited.Round(time.Millisecond))}
		o.lastWriteErr.Store(&c)
	}
	if stalled || o.writesFailing.Load() {
		// writesBackAt first (state reads them in the other order): a
		// reader always sees one of the two rules hold.
		o.writesBackAt.Store(t.UnixNano())
		o.writesFailing.Store(false)
	}
}

// Cause returns the error behind a suppression reason, when it has one.
func (o *Observer) Cause(reason string) (FailureCause, bool) {
	var p *FailureCause
	switch reason {
	case SuppressDatabaseDown, SuppressDatabaseRecovering:
		p = o.lastOutage.Load()
	case SuppressWritesFailing, SuppressWritesRecovering:
		p = o.lastWriteErr.Load()
	}
	if p == nil {
		return FailureCause{}, false
	}
	return *p, true
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
	var myErr *mysql.MySQLError
	if errors.As(err, &myErr) {
		// The server answered; only a connection-class SQLSTATE or
		// "server shutdown in progress" (ER_SERVER_SHUTDOWN) means it is
		// not usable. Any other answer is a failed write.
		return myErr.SQLState[0] == '0' && myErr.SQLState[1] == '8' || myErr.Number == 1053
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
	// The health-write fields are read in the reverse order of
	// HealthBatchResult's stores, so that the end of a failure or a
	// stall is never missed by every rule at once.
	var pendingSince time.Time
	if n := o.waitingSince(); n != 0 {
		pendingSince = time.Unix(0, n)
	}
	writesFailing := o.writesFailing.Load()
	writesBackAt := at(&o.writesBackAt)
	return observerState{
		started: o.started, lastHeartbeat: at(&o.lastHeartbeat), resumedAt: at(&o.resumedAt), lastDrop: at(&o.lastDrop),
		dbDown: o.dbDown.Load(), dbBackAt: at(&o.dbBackAt),
		writesFailing: writesFailing, writesBackAt: writesBackAt, pendingSince: pendingSince,
		rowTimeResolution: time.Duration(o.rowTimeResolution.Load()),
	}
}
