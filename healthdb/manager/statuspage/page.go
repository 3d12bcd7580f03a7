package statuspage

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// Defaults of Config's bounds.
const (
	DefaultCacheFor         = time.Second
	DefaultMaxLoadBalancers = 100
	DefaultMaxMembers       = 2000
	// queryShare is the most of the database's time the page may take:
	// a snapshot is kept at least 1/queryShare times as long as it took.
	queryShare    = 0.02
	snapshotLimit = 10 * time.Second
	// Only the newest events are shown; /status.json has the whole rings.
	shownTransitions = 40
	shownFailovers   = 25
)

// Config configures a Page.
type Config struct {
	Pool *pgxpool.Pool
	// Gatherer holds the daemon's metrics (heartbeats, rejections,
	// failovers, breaker); nil means the ones registered through Watch.
	Gatherer prometheus.Gatherer
	// HeartbeatTimeout is heartbeat_timeout, which makes an amphora stale.
	HeartbeatTimeout time.Duration
	// FailoverThreshold is failover_threshold, 0 when unset.
	FailoverThreshold int
	// DryRun says the failover driver is noop: failovers are only logged.
	DryRun bool
	// CacheFor, MaxLoadBalancers and MaxMembers bound the cost (defaults
	// above).
	CacheFor         time.Duration
	MaxLoadBalancers int
	MaxMembers       int
	// RefreshEvery is how often the page reloads its content (default
	// 2 s).
	RefreshEvery time.Duration
	Now          func() time.Time
	Logger       *slog.Logger
}

// Page serves the status page. Its methods are safe for concurrent use.
type Page struct {
	cfg         Config
	log         *slog.Logger
	transitions *ring[TransitionEvent]
	failovers   *ring[FailoverEvent]
	rates       rates
	watched     *prometheus.Registry
	// fetch reads the database; tests wrap it to count reads.
	fetch func(context.Context, query) (*dbView, error)

	mu       sync.Mutex
	shadow   ShadowSource
	snap     *Snapshot
	until    time.Time
	building chan struct{}
}

// New makes a page; nothing is read until it is requested.
func New(cfg Config) *Page {
	if cfg.CacheFor <= 0 {
		cfg.CacheFor = DefaultCacheFor
	}
	if cfg.MaxLoadBalancers <= 0 {
		cfg.MaxLoadBalancers = DefaultMaxLoadBalancers
	}
	if cfg.MaxMembers <= 0 {
		cfg.MaxMembers = DefaultMaxMembers
	}
	if cfg.RefreshEvery <= 0 {
		cfg.RefreshEvery = 2 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	p := &Page{cfg: cfg, log: log, transitions: newRing[TransitionEvent](MaxTransitions), failovers: newRing[FailoverEvent](MaxFailovers),
		watched: prometheus.NewRegistry()}
	if p.cfg.Gatherer == nil {
		p.cfg.Gatherer = p.watched
	}
	p.fetch = func(ctx context.Context, q query) (*dbView, error) {
		if cfg.Pool == nil {
			return nil, errors.New("status page: no database configured")
		}
		return fetch(ctx, cfg.Pool, q)
	}
	return p
}

// Register adds the page ("/" exactly) and its JSON form ("/status.json")
// to mux.
func (p *Page) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", p.serveHTML)
	mux.HandleFunc("GET /status.json", p.serveJSON)
}

// Snapshot returns the current snapshot, building it if the cached one has
// expired. Callers that arrive during a build wait for it.
func (p *Page) Snapshot(ctx context.Context) *Snapshot {
	for {
		p.mu.Lock()
		now := p.cfg.Now()
		if p.snap != nil && now.Before(p.until) {
			s := p.snap
			p.mu.Unlock()
			return s
		}
		if wait := p.building; wait != nil {
			p.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				// The caller gave up; an old snapshot is better than none.
				p.mu.Lock()
				s := p.snap
				p.mu.Unlock()
				if s == nil {
					s = &Snapshot{Taken: now, Error: "status page: " + ctx.Err().Error()}
				}
				return s
			}
		}
		p.building = make(chan struct{})
		p.mu.Unlock()
		return p.rebuild(now)
	}
}

// rebuild builds a snapshot and publishes it to the requests waiting for
// it; even a panic releases them.
func (p *Page) rebuild(now time.Time) (s *Snapshot) {
	defer func() {
		p.mu.Lock()
		if s != nil {
			p.snap, p.until = s, now.Add(keepFor(p.cfg.CacheFor, s.QueryTime))
		}
		close(p.building)
		p.building = nil
		p.mu.Unlock()
	}()
	// Not the caller's context: the build serves everyone waiting.
	ctx, cancel := context.WithTimeout(context.Background(), snapshotLimit)
	defer cancel()
	return p.build(ctx, now)
}

