package statuspage

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/octavia-vpp/health/healthdb"
	"github.com/octavia-vpp/health/healthdb/failover"
	"github.com/octavia-vpp/health/test/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// t0 is the test's "now"; heartbeat_timeout is 60 s.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type seed struct {
	t    *testing.T
	db   *pgxpool.Pool
	port int
}

func (s *seed) exec(sql string, args ...any) {
	s.t.Helper()
	if _, err := s.db.Exec(context.Background(), sql, args...); err != nil {
		s.t.Fatalf("%s: %v", sql, err)
	}
}

func (s *seed) lb(id, name, operating string) {
	s.exec(`INSERT INTO load_balancer (id, name, provisioning_status, operating_status, enabled) VALUES ($1, $2, 'ACTIVE', $3, true)`,
		id, name, operating)
}

// amphora with a health row heard age ago (age < 0: no health row).
func (s *seed) amphora(id, lbID string, age time.Duration, busy bool) {
	s.exec(`INSERT INTO amphora (id, load_balancer_id, status, role, cert_busy) VALUES ($1, $2, 'ALLOCATED', 'STANDALONE', false)`, id, lbID)
	if age >= 0 {
		// Ages are on the database's clock, which the page reads.
		s.exec(`INSERT INTO amphora_health (amphora_id, last_update, busy) VALUES ($1, (now() AT TIME ZONE 'UTC') - $2::interval, $3)`, id, age, busy)
	}
}

func (s *seed) listener(id, lbID, name, operating string) {
	s.port++
	s.exec(`INSERT INTO listener (id, load_balancer_id, name, protocol, protocol_port, provisioning_status, operating_status, enabled)
		VALUES ($1, $2, $3, 'HTTP', $4, 'ACTIVE', $5, true)`, id, lbID, name, 8000+s.port, operating)
}

func (s *seed) pool(id, lbID, name, operating string) {
	s.exec(`INSERT INTO pool (id, load_balancer_id, name, protocol, lb_algorithm, operating_status, enabled, provisioning_status)
		VALUES ($1, $2, $3, 'HTTP', 'ROUND_ROBIN', $4, true, 'ACTIVE')`, id, lbID, name, operating)
}

func (s *seed) member(id, poolID, name, operating string) {
	s.port++
	s.exec(`INSERT INTO member (id, pool_id, name, ip_address, protocol_port, operating_status, enabled, provisioning_status, backup)
		VALUES ($1, $2, $3, '192.0.2.10', $4, $5, true, 'ACTIVE', false)`, id, poolID, name, 9000+s.port, operating)
}

// seeded is a small fleet: "web" is DEGRADED with one member in ERROR,
// "api" has a stale amphora, "batch" a claimed one.
func seeded(t *testing.T) *pgxpool.Pool {
	db := pgtest.NewPool(t)
	s := &seed{t: t, db: db}
	s.lb("lb-web", "web", "DEGRADED")
	s.amphora("amp-web", "lb-web", 3*time.Second, false)
	s.listener("l-web", "lb-web", "web-http", "ONLINE")
	s.pool("p-web", "lb-web", "web-pool", "DEGRADED")
	s.member("m-web-1", "p-web", "web-1", "ONLINE")
	s.member("m-web-2", "p-web", "web-2", "ERROR")
	s.lb("lb-api", "api", "ONLINE")
	s.amphora("amp-api", "lb-api", 5*time.Minute, false)
	s.lb("lb-batch", "batch", "ONLINE")
	s.amphora("amp-batch", "lb-batch", 2*time.Minute, true)
	s.amphora("amp-new", "lb-batch", -1, false)
	return db
}

// registry holds the daemon metrics the summary reads, with known values.
func registry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	accepted := prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricAccepted}, []string{"key"})
	rejected := prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricRejected}, []string{"reason"})
	failovers := prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricFailovers}, []string{"result"})
	breaker := prometheus.NewGauge(prometheus.GaugeOpts{Name: metricBreakerOpen})
	reg.MustRegister(accepted, rejected, failovers, breaker)
	accepted.WithLabelValues("primary").Add(1200)
	rejected.WithLabelValues("bad_hmac").Add(7)
	rejected.WithLabelValues("too_short").Add(0)
	failovers.WithLabelValues("dry_run").Add(1)
	return reg
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newPage(t *testing.T, db *pgxpool.Pool, clk *clock) *Page {
	return New(Config{Pool: db, Gatherer: registry(), HeartbeatTimeout: time.Minute, DryRun: true,
		FailoverThreshold: 5, Now: clk.Now, Logger: quiet})
}

