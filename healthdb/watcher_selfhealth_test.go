package healthdb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/octavia-vpp/health/healthdb/failover"
	"github.com/octavia-vpp/health/healthdb/failover/failovertest"
	"github.com/octavia-vpp/health/test/pgtest"
)

func TestJudgeSelfHealth(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	rules := selfHealthRules{heartbeatTimeout: 60 * time.Second}
	healthy := observerState{started: t0.Add(-time.Hour), lastHeartbeat: t0.Add(-time.Second)}
	tests := []struct {
		name   string
		change func(*observerState)
		exist  bool
		want   string
	}{
		{"healthy", func(*observerState) {}, true, ""},
		{"database down", func(s *observerState) { s.dbDown = true }, true, SuppressDatabaseDown},
		{"database back 59 s ago", func(s *observerState) { s.dbBackAt = t0.Add(-59 * time.Second) }, true, SuppressDatabaseRecovering},
		{"database back 60 s ago", func(s *observerState) { s.dbBackAt = t0.Add(-60 * time.Second) }, true, ""},
		{"no heartbeat for heartbeat_timeout", func(s *observerState) { s.lastHeartbeat = t0.Add(-60 * time.Second) }, true, SuppressNoHeartbeats},
		{"no heartbeat for a little less", func(s *observerState) { s.lastHeartbeat = t0.Add(-59 * time.Second) }, true, ""},
		{"no heartbeat but no amphora either", func(s *observerState) { s.lastHeartbeat = t0.Add(-time.Hour) }, false, ""},
		{"never a heartbeat since start", func(s *observerState) { s.lastHeartbeat = time.Time{} }, true, SuppressNoHeartbeats},
		{"never a heartbeat, started recently", func(s *observerState) {
			s.lastHeartbeat, s.started = time.Time{}, t0.Add(-30*time.Second)
		}, true, ""},
		{"heartbeats resumed 59 s ago", func(s *observerState) { s.resumedAt = t0.Add(-59 * time.Second) }, true, SuppressNoHeartbeats},
		{"heartbeats resumed 60 s ago", func(s *observerState) { s.resumedAt = t0.Add(-60 * time.Second) }, true, ""},
		// Longer ago than heartbeat_interval: with batches slower than
		// that, drops are seen that far apart (the fault suite's slow
		// database failed live amphorae over between them).
		{"dropped work 11 s ago", func(s *observerState) { s.lastDrop = t0.Add(-11 * time.Second) }, true, SuppressQueueDropping},
		{"dropped work 59 s ago", func(s *observerState) { s.lastDrop = t0.Add(-59 * time.Second) }, true, SuppressQueueDropping},
		{"dropped work 60 s ago", func(s *observerState) { s.lastDrop = t0.Add(-60 * time.Second) }, true, ""},
		{"health writes failing", func(s *observerState) { s.writesFailing = true }, true, SuppressWritesFailing},
		{"health writes failing, no amphora", func(s *observerState) { s.writesFailing = true }, false, SuppressWritesFailing},
		{"health writes failing, database down", func(s *observerState) { s.writesFailing, s.dbDown = true, true }, true, SuppressDatabaseDown},
		{"health writes failing since long ago", func(s *observerState) {
			s.writesFailing, s.writesBackAt = true, t0.Add(-time.Hour)
		}, true, SuppressWritesFailing},
		{"health writes back 59 s ago", func(s *observerState) { s.writesBackAt = t0.Add(-59 * time.Second) }, true, SuppressWritesRecovering},
		{"health writes back 60 s ago", func(s *observerState) { s.writesBackAt = t0.Add(-60 * time.Second) }, true, ""},
		{"health writes back, database back later", func(s *observerState) {
			s.writesBackAt, s.dbBackAt = t0.Add(-59*time.Second), t0.Add(-10*time.Second)
		}, true, SuppressDatabaseRecovering},
		{"health writes back 59 s ago, no amphora", func(s *observerState) { s.writesBackAt = t0.Add(-59 * time.Second) }, false, SuppressWritesRecovering},
		{"a heartbeat waiting 29 s for its batch", func(s *observerState) { s.pendingSince = t0.Add(-29 * time.Second) }, true, ""},
		{"a heartbeat waiting 30 s for its batch", func(s *observerState) { s.pendingSince = t0.Add(-30 * time.Second) }, true, SuppressWritesStalled},
		{"stalled and dropping", func(s *observerState) {
			s.pendingSince, s.lastDrop = t0.Add(-30*time.Second), t0.Add(-time.Second)
		}, true, SuppressQueueDropping},
	}
	for _, tt := range tests {
		s := healthy
		tt.change(&s)
		if got := judgeSelfHealth(s, t0, rules, tt.exist); got != tt.want {
			t.Errorf("%s: %q; want %q", tt.name, got, tt.want)
		}
	}
}

