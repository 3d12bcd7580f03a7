package healthdb_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/octavia-vpp/health/healthdb"
	"github.com/octavia-vpp/health/healthdb/failover/failovertest"
	"github.com/octavia-vpp/health/healthdb/memstore"
)

// A 409 (immutable load balancer) releases the claim without ending the
// cycle; a later cycle retries. Other amphorae of the cycle go on.
func TestWatcherConflictReleasesAndRetries(t *testing.T) {
	f := newMemFleet(nil)
	for _, id := range []string{"amp-busy-lb", "amp-other"} {
		f.amphora(id, "lb-1", "ALLOCATED", 10*time.Minute, false)
	}
	fake := failovertest.New(t)
	fake.Respond(func(id string, call int) int {
		if id == "amp-busy-lb" && call == 1 {
			return http.StatusConflict
		}
		return http.StatusAccepted
	})
	w := memWatcher(t, f, octaviaAPI(t, fake), nil, nil)
	if res := cycle(t, w); res.Dispatched != 2 {
		t.Fatalf("first cycle dispatched %d; want both amphorae", res.Dispatched)
	}
	if f.busy(t, "amp-busy-lb") {
		t.Error("after a 409 the amphora is still claimed")
	}
	if !f.busy(t, "amp-other") {
		t.Error("the other amphora's accepted failover lost its claim")
	}
	if res := cycle(t, w); res.Dispatched != 1 {
		t.Fatalf("second cycle dispatched %d; want the 409 one again", res.Dispatched)
	}
	if got := fake.Failovers(); got["amp-busy-lb"] != 2 || got["amp-other"] != 1 {
		t.Errorf("calls %v; want amp-busy-lb twice (409 then 202) and amp-other once", got)
	}
	if !f.busy(t, "amp-busy-lb") {
		t.Error("the retried failover was accepted but the amphora is not claimed")
	}
}

// A 5xx, a network error or a 404 releases the claim and backs the
// amphora off exponentially, capped; the others are not held up.
func TestWatcherBacksOffTransientFailures(t *testing.T) {
	clk := newClock()
	f := newMemFleet(clk.Now)
	for _, id := range []string{"amp-5xx", "amp-404"} {
		f.amphora(id, "lb-1", "ALLOCATED", 10*time.Minute, false)
	}
	fake := failovertest.New(t)
	fake.Respond(func(id string, call int) int {
		switch {
		case id == "amp-404":
			return http.StatusNotFound
		case call <= 3:
			return http.StatusServiceUnavailable
		}
		return http.StatusAccepted
	})
	w := memWatcher(t, f, octaviaAPI(t, fake), clk, func(c *healthdb.WatcherConfig) {
		c.BackoffBase, c.BackoffMax = 10*time.Second, 25*time.Second
	})
	// Failures at 0 s (backoff 10 s), 11 s (20 s), 32 s (25 s, capped),
	// then accepted at 58 s.
	steps := []struct {
		advance time.Duration
		want5xx int // calls so far
	}{
		{0, 1}, {5 * time.Second, 1}, {6 * time.Second, 2}, {19 * time.Second, 2}, {2 * time.Second, 3},
		{24 * time.Second, 3}, {2 * time.Second, 4}, {time.Minute, 4},
	}
	for i, s := range steps {
		clk.Advance(s.advance)
		cycle(t, w)
		if got := fake.Failovers()["amp-5xx"]; got != s.want5xx {
			t.Fatalf("step %d (+%v): %d calls; want %d", i, s.advance, got, s.want5xx)
		}
		if busy, wantBusy := f.busy(t, "amp-5xx"), s.want5xx == 4; busy != wantBusy {
			t.Fatalf("step %d: busy %v; want %v (released after each failure, kept once accepted)", i, busy, wantBusy)
		}
	}
	if f.busy(t, "amp-404") {
		t.Error("an amphora the API does not know stays claimed")
	}
	// The same schedule: 0 s, 11 s, 32 s, 58 s, 118 s.
	if n := fake.Failovers()["amp-404"]; n != 5 {
		t.Errorf("amp-404 called %d times over 2 minutes; want 5, backed off", n)
	}
	f.PutAmphora(memstore.Amphora{ID: "amp-404", LoadBalancerID: "lb-1", Status: "DELETED"})

	// A network error is transient too.
	f.amphora("amp-net", "lb-1", "ALLOCATED", 10*time.Minute, false)
	down := failovertest.New(t)
	driver := octaviaAPI(t, down)
	down.Server.Close()
	w2 := memWatcher(t, f, driver, clk, func(c *healthdb.WatcherConfig) { c.BackoffBase = time.Hour })
	if res := cycle(t, w2); res.Dispatched != 1 {
		t.Fatalf("dispatched %d; want amp-net", res.Dispatched)
	}
	if f.busy(t, "amp-net") {
		t.Error("after a network error the amphora is still claimed")
	}
	if res := cycle(t, w2); res.Dispatched != 0 {
		t.Errorf("dispatched %d right after a network error; want it backed off", res.Dispatched)
	}
}