func TestSnapshotOfSeededFleet(t *testing.T) {
	db := seeded(t)
	clk := &clock{t: t0}
	p := newPage(t, db, clk)
	p.RecordBatch(healthdb.BatchResult{Transitions: []healthdb.Transition{
		{Entity: "load_balancer", ID: "lb-web", From: "ONLINE", To: "DEGRADED"},
		{Entity: "member", ID: "m-web-2", From: "ONLINE", To: "ERROR"},
	}}, nil)
	p.RecordBatch(healthdb.BatchResult{Transitions: []healthdb.Transition{{Entity: "pool", ID: "gone", From: "A", To: "B"}}},
		context.DeadlineExceeded) // not committed: not recorded
	if err := p.WrapDriver(failover.Noop{Log: quiet}).Failover(context.Background(), "amp-api"); err == nil {
		t.Fatal("noop driver: want ErrDryRun passed through")
	}

	s := p.Snapshot(context.Background())
	if s.Error != "" {
		t.Fatal(s.Error)
	}
	f := s.Fleet
	if f.Amphorae != 3 || f.Fresh != 1 || f.Stale != 1 || f.Busy != 1 || f.LoadBalancers != 3 {
		t.Errorf("fleet %+v", f)
	}
	if f.Accepted != 1200 || f.Rejected != 7 || len(f.RejectedBy) != 1 || f.FailoverCount() != 1 || f.BreakerOpen || f.RatesKnown {
		t.Errorf("counters %+v", f.Counters)
	}
	var histTotal, staleBars int
	for _, b := range s.Histogram.Bars {
		histTotal += b.Count
		if b.Stale {
			staleBars += b.Count
		}
	}
	if len(s.Histogram.Bars) != plotBuckets+1 || histTotal != 3 || staleBars != 2 || s.Histogram.Bars[0].Count != 1 {
		t.Errorf("histogram %+v", s.Histogram.Bars)
	}
	if len(s.LBs) != 3 || s.LBs[0].Name != "web" || s.LBs[1].Name != "api" || s.LBs[2].Name != "batch" {
		t.Fatalf("load balancers %+v", s.LBs)
	}
	web := s.LBs[0]
	if len(web.Listeners) != 1 || web.Listeners[0].Name != "web-http" || len(web.Pools) != 1 || len(web.Pools[0].Members) != 2 ||
		web.Pools[0].Members[1].Operating != "ERROR" || len(web.Amphorae) != 1 || web.Amphorae[0].Stale {
		t.Errorf("web %+v", web)
	}
	if s.LBs[0].Silent != 0 || s.LBs[1].Silent != 1 || s.LBs[2].Silent != 1 {
		t.Errorf("silent amphorae per load balancer: %d %d %d", s.LBs[0].Silent, s.LBs[1].Silent, s.LBs[2].Silent)
	}
	if a := s.LBs[1].Amphorae; len(a) != 1 || !a[0].Stale || a[0].Age < 5*time.Minute || a[0].Age > 5*time.Minute+10*time.Second {
		t.Errorf("api amphorae %+v", a)
	}
	if len(s.Transitions) != 2 || s.Transitions[0].Name != "web" || s.Transitions[1].Name != "web-2" {
		t.Errorf("transitions %+v", s.Transitions)
	}
	if len(s.Failovers) != 1 || s.Failovers[0].Result != FailoverDryRun || s.Failovers[0].LoadBalancerName != "api" {
		t.Errorf("failovers %+v", s.Failovers)
	}
}

func TestHandlersRenderTheSnapshot(t *testing.T) {
	db := seeded(t)
	clk := &clock{t: t0}
	p := newPage(t, db, clk)
	_ = p.WrapDriver(failover.Noop{Log: quiet}).Failover(context.Background(), "amp-api")
	p.RecordBatch(healthdb.BatchResult{Transitions: []healthdb.Transition{{Entity: "member", ID: "m-web-2", From: "ONLINE", To: "ERROR"}}}, nil)
	mux := http.NewServeMux()
	p.Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	get := func(path string) (int, string, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
	}
	for _, c := range []struct {
		path, contentType string
		want, notWant     []string
	}{
		{"/", "text/html", []string{"<!DOCTYPE html>", "would fail over (dry run)", `data-search="lb-web web active degraded`,
			"web-http", "web-2", `class="badge s-error">ERROR`, `id="age-plot"`, "heartbeat_timeout 1m0s", `id="dry-run"`,
			"5m00s ago · stale", "claimed", "no heartbeat yet", `id="filter"`, "threshold 5"},
			[]string{"http://", "https://"}}, // nothing loaded from elsewhere
		{"/?fragment=1", "text/html", []string{`id="summary"`, `id="lbs"`, `id="side"`}, []string{"<!DOCTYPE html>", "<script>"}},
		{"/status.json", "application/json", []string{`"amphorae": 3`, `"result": "dry_run"`}, nil},
	} {
		code, ct, body := get(c.path)
		if code != http.StatusOK || !strings.HasPrefix(ct, c.contentType) {
			t.Errorf("%s: %d %s", c.path, code, ct)
		}
		for _, w := range c.want {
			if !strings.Contains(body, w) {
				t.Errorf("%s: missing %q", c.path, w)
			}
		}
		for _, w := range c.notWant {
			if strings.Contains(body, w) {
				t.Errorf("%s: has %q", c.path, w)
			}
		}
	}
	var s Snapshot
	_, _, body := get("/status.json")
	if err := json.Unmarshal([]byte(body), &s); err != nil || s.Fleet.Stale != 1 || len(s.LBs) != 3 {
		t.Errorf("status.json: %v %+v", err, s.Fleet)
	}
	if code, _, _ := get("/nothing-here"); code != http.StatusNotFound {
		t.Errorf("/nothing-here: %d, want 404", code)
	}
}