func TestObserverDatabaseResult(t *testing.T) {
	t0 := time.Now()
	tests := []struct {
		err    error
		outage bool
	}{
		{&net.OpError{Op: "dial", Err: errors.New("connection refused")}, true},
		{fmt.Errorf("claim: %w", &pgconn.PgError{Code: "08006"}), true},
		{&pgconn.PgError{Code: "57P01"}, true},
		{&pgconn.PgError{Code: "40P01"}, false}, // deadlock: the server answered
		{&pgconn.PgError{Code: "23505"}, false},
		{fmt.Errorf("cycle: %w", context.Canceled), false},
		{context.DeadlineExceeded, true},
	}
	for _, tt := range tests {
		o := NewObserver(t0, time.Minute)
		o.DatabaseResult(tt.err, t0)
		if o.state().dbDown != tt.outage {
			t.Errorf("%v: outage %v; want %v", tt.err, o.state().dbDown, tt.outage)
		}
		o.DatabaseResult(nil, t0.Add(time.Second))
		if back := o.state().dbBackAt; tt.outage != back.Equal(t0.Add(time.Second)) {
			t.Errorf("%v: back at %v", tt.err, back)
		}
	}
}

// Every failed health batch is lost work, whatever the error; failovers
// wait until batches have committed for heartbeat_timeout since the last
// failure.
func TestObserverHealthBatchResult(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	const timeout = time.Minute
	rules := selfHealthRules{heartbeatTimeout: timeout}
	batchErr := func(code string) error {
		return fmt.Errorf("write batch of 3 heartbeats: %w", &pgconn.PgError{Severity: "ERROR", Code: code, Message: "refused"})
	}
	cases := []struct {
		name     string
		err      error
		sqlstate string
		outage   bool
	}{
		{"statement timeout", batchErr("57014"), "57014", false},
		{"disk full", batchErr("53100"), "53100", false},
		{"read-only transaction", batchErr("25006"), "25006", false},
		{"too many connections", batchErr("53300"), "53300", false},
		{"lock timeout", batchErr("55P03"), "55P03", false},
		{"unique violation", batchErr("23505"), "23505", false},
		{"serialization failure, retries exhausted", batchErr("40001"), "40001", false},
		{"connection lost", batchErr("08006"), "08006", true},
		{"deadline", fmt.Errorf("apply: %w", context.DeadlineExceeded), "", true},
		{"abandoned at shutdown", fmt.Errorf("apply: %w", context.Canceled), "", false},
		{"no answer", &net.OpError{Op: "read", Err: errors.New("connection reset")}, "", true},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			o := NewObserver(t0.Add(-time.Second), timeout)
			at := t0
			judge := func() string {
				o.HeartbeatReceived(at) // heartbeats keep coming all along
				return judgeSelfHealth(o.state(), at, rules, true)
			}
			if got := judge(); got != "" {
				t.Fatalf("before any failure: %q", got)
			}
			o.HealthBatchResult(nil, at)
			if got := judge(); got != "" {
				t.Fatalf("after a success: %q", got)
			}
			o.HealthBatchResult(tt.err, at)
			if tt.outage {
				o.DatabaseResult(tt.err, at) // serve.go feeds both
			}
			// Failing for much longer than heartbeat_timeout.
			for at = t0; at.Before(t0.Add(3 * timeout)); at = at.Add(10 * time.Second) {
				o.HealthBatchResult(tt.err, at)
				want := SuppressWritesFailing
				if tt.outage {
					want = SuppressDatabaseDown
				}
				if got := judge(); got != want {
					t.Fatalf("%v into the failure: %q; want %q", at.Sub(t0), got, want)
				}
			}
			c, ok := o.Cause(SuppressWritesFailing)
			if !ok || c.SQLState != tt.sqlstate || c.Err != tt.err.Error() {
				t.Errorf("cause %+v, %v; want SQLSTATE %q and the error", c, ok, tt.sqlstate)
			}
			// Writes come back; one more failure restarts the wait.
			back := at
			o.HealthBatchResult(nil, back)
			if tt.outage {
				o.DatabaseResult(nil, back)
			}
			at = back.Add(30 * time.Second)
			o.HealthBatchResult(tt.err, at)
			if got := judge(); got != SuppressWritesFailing && got != SuppressDatabaseDown {
				t.Fatalf("failed again during the hold: %q", got)
			}
			back = at.Add(time.Second)
			o.HealthBatchResult(nil, back)
			for at = back; at.Sub(back) < timeout; at = at.Add(5 * time.Second) {
				o.HealthBatchResult(nil, at)
				if got := judge(); got != SuppressWritesRecovering && got != SuppressDatabaseRecovering {
					t.Fatalf("%v after writes came back: %q; want a recovering reason", at.Sub(back), got)
				}
			}
			if got := judge(); got != "" {
				t.Errorf("heartbeat_timeout after writes came back: %q; want failovers allowed", got)
			}
			if c, ok := o.Cause(SuppressWritesRecovering); !ok || c.SQLState != tt.sqlstate {
				t.Errorf("cause kept for the log: %+v, %v", c, ok)
			}
		})
	}
}

