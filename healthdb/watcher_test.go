package healthdb

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/octavia-vpp/health/healthdb/failover"
	"github.com/octavia-vpp/health/healthdb/failover/failovertest"
	"github.com/octavia-vpp/health/internal/pgtest"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// healthRow inserts an amphora_health row last updated age ago, by the
// database's clock, which staleness is judged on.
func (f *fixture) healthRow(id string, age time.Duration, busy bool) {
	f.exec(`INSERT INTO amphora_health (amphora_id, last_update, busy) VALUES ($1, `+dbNow+` - $2::interval, $3)`,
		id, age, busy)
}

func (f *fixture) refresh(ids ...string) {
	f.exec(`UPDATE amphora_health SET last_update = `+dbNow+` WHERE amphora_id = ANY($1)`, ids)
}

func (f *fixture) amphoraState(id string) (status string, busy *bool) {
	f.t.Helper()
	err := f.db.QueryRow(context.Background(), `SELECT a.status, h.busy FROM amphora a
		LEFT JOIN amphora_health h ON h.amphora_id = a.id WHERE a.id = $1`, id).Scan(&status, &busy)
	if err != nil {
		f.t.Fatalf("read amphora %s: %v", id, err)
	}
	return status, busy
}

func (f *fixture) countStatus(status string) int {
	f.t.Helper()
	var n int
	if err := f.db.QueryRow(context.Background(), `SELECT count(*) FROM amphora WHERE status = $1`, status).Scan(&n); err != nil {
		f.t.Fatal(err)
	}
	return n
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func octaviaAPI(t *testing.T, fake *failovertest.Fake) failover.Driver {
	t.Helper()
	s, err := failover.NewSession(failover.AuthConfig{
		AuthURL: fake.AuthURL(), Username: failovertest.Username, Password: failovertest.Password,
		ProjectName: failovertest.Project, UserDomainName: failovertest.Domain, ProjectDomainName: failovertest.Domain,
		RequestTimeout: 10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &failover.OctaviaAPI{Session: s, Region: failovertest.Region, Interface: "public"}
}

// watcherFor builds a watcher with a one-minute heartbeat_timeout, driven
// by calling Cycle (no start-up grace) on the given clock.
func watcherFor(t *testing.T, db *pgxpool.Pool, driver failover.Driver, clk *clock, change func(*WatcherConfig)) *Watcher {
	t.Helper()
	cfg := WatcherConfig{
		Store: NewStore(db), Driver: driver,
		HeartbeatTimeout: time.Minute, HealthCheckInterval: 50 * time.Millisecond,
		FailoverThreads: 10, Logger: quietLog(),
	}
	if clk != nil {
		cfg.Now = clk.Now
	}
	if change != nil {
		change(&cfg)
	}
	w, err := NewWatcher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func cycle(t *testing.T, w *Watcher) CycleResult {
	t.Helper()
	res, err := w.Cycle(context.Background())
	if err != nil {
		t.Fatalf("cycle: %v", err)
	}
	w.Wait()
	return res
}

func TestWatcherFailsOverEachStaleAmphoraOnce(t *testing.T) {
	db := openDB(t)
	f := &fixture{t: t, db: db}
	f.lb("lb-1", "ACTIVE", "ONLINE", true)
	f.lb("lb-2", "PENDING_UPDATE", "ONLINE", true)
	stale := []string{"stale-1", "stale-2", "stale-3", "stale-4", "stale-5", "stale-6", "stale-7", "stale-8", "stale-9", "stale-10", "stale-11", "stale-12"}
	for _, id := range stale {
		f.amphora(id, "lb-1", "ALLOCATED", "vm-"+id)
		f.healthRow(id, 10*time.Minute, false)
	}
	f.amphora("stopped", "", "FAILOVER_STOPPED", "")
	f.healthRow("stopped", 10*time.Minute, false)
	untouched := map[string]struct {
		status string
		age    time.Duration
		busy   bool
	}{
		"fresh":         {"ALLOCATED", 0, false},
		"almost-stale":  {"ALLOCATED", 50 * time.Second, false},
		"error":         {"ERROR", 10 * time.Minute, false},
		"deleted":       {"DELETED", 10 * time.Minute, false},
		"pending":       {"PENDING_DELETE", 10 * time.Minute, false},
		"booting":       {"BOOTING", 10 * time.Minute, false},
		"being-handled": {"ALLOCATED", 10 * time.Minute, true},
	}
	for id, u := range untouched {
		f.amphora(id, "lb-1", u.status, "")
		f.healthRow(id, u.age, u.busy)
	}
	fake := failovertest.New(t)
	w := watcherFor(t, db, octaviaAPI(t, fake), nil, func(c *WatcherConfig) { c.FailoverThreads = 5 })

	// failover_threads bounds each cycle: 13 candidates take three cycles.
	var dispatched []int
	for i := 0; i < 5; i++ {
		dispatched = append(dispatched, cycle(t, w).Dispatched)
	}
	if want := []int{5, 5, 3, 0, 0}; !equalInts(dispatched, want) {
		t.Errorf("dispatched per cycle %v; want %v", dispatched, want)
	}
	calls := fake.Failovers()
	for _, id := range append(stale, "stopped") {
		if calls[id] != 1 {
			t.Errorf("%s: %d failover calls; want exactly 1", id, calls[id])
		}
		if _, busy := f.amphoraState(id); busy == nil || !*busy {
			t.Errorf("%s: not left busy after an accepted failover", id)
		}
	}
	for id, u := range untouched {
		if calls[id] != 0 {
			t.Errorf("%s (%s): %d failover calls; want none", id, u.status, calls[id])
		}
		status, busy := f.amphoraState(id)
		if status != u.status || busy == nil || *busy != u.busy {
			t.Errorf("%s: now %s busy %v; want it untouched (%s busy %v)", id, status, *busy, u.status, u.busy)
		}
	}
	// The watcher never moves a load balancer itself: the API does.
	if s, _ := f.statusOfLB("lb-1"); s != "ACTIVE" {
		t.Errorf("lb-1 provisioning_status %s; the watcher must not set PENDING_UPDATE itself", s)
	}
}

func (f *fixture) statusOfLB(id string) (string, error) {
	var s string
	err := f.db.QueryRow(context.Background(), `SELECT provisioning_status FROM load_balancer WHERE id = $1`, id).Scan(&s)
	return s, err
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// A 409 (immutable load balancer) releases the claim without ending the
// cycle; a later cycle retries. Other amphorae of the cycle go on.
func TestWatcherConflictReleasesAndRetries(t *testing.T) {
	db := openDB(t)
	f := &fixture{t: t, db: db}
	f.lb("lb-1", "ACTIVE", "ONLINE", true)
	for _, id := range []string{"amp-busy-lb", "amp-other"} {
		f.amphora(id, "lb-1", "ALLOCATED", "")
		f.healthRow(id, 10*time.Minute, false)
	}
	fake := failovertest.New(t)
	fake.Respond(func(id string, call int) int {
		if id == "amp-busy-lb" && call == 1 {
			return http.StatusConflict
		}
		return http.StatusAccepted
	})
	w := watcherFor(t, db, octaviaAPI(t, fake), nil, nil)
	if res := cycle(t, w); res.Dispatched != 2 {
		t.Fatalf("first cycle dispatched %d; want both amphorae", res.Dispatched)
	}
	if _, busy := f.amphoraState("amp-busy-lb"); *busy {
		t.Error("after a 409 the amphora is still claimed")
	}
	if _, busy := f.amphoraState("amp-other"); !*busy {
		t.Error("the other amphora's accepted failover lost its claim")
	}
	if res := cycle(t, w); res.Dispatched != 1 {
		t.Fatalf("second cycle dispatched %d; want the 409 one again", res.Dispatched)
	}
	if got := fake.Failovers(); got["amp-busy-lb"] != 2 || got["amp-other"] != 1 {
		t.Errorf("calls %v; want amp-busy-lb twice (409 then 202) and amp-other once", got)
	}
	if _, busy := f.amphoraState("amp-busy-lb"); !*busy {
		t.Error("the retried failover was accepted but the amphora is not claimed")
	}
}

// A 5xx, a network error or a 404 releases the claim and backs the
// amphora off exponentially, capped; the others are not held up.
func TestWatcherBacksOffTransientFailures(t *testing.T) {
	db := openDB(t)
	f := &fixture{t: t, db: db}
	f.lb("lb-1", "ACTIVE", "ONLINE", true)
	for _, id := range []string{"amp-5xx", "amp-404"} {
		f.amphora(id, "lb-1", "ALLOCATED", "")
		f.healthRow(id, 10*time.Minute, false)
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
	clk := newClock()
	w := watcherFor(t, db, octaviaAPI(t, fake), clk, func(c *WatcherConfig) {
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
		_, busy := f.amphoraState("amp-5xx")
		if wantBusy := s.want5xx == 4; *busy != wantBusy {
			t.Fatalf("step %d: busy %v; want %v (released after each failure, kept once accepted)", i, *busy, wantBusy)
		}
	}
	if _, busy := f.amphoraState("amp-404"); *busy {
		t.Error("an amphora the API does not know stays claimed")
	}
	// The same schedule: 0 s, 11 s, 32 s, 58 s, 118 s.
	if n := fake.Failovers()["amp-404"]; n != 5 {
		t.Errorf("amp-404 called %d times over 2 minutes; want 5, backed off", n)
	}
	f.exec(`UPDATE amphora SET status = 'DELETED' WHERE id = 'amp-404'`)

	// A network error is transient too.
	f.amphora("amp-net", "lb-1", "ALLOCATED", "")
	f.healthRow("amp-net", 10*time.Minute, false)
	down := failovertest.New(t)
	driver := octaviaAPI(t, down)
	down.Server.Close()
	w2 := watcherFor(t, db, driver, clk, func(c *WatcherConfig) { c.BackoffBase = time.Hour })
	if res := cycle(t, w2); res.Dispatched != 1 {
		t.Fatalf("dispatched %d; want amp-net", res.Dispatched)
	}
	if _, busy := f.amphoraState("amp-net"); *busy {
		t.Error("after a network error the amphora is still claimed")
	}
	if res := cycle(t, w2); res.Dispatched != 0 {
		t.Errorf("dispatched %d right after a network error; want it backed off", res.Dispatched)
	}
}

func TestBackoffDelay(t *testing.T) {
	tests := []struct {
		failures int
		want     time.Duration
	}{
		{0, 0}, {1, 3 * time.Second}, {2, 6 * time.Second}, {3, 12 * time.Second}, {7, 192 * time.Second},
		{8, 5 * time.Minute}, {60, 5 * time.Minute}, {1 << 20, 5 * time.Minute},
	}
	for _, tt := range tests {
		if got := backoffDelay(tt.failures, 3*time.Second, 5*time.Minute); got != tt.want {
			t.Errorf("backoffDelay(%d) = %v; want %v", tt.failures, got, tt.want)
		}
	}
}

// Nothing is claimed, marked or called during the start-up grace of
// heartbeat_timeout; the first failover comes after it.
func TestWatcherStartupGrace(t *testing.T) {
	db := openDB(t)
	f := &fixture{t: t, db: db}
	f.lb("lb-1", "ACTIVE", "ONLINE", true)
	for _, id := range []string{"amp-1", "amp-2", "amp-3"} {
		f.amphora(id, "lb-1", "ALLOCATED", "")
		f.healthRow(id, 3*time.Hour, false)
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
	long := watcherFor(t, db, octaviaAPI(t, fake), nil, func(c *WatcherConfig) {
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
	for _, id := range []string{"amp-1", "amp-2", "amp-3"} {
		if status, busy := f.amphoraState(id); status != "ALLOCATED" || *busy {
			t.Errorf("%s changed during the grace: %s busy %v", id, status, *busy)
		}
	}

	// With a short grace the failovers come, and not before it ends.
	const grace = 300 * time.Millisecond
	short := watcherFor(t, db, octaviaAPI(t, fake), nil, func(c *WatcherConfig) {
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

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestGetStaleAmphoraPastThreshold reproduces Octavia's functional test
// test_get_stale_amphora_past_threshold (spec §8.8) on PostgreSQL, one
// get_stale_amphora call being a ClaimStale of at most one amphora.
func TestGetStaleAmphoraPastThreshold(t *testing.T) {
	db := openDB(t)
	f := &fixture{t: t, db: db}
	store := NewStore(db)
	ctx := context.Background()
	getStale := func() (string, ClaimResult) {
		t.Helper()
		res, err := store.ClaimStale(ctx, ClaimRequest{HeartbeatTimeout: time.Minute,
			Threshold: 3, ThresholdSet: true, Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Claimed) == 1 {
			return res.Claimed[0].AmphoraID, res
		}
		return "", res
	}
	check := func(step string, gotID string, wantFound bool, stopped, allocated int) {
		t.Helper()
		if (gotID != "") != wantFound {
			t.Errorf("%s: get_stale_amphora returned %q; want found=%v", step, gotID, wantFound)
		}
		if n := f.countStatus("FAILOVER_STOPPED"); n != stopped {
			t.Errorf("%s: %d FAILOVER_STOPPED; want %d", step, n, stopped)
		}
		if allocated >= 0 {
			if n := f.countStatus("ALLOCATED"); n != allocated {
				t.Errorf("%s: %d ALLOCATED; want %d", step, n, allocated)
			}
		}
	}

	// Two stale amphorae: each is returned in turn, and becomes busy.
	for _, id := range []string{"amp-1", "amp-2"} {
		f.amphora(id, "", "ALLOCATED", "")
		f.healthRow(id, 10*time.Minute, false)
	}
	first, _ := getStale()
	second, _ := getStale()
	got := []string{first, second}
	sort.Strings(got)
	if got[0] != "amp-1" || got[1] != "amp-2" {
		t.Fatalf("returned %q then %q; want amp-1 and amp-2 in some order", first, second)
	}
	check("two stale", first, true, 0, 2)

	// Four more: 4 stale and not busy reach the threshold of 3.
	more := []string{"amp-3", "amp-4", "amp-5", "amp-6"}
	for _, id := range more {
		f.amphora(id, "", "ALLOCATED", "")
		f.healthRow(id, 10*time.Minute, false)
	}
	id, res := getStale()
	check("four more stale", id, false, 4, 2)
	if !res.BreakerOpen || res.Stale != 4 || res.Stopped != 4 {
		t.Errorf("four more stale: %+v; want the breaker open on 4 stale, 4 stopped", res)
	}
	for _, busy := range []string{"amp-1", "amp-2"} {
		if status, _ := f.amphoraState(busy); status != "ALLOCATED" {
			t.Errorf("busy %s became %s; busy amphorae are not touched", busy, status)
		}
	}

	// One recovers: 3 stale still trip the breaker; it is ALLOCATED again.
	f.refresh("amp-3")
	id, res = getStale()
	check("one recovered", id, false, 3, 3)
	if res.Stopped != 0 {
		t.Errorf("one recovered: %d newly stopped; the other three were FAILOVER_STOPPED already", res.Stopped)
	}

	// Another recovers: 2 stale are under the threshold; one of the
	// FAILOVER_STOPPED ones is returned.
	f.refresh("amp-4")
	id, _ = getStale()
	check("two recovered", id, true, 2, 4)
	if id != "amp-5" && id != "amp-6" {
		t.Errorf("two recovered: returned %q; want amp-5 or amp-6", id)
	}

	// Every row refreshed: nothing is stale; every idle FAILOVER_STOPPED
	// amphora is ALLOCATED again (the busy one keeps its status).
	f.exec(`UPDATE amphora_health SET last_update = ` + dbNow)
	id, _ = getStale()
	check("all refreshed", id, false, 1, 5)
}

// Three watchers on one database, 200 stale amphorae: each amphora gets
// exactly one failover call, and heartbeat writes for the live amphorae
// never wait for a lock while the watchers run.
func TestThreeWatchersShareOneDatabase(t *testing.T) {
	url := pgtest.NewDB(t)
	setup, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer setup.Close()
	f := &fixture{t: t, db: setup}
	f.lb("lb-1", "ACTIVE", "ONLINE", true)
	f.exec(`INSERT INTO amphora (id, load_balancer_id, status, cert_busy)
		SELECT 'stale-' || n, 'lb-1', 'ALLOCATED', false FROM generate_series(1, 200) n`)
	f.exec(`INSERT INTO amphora_health (amphora_id, last_update, busy)
		SELECT 'stale-' || n, $1::timestamp, false FROM generate_series(1, 200) n`, time.Now().UTC().Add(-time.Hour))
	var live []string
	for i := 1; i <= 50; i++ {
		id := "live-" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		live = append(live, id)
		f.amphora(id, "lb-1", "ALLOCATED", "")
		f.healthRow(id, 0, false)
	}

	fake := failovertest.New(t)
	fake.Respond(func(string, int) int {
		time.Sleep(2 * time.Millisecond) // let the watchers interleave
		return http.StatusAccepted
	})
	var watchers []*Watcher
	for i := 0; i < 3; i++ {
		pool, err := pgxpool.New(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		defer pool.Close()
		watchers = append(watchers, watcherFor(t, pool, octaviaAPI(t, fake), nil, func(c *WatcherConfig) { c.FailoverThreads = 16 }))
	}

	// The heartbeat writer's connections give up on any lock wait.
	wcfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	wcfg.ConnConfig.RuntimeParams["lock_timeout"] = "1ms"
	writerPool, err := pgxpool.NewWithConfig(context.Background(), wcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer writerPool.Close()
	writer := NewStore(writerPool)

	total := func() int {
		n := 0
		for _, c := range fake.Failovers() {
			n += c
		}
		return n
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, w := range watchers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && total() < 200 {
				if _, err := w.Cycle(ctx); err != nil {
					t.Errorf("cycle: %v", err)
					return
				}
			}
			w.Wait()
		}()
	}
	var writes, writeErrs int
	var firstWriteErr error
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		for ctx.Err() == nil && total() < 200 {
			err := writer.Apply(ctx, &Writes{Health: live})
			writes++
			if err != nil {
				writeErrs++
				if firstWriteErr == nil {
					firstWriteErr = err
				}
			}
		}
	}()
	wg.Wait()
	<-writerDone
	// A few more cycles after the last call find nothing left.
	for _, w := range watchers {
		if res := cycle(t, w); res.Dispatched != 0 {
			t.Errorf("a cycle after all failovers dispatched %d", res.Dispatched)
		}
	}
	calls := fake.Failovers()
	for i := 1; i <= 200; i++ {
		id := "stale-" + itoa(i)
		if calls[id] != 1 {
			t.Errorf("%s: %d failover calls; want exactly 1", id, calls[id])
		}
	}
	if len(calls) != 200 {
		t.Errorf("%d amphorae called; want 200 (live ones never)", len(calls))
	}
	if writeErrs > 0 {
		t.Errorf("%d of %d heartbeat writes waited for a lock: %v", writeErrs, writes, firstWriteErr)
	}
	if writes == 0 {
		t.Error("no heartbeat write ran while the watchers did")
	}
	t.Logf("200 failovers by 3 watchers; %d heartbeat batches written meanwhile without a lock wait", writes)
}

func itoa(i int) string {
	const digits = "0123456789"
	if i < 10 {
		return digits[i : i+1]
	}
	return itoa(i/10) + digits[i%10:i%10+1]
}

// Stopping cancels the requests under way and releases their claims.
func TestWatcherShutdownReleasesClaims(t *testing.T) {
	db := openDB(t)
	f := &fixture{t: t, db: db}
	f.lb("lb-1", "ACTIVE", "ONLINE", true)
	f.amphora("amp-1", "lb-1", "ALLOCATED", "")
	f.healthRow("amp-1", 10*time.Minute, false)
	fake := failovertest.New(t)
	called := make(chan struct{}, 1)
	release := make(chan struct{})
	defer close(release) // before the fake server closes
	fake.Respond(func(string, int) int {
		called <- struct{}{}
		<-release
		return http.StatusAccepted
	})
	metrics := NewWatcherMetrics(prometheus.NewRegistry())
	w := watcherFor(t, db, octaviaAPI(t, fake), nil, func(c *WatcherConfig) {
		c.HeartbeatTimeout, c.HealthCheckInterval, c.Metrics = 20*time.Millisecond, 10*time.Millisecond, metrics
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	<-called
	if _, busy := f.amphoraState("amp-1"); !*busy {
		t.Fatal("amp-1 not claimed while its request is under way")
	}
	cancel()
	<-done
	if _, busy := f.amphoraState("amp-1"); *busy {
		t.Error("amp-1 still claimed after shutdown cancelled its request")
	}
	if v := testutil.ToFloat64(metrics.failovers.WithLabelValues(ResultCancelled)); v != 1 {
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
	db := openDB(t)
	f := &fixture{t: t, db: db}
	f.lb("lb-1", "ACTIVE", "ONLINE", true)
	ids := []string{"amp-1", "amp-2", "amp-3", "amp-4"}
	for _, id := range ids {
		f.amphora(id, "lb-1", "ALLOCATED", "")
		f.healthRow(id, 10*time.Minute, false)
	}
	fake := failovertest.New(t)
	clk := newClock()
	w := watcherFor(t, db, octaviaAPI(t, fake), clk, func(c *WatcherConfig) {
		c.FailoverThreshold, c.FailoverThresholdSet = 3, true
	})
	heartbeat := func(ids ...string) {
		f.exec(`UPDATE amphora_health SET last_update = $2::timestamp WHERE amphora_id = ANY($1)`, ids, clk.Now().UTC())
	}

	if res := cycle(t, w); !res.Claim.BreakerOpen || res.Dispatched != 0 {
		t.Fatalf("four stale, threshold 3: %+v; want the breaker open and nothing dispatched", res)
	}
	// Three come back; one is a moment late, one is dead.
	heartbeat("amp-1", "amp-2")
	steps := []struct {
		name      string
		advance   time.Duration
		back      []string
		suppress  string
		dispatch  int
		allocated int
	}{
		{"the breaker lets go", time.Second, nil, SuppressBreakerRecovering, 0, 2},
		{"the late one is back", time.Second, []string{"amp-3"}, SuppressBreakerRecovering, 0, 3},
		{"just under heartbeat_timeout", 58 * time.Second, []string{"amp-1", "amp-2", "amp-3"}, SuppressBreakerRecovering, 0, 3},
		{"heartbeat_timeout after it let go", time.Second, []string{"amp-1", "amp-2", "amp-3"}, "", 1, 3},
	}
	for _, s := range steps {
		clk.Advance(s.advance)
		if s.back != nil {
			heartbeat(s.back...)
		}
		res := cycle(t, w)
		if res.Suppressed != s.suppress || res.Dispatched != s.dispatch {
			t.Errorf("%s: suppressed %q, dispatched %d; want %q, %d", s.name, res.Suppressed, res.Dispatched, s.suppress, s.dispatch)
		}
		if n := f.countStatus("ALLOCATED"); n != s.allocated {
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
	db := openDB(t)
	f := &fixture{t: t, db: db}
	f.lb("lb-1", "ACTIVE", "ONLINE", true)
	for _, id := range []string{"amp-1", "amp-2", "amp-3", "amp-4"} {
		f.amphora(id, "lb-1", "ALLOCATED", "")
		f.healthRow(id, 10*time.Minute, false)
	}
	fake := failovertest.New(t)
	clk := newClock()
	w := watcherFor(t, db, octaviaAPI(t, fake), clk, func(c *WatcherConfig) {
		c.FailoverThreshold, c.FailoverThresholdSet = 3, true
		c.OctaviaBreakerRelease = true
	})
	if res := cycle(t, w); !res.Claim.BreakerOpen || res.Dispatched != 0 {
		t.Fatalf("four stale, threshold 3: %+v; want the breaker open and nothing dispatched", res)
	}
	f.exec(`UPDATE amphora_health SET last_update = $2::timestamp WHERE amphora_id = ANY($1)`,
		[]string{"amp-1", "amp-2"}, clk.Now().UTC())
	clk.Advance(time.Second)
	res := cycle(t, w)
	if res.Claim.BreakerOpen || res.Suppressed != "" || res.Dispatched != 2 {
		t.Errorf("first check under the threshold: %+v; want 2 dispatched, nothing suppressed", res)
	}
	if got := fake.Failovers(); len(got) != 2 || got["amp-3"] != 1 || got["amp-4"] != 1 {
		t.Errorf("failover calls %v; want amp-3 and amp-4 once each", got)
	}
}