// keepFor is how long a snapshot that took queryTime to read is reused.
func keepFor(cacheFor, queryTime time.Duration) time.Duration {
	return max(cacheFor, time.Duration(float64(queryTime)/queryShare))
}

func (p *Page) build(ctx context.Context, now time.Time) *Snapshot {
	s := &Snapshot{Taken: now}
	f := &s.Fleet
	f.HeartbeatTimeout, f.FailoverThreshold, f.DryRun = p.cfg.HeartbeatTimeout, p.cfg.FailoverThreshold, p.cfg.DryRun
	counters, err := readCounters(p.cfg.Gatherer)
	if err != nil {
		p.log.Warn("status page: some metrics could not be read", "err", err)
	}
	f.Counters = counters
	f.HeartbeatRate, f.RejectRate, f.RatesKnown = p.rates.observe(now, counters)
	s.Shadow = p.shadowView()

	transitions, tTotal := p.transitions.newestFirst()
	failovers, fTotal := p.failovers.newestFirst()
	s.TransitionsTotal, s.FailoversTotal = tTotal, fTotal
	q := query{heartbeatTimeout: p.cfg.HeartbeatTimeout, buckets: plotBuckets,
		maxLBs: p.cfg.MaxLoadBalancers, maxMembers: p.cfg.MaxMembers, transitionIDs: map[string][]string{}}
	for _, t := range transitions {
		s.Transitions = append(s.Transitions, TransitionView{TransitionEvent: t})
		q.transitionIDs[t.Entity] = append(q.transitionIDs[t.Entity], t.ID)
	}
	for _, fo := range failovers {
		s.Failovers = append(s.Failovers, FailoverView{FailoverEvent: fo})
		q.failoverIDs = append(q.failoverIDs, fo.AmphoraID)
	}

	start := p.cfg.Now()
	v, err := p.fetch(ctx, q)
	s.QueryTime = p.cfg.Now().Sub(start)
	if err != nil {
		p.log.Warn("status page: database not read", "err", err)
		s.Error = err.Error()
		return s
	}
	// Ages and staleness on the database's clock, as the watcher judges
	// them, whatever this process's clock says.
	assemble(s, v, v.now, p.cfg.HeartbeatTimeout)
	return s
}

//go:embed assets
var assets embed.FS

var pageTemplate = template.Must(template.New("page.html").Funcs(template.FuncMap{
	"lower":    func(s string) string { return toLower(s) },
	"age":      formatAge,
	"clock":    func(t time.Time) string { return t.UTC().Format("15:04:05") },
	"rate":     func(f float64) string { return formatRate(f) },
	"count":    formatCount,
	"ms":       func(d time.Duration) string { return formatMillis(d) },
	"shortid":  shortID,
	"entity":   entityLabel,
	"failover": failoverLabel,
	"css":      func() template.CSS { return template.CSS(mustAsset("assets/page.css")) },
	"js":       func() template.JS { return template.JS(mustAsset("assets/page.js")) },
}).ParseFS(assets, "assets/page.html"))

func mustAsset(name string) string {
	b, err := assets.ReadFile(name)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// view is the template's data.
type view struct {
	*Snapshot
	RefreshMillis    int64
	MaxLoadBalancers int
	ShownTransitions []TransitionView
	ShownFailovers   []FailoverView
}

func (p *Page) view(s *Snapshot) view {
	return view{Snapshot: s, RefreshMillis: p.cfg.RefreshEvery.Milliseconds(), MaxLoadBalancers: p.cfg.MaxLoadBalancers,
		ShownTransitions: first(s.Transitions, shownTransitions), ShownFailovers: first(s.Failovers, shownFailovers)}
}

func first[T any](s []T, n int) []T { return s[:min(n, len(s))] }

// serveHTML renders the whole page, or with ?fragment=1 only the part the
// script replaces on each refresh.
func (p *Page) serveHTML(w http.ResponseWriter, r *http.Request) {
	s := p.Snapshot(r.Context())
	name := "page"
	if r.URL.Query().Get("fragment") != "" {
		name = "content"
	}
	var buf bytes.Buffer
	if err := pageTemplate.ExecuteTemplate(&buf, name, p.view(s)); err != nil {
		p.log.Error("status page: render failed", "err", err)
		http.Error(w, "status page: render failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:")
	_, _ = w.Write(buf.Bytes())
}

func (p *Page) serveJSON(w http.ResponseWriter, r *http.Request) {
	s := p.Snapshot(r.Context())
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	_ = enc.Encode(s)
}