// A heartbeat that waits heartbeat_timeout/2 for its health batch to end
// holds failovers (a write hangs), and once the batch ends they stay held
// for heartbeat_timeout, as after a failure. Only a daemon that reports
// every batch tracks this.
func TestObserverStalledHealthWrites(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	const timeout = time.Minute
	rules := selfHealthRules{heartbeatTimeout: timeout}
	o := NewObserver(t0.Add(-time.Second), timeout)
	o.TrackHealthBatches()
	judge := func(at time.Time) string { return judgeSelfHealth(o.state(), at, rules, true) }

	// Batches that end promptly: never stalled, however sparse the
	// heartbeats.
	at := t0
	for ; at.Before(t0.Add(3 * timeout)); at = at.Add(20 * time.Second) {
		o.HeartbeatReceived(at)
		o.HealthBatchResult(nil, at.Add(20*time.Millisecond))
		if got := judge(at.Add(19 * time.Second)); got != "" {
			t.Fatalf("prompt batches: %q", got)
		}
	}
	// A batch hangs: heartbeats keep coming, none of them is written.
	hung := at
	for ; at.Sub(hung) < timeout; at = at.Add(5 * time.Second) {
		o.HeartbeatReceived(at)
		want := ""
		if at.Sub(hung) >= timeout/2 {
			want = SuppressWritesStalled
		}
		if got := judge(at); got != want {
			t.Fatalf("%v into the hang: %q; want %q", at.Sub(hung), got, want)
		}
	}
	if _, ok := o.Cause(SuppressWritesStalled); ok {
		t.Error("a stall has a cause before it ends")
	}
	// It commits at last: held for heartbeat_timeout from then.
	back := at
	o.HealthBatchResult(nil, back)
	for ; at.Sub(back) < timeout; at = at.Add(5 * time.Second) {
		o.HeartbeatReceived(at)
		o.HealthBatchResult(nil, at.Add(20*time.Millisecond))
		if got := judge(at.Add(20 * time.Millisecond)); got != SuppressWritesRecovering {
			t.Fatalf("%v after the hung batch ended: %q; want %q", at.Sub(back), got, SuppressWritesRecovering)
		}
	}
	if c, ok := o.Cause(SuppressWritesRecovering); !ok || c.SQLState != "" || !strings.Contains(c.Err, "waited 1m0s for its health batch") {
		t.Errorf("cause %+v, %v", c, ok)
	}
	if got := judge(at); got != "" {
		t.Errorf("heartbeat_timeout after the hung batch ended: %q", got)
	}

	// Without TrackHealthBatches (a watcher fed by hand), a heartbeat
	// never counts as waiting.
	untracked := NewObserver(t0, timeout)
	untracked.HeartbeatReceived(t0.Add(time.Second))
	if got := judgeSelfHealth(untracked.state(), t0.Add(50*time.Second), rules, true); got != "" {
		t.Errorf("untracked: %q", got)
	}
}

