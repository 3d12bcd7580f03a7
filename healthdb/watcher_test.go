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

	"github.com/octavia-vpp/health/healthdb/failover"
	"github.com/octavia-vpp/health/healthdb/failover/failovertest"
	"github.com/octavia-vpp/health/test/pgtest"
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
// test_get_stale_amphora_past_threshold (octavia/tests/functional/db/
// test_repositories.py) on PostgreSQL, one
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