// Nothing is claimed, marked or called during the start-up grace of
// heartbeat_timeout; the first failover comes after it.
func TestWatcherStartupGrace(t *testing.T) {
	f := newMemFleet(nil)
	ids := []string{"amp-1", "amp-2", "amp-3"}
	for _, id := range ids {
		f.amphora(id, "lb-1", "ALLOCATED", 3*time.Hour, false)
	}
	fake := failovertest.New(t)
	var mu sync.Mutex
	var firstCall time.Time
	fake.Respond(func(string, int) int {
		mu.Lock()
		if firstCall.IsZero() {
			firstCall = time.Now()
		}
		mu.Unlock()
		return http.StatusAccepted
	})
	// A grace of an hour with a breaker that would trip: after many
	// health_check_intervals nothing has happened at all.
	long := memWatcher(t, f, octaviaAPI(t, fake), nil, func(c *healthdb.WatcherConfig) {
		c.HeartbeatTimeout, c.HealthCheckInterval = time.Hour, 10*time.Millisecond
		c.FailoverThreshold, c.FailoverThresholdSet = 1, true
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { long.Run(ctx); close(done) }()
	time.Sleep(200 * time.Millisecond)
	cancel()
	<-done
	if got := fake.Failovers(); len(got) != 0 {
		t.Errorf("failover calls during the grace: %v", got)
	}
	for _, id := range ids {
		if status, busy := f.status(id), f.busy(t, id); status != "ALLOCATED" || busy {
			t.Errorf("%s changed during the grace: %s busy %v", id, status, busy)
		}
	}

	// With a short grace the failovers come, and not before it ends.
	const grace = 300 * time.Millisecond
	short := memWatcher(t, f, octaviaAPI(t, fake), nil, func(c *healthdb.WatcherConfig) {
		c.HeartbeatTimeout, c.HealthCheckInterval = grace, 10*time.Millisecond
	})
	ctx, cancel = context.WithCancel(context.Background())
	done = make(chan struct{})
	start := time.Now()
	go func() { short.Run(ctx); close(done) }()
	waitUntil(t, "three failovers", func() bool { return len(fake.Failovers()) == 3 })
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	if firstCall.Sub(start) < grace {
		t.Errorf("first failover %v after start; the grace is %v", firstCall.Sub(start), grace)
	}
}

// counter reads one labelled counter of a registry.
func counter(t *testing.T, g prometheus.Gatherer, name, label, value string) float64 {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, fam := range families {
		if fam.GetName() != name {
			continue
		}
		for _, m := range fam.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// Stopping cancels the requests under way and releases their claims.
func TestWatcherShutdownReleasesClaims(t *testing.T) {
	f := newMemFleet(nil)
	f.amphora("amp-1", "lb-1", "ALLOCATED", 10*time.Minute, false)
	fake := failovertest.New(t)
	called := make(chan struct{}, 1)
	release := make(chan struct{})
	defer close(release) // before the fake server closes
	fake.Respond(func(string, int) int {
		called <- struct{}{}
		<-release
		return http.StatusAccepted
	})
	reg := prometheus.NewRegistry()
	metrics := healthdb.NewWatcherMetrics(reg)
	w := memWatcher(t, f, octaviaAPI(t, fake), nil, func(c *healthdb.WatcherConfig) {
		c.HeartbeatTimeout, c.HealthCheckInterval, c.Metrics = 20*time.Millisecond, 10*time.Millisecond, metrics
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	<-called
	if !f.busy(t, "amp-1") {
		t.Fatal("amp-1 not claimed while its request is under way")
	}
	cancel()
	<-done
	if f.busy(t, "amp-1") {
		t.Error("amp-1 still claimed after shutdown cancelled its request")
	}
	if v := counter(t, reg, "octavia_hm_failovers_total", "result", healthdb.ResultCancelled); v != 1 {
		t.Errorf("cancelled failovers %v; want 1", v)
	}
}

// Amphorae coming back from a mass silence send their next heartbeat at
// their own point of the period, so when the stale count drops under
// failover_threshold some are still a moment from their heartbeat.
// Octavia fails those over at once (the fault suite saw 5 and 10 of 40);
// claims wait heartbeat_timeout after the breaker lets go, and only the
// amphorae still silent then are failed over.
func TestWatcherHoldsFailoversAsTheBreakerLetsGo(t *testing.T) {
	clk := newClock()
	f := newMemFleet(clk.Now)
	ids := []string{"amp-1", "amp-2", "amp-3", "amp-4"}
	for _, id := range ids {
		f.amphora(id, "lb-1", "ALLOCATED", 10*time.Minute, false)
	}
	fake := failovertest.New(t)
	w := memWatcher(t, f, octaviaAPI(t, fake), clk, func(c *healthdb.WatcherConfig) {
		c.FailoverThreshold, c.FailoverThresholdSet = 3, true
	})

	if res := cycle(t, w); !res.Claim.BreakerOpen || res.Dispatched != 0 {
		t.Fatalf("four stale, threshold 3: %+v; want the breaker open and nothing dispatched", res)
	}
	// Three come back; one is a moment late, one is dead.
	f.heartbeat(t, "amp-1", "amp-2")
	steps := []struct {
		name      string
		advance   time.Duration
		back      []string
		suppress  string
		dispatch  int
		allocated int
	}{
		{"the breaker lets go", time.Second, nil, healthdb.SuppressBreakerRecovering, 0, 2},
		{"the late one is back", time.Second, []string{"amp-3"}, healthdb.SuppressBreakerRecovering, 0, 3},
		{"just under heartbeat_timeout", 58 * time.Second, []string{"amp-1", "amp-2", "amp-3"}, healthdb.SuppressBreakerRecovering, 0, 3},
		{"heartbeat_timeout after it let go", time.Second, []string{"amp-1", "amp-2", "amp-3"}, "", 1, 3},
	}
	for _, s := range steps {
		clk.Advance(s.advance)
		if s.back != nil {
			f.heartbeat(t, s.back...)
		}
		res := cycle(t, w)
		if res.Suppressed != s.suppress || res.Dispatched != s.dispatch {
			t.Errorf("%s: suppressed %q, dispatched %d; want %q, %d", s.name, res.Suppressed, res.Dispatched, s.suppress, s.dispatch)
		}
		if n := f.countStatus("ALLOCATED", ids...); n != s.allocated {
			t.Errorf("%s: %d ALLOCATED; want %d", s.name, n, s.allocated)
		}
	}
	if got := fake.Failovers(); len(got) != 1 || got["amp-4"] != 1 {
		t.Errorf("failover calls %v; want only the dead amp-4, once", got)
	}
}

// With failover_breaker_hold = false the watcher releases claims as
// Octavia does: the first check under the threshold fails over every
// amphora still stale, the late one included.
func TestWatcherOctaviaBreakerRelease(t *testing.T) {
	clk := newClock()
	f := newMemFleet(clk.Now)
	for _, id := range []string{"amp-1", "amp-2", "amp-3", "amp-4"} {
		f.amphora(id, "lb-1", "ALLOCATED", 10*time.Minute, false)
	}
	fake := failovertest.New(t)
	w := memWatcher(t, f, octaviaAPI(t, fake), clk, func(c *healthdb.WatcherConfig) {
		c.FailoverThreshold, c.FailoverThresholdSet = 3, true
		c.OctaviaBreakerRelease = true
	})
	if res := cycle(t, w); !res.Claim.BreakerOpen || res.Dispatched != 0 {
		t.Fatalf("four stale, threshold 3: %+v; want the breaker open and nothing dispatched", res)
	}
	f.heartbeat(t, "amp-1", "amp-2")
	clk.Advance(time.Second)
	res := cycle(t, w)
	if res.Claim.BreakerOpen || res.Suppressed != "" || res.Dispatched != 2 {
		t.Errorf("first check under the threshold: %+v; want 2 dispatched, nothing suppressed", res)
	}
	if got := fake.Failovers(); len(got) != 2 || got["amp-3"] != 1 || got["amp-4"] != 1 {
		t.Errorf("failover calls %v; want amp-3 and amp-4 once each", got)
	}
}

// Each self-health rule: while it holds no failover is dispatched (and
// nothing is claimed); once it ends the stale amphora is failed over.
func TestWatcherSelfHealthRules(t *testing.T) {
	tests := []struct {
		name   string
		reason string
		// make puts the observer into the unhealthy state; the observer
		// started 30 s before the clock's time.
		make func(o *healthdb.Observer, clk *clock)
		// heal advances the clock and feeds the observer until it is
		// healthy, checking it stays suppressed until then.
		heal func(t *testing.T, w *healthdb.Watcher, o *healthdb.Observer, clk *clock, reason string)
	}{
		{"database came back", healthdb.SuppressDatabaseRecovering,
			func(o *healthdb.Observer, clk *clock) {
				o.HeartbeatReceived(clk.Now())
				o.DatabaseResult(&net.OpError{Op: "dial", Err: errors.New("refused")}, clk.Now())
			},
			keepHearing(time.Minute)},
		{"no heartbeat received", healthdb.SuppressNoHeartbeats,
			func(o *healthdb.Observer, clk *clock) { clk.Advance(30 * time.Second) }, // none since start, 60 s ago
			// Heartbeats come back: still suppressed for heartbeat_timeout.
			keepHearing(time.Minute)},
		{"health queue dropped work", healthdb.SuppressQueueDropping,
			func(o *healthdb.Observer, clk *clock) { o.HeartbeatReceived(clk.Now()); o.WorkDropped(clk.Now()) },
			keepHearing(time.Minute)},
		{"health batch failed", healthdb.SuppressWritesFailing,
			func(o *healthdb.Observer, clk *clock) {
				o.HeartbeatReceived(clk.Now())
				o.HealthBatchResult(&pgconn.PgError{Code: "53100"}, clk.Now())
			},
			func(t *testing.T, w *healthdb.Watcher, o *healthdb.Observer, clk *clock, _ string) {
				o.HealthBatchResult(nil, clk.Now())
				keepHearing(time.Minute)(t, w, o, clk, healthdb.SuppressWritesRecovering)
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			f := newMemFleet(clk.Now)
			f.amphora("amp-1", "lb-1", "ALLOCATED", 10*time.Minute, false)
			fake := failovertest.New(t)
			obs := healthdb.NewObserver(clk.Now().Add(-30*time.Second), time.Minute)
			w := memWatcher(t, f, octaviaAPI(t, fake), clk, func(c *healthdb.WatcherConfig) { c.Observer = obs })
			tt.make(obs, clk)
			for i := 0; i < 3; i++ {
				res := cycle(t, w)
				if res.Suppressed != tt.reason || res.Dispatched != 0 {
					t.Fatalf("cycle %d: suppressed %q, dispatched %d; want %q and nothing", i, res.Suppressed, res.Dispatched, tt.reason)
				}
				clk.Advance(time.Second)
			}
			if f.busy(t, "amp-1") {
				t.Error("claimed while suppressed")
			}
			if n := len(fake.Failovers()); n != 0 {
				t.Errorf("%d failover calls while suppressed", n)
			}
			tt.heal(t, w, obs, clk, tt.reason)
			if res := cycle(t, w); res.Suppressed != "" || res.Dispatched != 1 {
				t.Errorf("after healing: suppressed %q, dispatched %d; want the failover", res.Suppressed, res.Dispatched)
			}
		})
	}
}

// keepHearing returns a heal step: heartbeats every 5 s for d; each cycle
// before the end must still be suppressed for reason.
func keepHearing(d time.Duration) func(*testing.T, *healthdb.Watcher, *healthdb.Observer, *clock, string) {
	return func(t *testing.T, w *healthdb.Watcher, o *healthdb.Observer, clk *clock, reason string) {
		t.Helper()
		start := clk.Now()
		for {
			o.HeartbeatReceived(clk.Now())
			if clk.Now().Sub(start) >= d {
				return
			}
			if res := cycle(t, w); res.Suppressed != reason {
				t.Fatalf("%v into healing: suppressed %q; want %q", clk.Now().Sub(start), res.Suppressed, reason)
			}
			clk.Advance(5 * time.Second)
		}
	}
}

// A store that fails: the cycle reports it as a database outage, and no
// failover is dispatched until it answers again.
func TestWatcherStoreFailure(t *testing.T) {
	f := newMemFleet(nil)
	f.amphora("amp-1", "lb-1", "ALLOCATED", 10*time.Minute, false)
	down := errors.New("store down")
	f.SetFault(func(op string) error {
		if op == memstore.OpCandidatesExist {
			return down
		}
		return nil
	})
	fake := failovertest.New(t)
	w := memWatcher(t, f, octaviaAPI(t, fake), nil, nil)
	if _, err := w.Cycle(context.Background()); !errors.Is(err, down) {
		t.Fatalf("cycle: %v; want the store's error", err)
	}
	w.Wait()
	if n := len(fake.Failovers()); n != 0 || f.busy(t, "amp-1") {
		t.Fatalf("%d failovers, busy %v while the store was down", n, f.busy(t, "amp-1"))
	}
	f.SetFault(nil)
	if res := cycle(t, w); res.Dispatched != 1 {
		t.Errorf("store back: dispatched %d; want 1", res.Dispatched)
	}
}