// A batch that hangs holding heartbeats which arrived while the batch
// before it ran is seen as stalled from its oldest heartbeat on: the end
// of the batch before cleared them from pendingSince. With heartbeats
// every 25 s and a 60 s timeout, the row of an amphora whose heartbeat the
// hung batch holds was refreshed 25 s before the hang and goes stale 35 s
// into it; the next heartbeat, 25 s in, would show the stall at 55 s.
func TestObserverStalledBatchOfEarlierHeartbeats(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	const timeout = time.Minute
	rules := selfHealthRules{heartbeatTimeout: timeout}
	for _, reported := range []bool{true, false} {
		o := NewObserver(t0.Add(-time.Second), timeout)
		o.TrackHealthBatches()
		o.HeartbeatReceived(t0)                           // in batch 1
		o.HeartbeatReceived(t0.Add(5 * time.Millisecond)) // left for batch 2
		o.HealthBatchResult(nil, t0.Add(10*time.Millisecond))
		if reported {
			o.HealthBatchStarted(t0.Add(5 * time.Millisecond)) // batch 2 hangs
		}
		got := judgeSelfHealth(o.state(), t0.Add(5*time.Millisecond+timeout/2), rules, true)
		want := SuppressWritesStalled
		if !reported {
			want = "" // what the rule saw before batches reported their start
		}
		if got != want {
			t.Fatalf("batch start reported %v: %q at timeout/2 into the hang; want %q", reported, got, want)
		}
		if !reported {
			continue
		}
		// It commits at last: its heartbeats waited, so the stall is held.
		o.HealthBatchResult(nil, t0.Add(35*time.Second))
		if got := judgeSelfHealth(o.state(), t0.Add(36*time.Second), rules, true); got != SuppressWritesRecovering {
			t.Errorf("after the hung batch ended: %q; want %q", got, SuppressWritesRecovering)
		}
		o.HeartbeatReceived(t0.Add(40 * time.Second))
		o.HealthBatchStarted(t0.Add(40 * time.Second))
		o.HealthBatchResult(nil, t0.Add(40*time.Second+20*time.Millisecond))
		if got := judgeSelfHealth(o.state(), t0.Add(96*time.Second), rules, true); got != "" {
			t.Errorf("a prompt batch later, heartbeat_timeout after the hang: %q", got)
		}
	}
}