func TestSnapshotIsSharedAndCached(t *testing.T) {
	db := seeded(t)
	clk := &clock{t: t0}
	p := newPage(t, db, clk)
	var reads atomic.Int32
	entered, release := make(chan struct{}), make(chan struct{})
	real := p.fetch
	p.fetch = func(ctx context.Context, q query) (*dbView, error) {
		if reads.Add(1) == 1 {
			close(entered)
			<-release
		}
		return real(ctx, q)
	}

	// Requests arriving while the first read is under way wait for it.
	var wg sync.WaitGroup
	snaps := make([]*Snapshot, 8)
	wg.Add(1)
	go func() { defer wg.Done(); snaps[0] = p.Snapshot(context.Background()) }()
	<-entered
	for i := 1; i < len(snaps); i++ {
		wg.Add(1)
		go func() { defer wg.Done(); snaps[i] = p.Snapshot(context.Background()) }()
	}
	close(release)
	wg.Wait()
	for i, s := range snaps {
		if s != snaps[0] {
			t.Errorf("request %d got its own snapshot", i)
		}
	}
	for _, c := range []struct {
		advance   time.Duration
		wantReads int32
	}{
		{0, 1},
		{900 * time.Millisecond, 1},
		{200 * time.Millisecond, 2}, // 1.1 s after the first read
		{500 * time.Millisecond, 2},
		{600 * time.Millisecond, 3},
	} {
		clk.Advance(c.advance)
		p.Snapshot(context.Background())
		if got := reads.Load(); got != c.wantReads {
			t.Errorf("after +%v: %d reads, want %d", c.advance, got, c.wantReads)
		}
	}
}

func TestDatabaseErrorStillShowsTheProcessFigures(t *testing.T) {
	db := pgtest.NewPool(t)
	clk := &clock{t: t0}
	p := newPage(t, db, clk)
	db.Close()
	_ = p.WrapDriver(failover.Noop{Log: quiet}).Failover(context.Background(), "amp-x")
	s := p.Snapshot(context.Background())
	if s.Error == "" || s.Fleet.Accepted != 1200 || len(s.Failovers) != 1 {
		t.Errorf("snapshot %+v", s)
	}
	rec := httptest.NewRecorder()
	p.serveHTML(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `id="db-error"`) {
		t.Errorf("page with the database down: %d %s", rec.Code, rec.Body.String())
	}
}

func TestListIsCapped(t *testing.T) {
	db := seeded(t)
	p := New(Config{Pool: db, HeartbeatTimeout: time.Minute, MaxLoadBalancers: 2, MaxMembers: 1,
		Now: (&clock{t: t0}).Now, Logger: quiet})
	s := p.Snapshot(context.Background())
	if s.Error != "" || s.Fleet.LoadBalancers != 3 || s.LBsListed != 2 || s.LBs[0].Name != "web" || !s.MembersCapped {
		t.Fatalf("capped snapshot: %s, %d of %d listed, first %q, members capped %v",
			s.Error, s.LBsListed, s.Fleet.LoadBalancers, s.LBs[0].Name, s.MembersCapped)
	}
	if n := len(s.LBs[0].Pools[0].Members); n != 1 {
		t.Errorf("%d members listed, want 1", n)
	}
	rec := httptest.NewRecorder()
	p.serveHTML(rec, httptest.NewRequest("GET", "/", nil))
	if body := rec.Body.String(); !strings.Contains(body, "Showing 2 of 3 load balancers") || !strings.Contains(body, "Members are capped") {
		t.Errorf("no cap notes in the page")
	}
}

// The daemon registers the receiver's and the watcher's metrics through
// Watch; the page reads only those.
func TestWatchedMetrics(t *testing.T) {
	main := prometheus.NewRegistry()
	p := New(Config{HeartbeatTimeout: time.Minute, Now: (&clock{t: t0}).Now, Logger: quiet})
	accepted := prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricAccepted}, []string{"key"})
	breaker := prometheus.NewGauge(prometheus.GaugeOpts{Name: metricBreakerOpen})
	p.Watch(main).MustRegister(accepted, breaker)
	main.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "octavia_hm_per_listener_total"}))
	accepted.WithLabelValues("primary").Add(3)
	breaker.Set(1)

	s := p.Snapshot(context.Background())
	if s.Fleet.Accepted != 3 || !s.Fleet.BreakerOpen {
		t.Errorf("counters %+v", s.Fleet.Counters)
	}
	if s.Error == "" {
		t.Error("no database: want an error in the snapshot")
	}
	families, err := p.watched.Gather()
	if err != nil || len(families) != 2 {
		t.Errorf("the page gathers %d families (%v), want 2", len(families), err)
	}
	if families, _ := main.Gather(); len(families) != 3 {
		t.Errorf("the daemon's registry has %d families, want 3", len(families))
	}
	if err := p.Watch(main).Register(breaker); err == nil {
		t.Error("registering twice: want an error")
	}
}