// Where last_update keeps whole seconds, a stall is seen a second sooner
// (a row can look a second older than it is), down to a quarter of
// heartbeat_timeout.
func TestStallLimitWithWholeSecondRows(t *testing.T) {
	tests := []struct {
		timeout, resolution, want time.Duration
	}{
		{60 * time.Second, 0, 30 * time.Second},
		{60 * time.Second, time.Second, 29 * time.Second},
		{4 * time.Second, 0, 2 * time.Second},
		{4 * time.Second, time.Second, time.Second},
		{2 * time.Second, time.Second, 500 * time.Millisecond},
	}
	for _, tt := range tests {
		if got := stallLimit(tt.timeout, tt.resolution); got != tt.want {
			t.Errorf("stallLimit(%v, %v) = %v; want %v", tt.timeout, tt.resolution, got, tt.want)
		}
		t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
		o := NewObserver(t0.Add(-time.Second), tt.timeout)
		o.TrackHealthBatches()
		o.SetRowTimeResolution(tt.resolution)
		o.HeartbeatReceived(t0)
		rules := selfHealthRules{heartbeatTimeout: tt.timeout}
		if got := judgeSelfHealth(o.state(), t0.Add(tt.want-time.Millisecond), rules, true); got != "" {
			t.Errorf("%v, %v: %q just before the limit", tt.timeout, tt.resolution, got)
		}
		if got := judgeSelfHealth(o.state(), t0.Add(tt.want), rules, true); got != SuppressWritesStalled {
			t.Errorf("%v, %v: %q at the limit; want %q", tt.timeout, tt.resolution, got, SuppressWritesStalled)
		}
	}
}

func TestObserverHeartbeatsResume(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	o := NewObserver(t0, time.Minute)
	o.HeartbeatReceived(t0.Add(10 * time.Second)) // soon after start
	o.HeartbeatReceived(t0.Add(69 * time.Second)) // 59 s later
	if r := o.state().resumedAt; !r.IsZero() {
		t.Errorf("resumed at %v after gaps under heartbeat_timeout", r)
	}
	o.HeartbeatReceived(t0.Add(129 * time.Second)) // 60 s of silence
	if r := o.state().resumedAt; !r.Equal(t0.Add(129 * time.Second)) {
		t.Errorf("resumed at %v; want the first heartbeat after the silence", r)
	}
	late := NewObserver(t0, time.Minute)
	late.HeartbeatReceived(t0.Add(2 * time.Minute)) // the first one, long after start
	if r := late.state().resumedAt; r.IsZero() {
		t.Error("a first heartbeat heartbeat_timeout after start does not count as resumed")
	}
}

// A real outage: while PostgreSQL is down the cycle fails; once it is back
// failovers wait heartbeat_timeout, although every amphora looks stale.
func TestWatcherAfterDatabaseOutage(t *testing.T) {
	srv := pgtest.NewServer(t)
	db, err := pgxpool.New(context.Background(), srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	f := &fixture{t: t, db: db}
	f.lb("lb-1", "ACTIVE", "ONLINE", true)
	f.amphora("amp-1", "lb-1", "ALLOCATED", "")
	f.healthRow("amp-1", 10*time.Minute, false)
	fake := failovertest.New(t)
	clk := newClock()
	obs := NewObserver(clk.Now().Add(-time.Hour), time.Minute)
	w := watcherFor(t, db, octaviaAPI(t, fake), clk, func(c *WatcherConfig) { c.Observer = obs; c.DBTimeout = 2 * time.Second })
	obs.HeartbeatReceived(clk.Now())

	srv.Stop()
	if _, err := w.Cycle(context.Background()); err == nil {
		t.Fatal("cycle with the database down succeeded")
	}
	srv.Start()
	clk.Advance(time.Second)
	obs.HeartbeatReceived(clk.Now())
	var res CycleResult
	waitUntil(t, "the database back", func() bool {
		res, err = w.Cycle(context.Background())
		return err == nil
	})
	if res.Suppressed != SuppressDatabaseRecovering || res.Dispatched != 0 {
		t.Fatalf("first cycle after the outage: %+v; want suppressed (database_recovering)", res)
	}
	for i := 0; i < 2; i++ {
		clk.Advance(30 * time.Second)
		obs.HeartbeatReceived(clk.Now())
	}
	if res := cycle(t, w); res.Dispatched != 1 {
		t.Errorf("a heartbeat_timeout after the outage: %+v; want the failover", res)
	}
	if got := fake.Failovers(); got["amp-1"] != 1 {
		t.Errorf("calls %v", got)
	}
}

// The suppressed-cycles log line and octavia_hm_failover_suppressed_reason
// name the reason and the SQLSTATE behind it; a change of SQLSTATE under
// the same reason is logged again, and at most one series is 1.
func TestNoteSuppressionShowsSQLState(t *testing.T) {
	var logs strings.Builder
	reg := prometheus.NewRegistry()
	w, err := NewWatcher(WatcherConfig{
		Store: NewStore(nil), Driver: failover.Noop{}, HeartbeatTimeout: time.Minute, HealthCheckInterval: time.Second,
		Logger: slog.New(slog.NewTextHandler(&logs, nil)), Metrics: NewWatcherMetrics(reg),
	})
	if err != nil {
		t.Fatal(err)
	}
	gauges := func() map[string]float64 {
		out := map[string]float64{}
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range families {
			if f.GetName() != "octavia_hm_failover_suppressed_reason" {
				continue
			}
			for _, m := range f.GetMetric() {
				var reason, state string
				for _, l := range m.GetLabel() {
					switch l.GetName() {
					case "reason":
						reason = l.GetValue()
					case "sqlstate":
						state = l.GetValue()
					}
				}
				out[reason+"/"+state] = m.GetGauge().GetValue()
			}
		}
		return out
	}
	// lit returns the one series at 1 ("" if none) and checks every
	// reason keeps its sqlstate="" series.
	lit := func() string {
		t.Helper()
		g := gauges()
		on := ""
		for k, v := range g {
			if v == 1 {
				if on != "" {
					t.Errorf("two series at 1: %s and %s", on, k)
				}
				on = k
			}
		}
		for _, r := range SuppressReasons {
			if _, ok := g[r+"/"]; !ok {
				t.Errorf("no series for reason %s", r)
			}
		}
		return on
	}
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	if got := lit(); got != "" {
		t.Fatalf("at start %q is 1", got)
	}
	steps := []struct {
		reason string
		cause  FailureCause
		lit    string
		logged string // a new line holding this, or "" for none
	}{
		{SuppressWritesFailing, causeOf(&pgconn.PgError{Code: "57014", Message: "canceling statement due to statement timeout"}),
			"health_writes_failing/57014", "reason=health_writes_failing heartbeat_timeout=1m0s since=2026-01-01T12:00:00Z sqlstate=57014"},
		{SuppressWritesFailing, causeOf(&pgconn.PgError{Code: "57014"}), "health_writes_failing/57014", ""},
		{SuppressWritesFailing, causeOf(&pgconn.PgError{Severity: "ERROR", Code: "53100", Message: "could not extend file"}),
			"health_writes_failing/53100", "sqlstate=53100 err=\"ERROR: could not extend file (SQLSTATE 53100)\""},
		{SuppressWritesRecovering, causeOf(&pgconn.PgError{Code: "53100"}), "health_writes_recovering/53100", "reason=health_writes_recovering"},
		{SuppressNoHeartbeats, FailureCause{}, "no_heartbeats/", "reason=no_heartbeats"},
		{"", FailureCause{}, "", "failovers allowed again"},
		{SuppressDatabaseDown, causeOf(errors.New("dial tcp: connection refused")), "database_down/", "sqlstate=\"\" err=\"dial tcp: connection refused\""},
	}
	for i, s := range steps {
		before := logs.Len()
		w.noteSuppression(s.reason, now, s.cause)
		if got := lit(); got != s.lit {
			t.Errorf("step %d: series at 1 %q; want %q", i, got, s.lit)
		}
		line := logs.String()[before:]
		switch {
		case s.logged == "" && line != "":
			t.Errorf("step %d: logged %q; want nothing", i, line)
		case s.logged != "" && !strings.Contains(line, s.logged):
			t.Errorf("step %d: logged %q; want it to hold %q", i, line, s.logged)
		}
	}
}
