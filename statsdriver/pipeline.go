package statsdriver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/octavia-vpp/health/heartbeat"
)

// PipelineConfig configures the daemon's statistics path.
type PipelineConfig struct {
	// Drivers are [controller_worker] statistics_drivers. Unlike Octavia,
	// which skips an unknown name with a warning, an unknown name is an
	// error: a typo would otherwise silently stop statistics.
	Drivers []string
	Deps    Deps
	// Sink, when set, takes stats_db's aggregated flushes instead of a DB
	// on Deps.Pool (the manager on an in-memory store uses MemorySink).
	Sink FlushSink
	// FlushInterval is how often stats_db's aggregate is written.
	FlushInterval time.Duration
	// MaxPairs bounds stats_db's aggregate.
	MaxPairs int
	// Extra drivers are called like the named ones (tests use it).
	Extra []Driver
	// PerHeartbeat writes stats_db heartbeat by heartbeat, without the
	// Aggregator, keeping Octavia's rule that a refused listener stops the
	// rest of its heartbeat. replay uses it: it applies one heartbeat at a
	// time and never retries one, and the interop suite holds its rows to
	// Octavia's own driver (docs/deviations.md).
	PerHeartbeat bool
	// Dialect is the database stats_db writes to; it decides which
	// counters Octavia's stats_db stores there (FromMessageOn), for every
	// driver alike.
	Dialect Dialect
	Metrics *PipelineMetrics
	Logger  *slog.Logger
}

// Pipeline applies heartbeats' statistics to the configured drivers; it
// is the one place [controller_worker] statistics_drivers are opened, for
// serve and replay. Unless PerHeartbeat, stats_db goes through an
// Aggregator, so the database sees one write per
// (listener, amphora) per flush and an outage loses nothing; the others
// get every heartbeat.
type Pipeline struct {
	cfg   PipelineConfig
	agg   *Aggregator
	sinks atomic.Pointer[[]namedDriver]
	// opened keeps drivers across reloads: a driver holds state (the
	// prometheus driver's totals, its registered collector).
	opened map[string]Driver
}

type namedDriver struct {
	name   string
	driver Driver
}

// NewPipeline opens the drivers.
func NewPipeline(cfg PipelineConfig) (*Pipeline, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = time.Second
	}
	p := &Pipeline{cfg: cfg, opened: map[string]Driver{}}
	sink := cfg.Sink
	if sink == nil && cfg.Deps.Pool != nil {
		sink = NewDB(cfg.Deps.Pool)
	}
	if sink != nil && !cfg.PerHeartbeat {
		p.agg = NewAggregator(AggregatorConfig{
			Sink: sink, MaxPairs: cfg.MaxPairs, Logger: cfg.Logger,
			OnFlush: func(rows int, took time.Duration, err error) {
				if m := cfg.Metrics; m != nil {
					m.flushSeconds.Observe(took.Seconds())
					if err != nil {
						m.flushErrors.Inc()
					}
				}
			},
		})
		if cfg.Metrics != nil {
			cfg.Metrics.backlog.Store(p.agg)
		}
	}
	if err := p.SetDrivers(cfg.Drivers); err != nil {
		return nil, err
	}
	return p, nil
}

// SetDrivers replaces the drivers in use (on reload). On error nothing
// changes. It is called from one goroutine at a time (start, then reload).
func (p *Pipeline) SetDrivers(names []string) error {
	var sinks []namedDriver
	seen := map[string]bool{}
	for _, name := range names {
		if seen[name] {
			continue
		}
		seen[name] = true
		if name == "stats_db" && !p.cfg.PerHeartbeat {
			if p.agg == nil {
				return fmt.Errorf("statistics driver stats_db needs a database connection")
			}
			sinks = append(sinks, namedDriver{name, p.agg})
			continue
		}
		d, ok := p.opened[name]
		if !ok {
			var err error
			if d, err = Open(name, p.cfg.Deps); err != nil {
				return fmt.Errorf("[controller_worker] statistics_drivers: %w", err)
			}
			p.opened[name] = d
		}
		sinks = append(sinks, namedDriver{name, d})
	}
	for i, d := range p.cfg.Extra {
		sinks = append(sinks, namedDriver{fmt.Sprintf("extra-%d", i), d})
	}
	p.sinks.Store(&sinks)
	return nil
}

// Run consumes in until it is closed, then writes what is aggregated
// (within finalTimeout) and returns. ctx ends driver calls early.
func (p *Pipeline) Run(ctx context.Context, in <-chan *heartbeat.Message, finalTimeout time.Duration) {
	var flusher sync.WaitGroup
	flushCtx, stopFlushing := context.WithCancel(ctx)
	if p.agg != nil {
		flusher.Add(1)
		go func() {
			defer flusher.Done()
			p.agg.Run(flushCtx, p.cfg.FlushInterval, finalTimeout)
		}()
	}
	for m := range in {
		_, _ = p.Apply(ctx, m) // counted and logged
	}
	stopFlushing()
	flusher.Wait()
}

// Apply sends one heartbeat's statistics to every driver now. ok is false
// when the message's statistics are dropped before any driver, as
// Octavia's update_stats drops them (a listener without "stats"). A
// driver's failure does not stop the others; each is counted, logged and
// returned, prefixed with the driver's name, in one errors.Join.
func (p *Pipeline) Apply(ctx context.Context, m *heartbeat.Message) (ok bool, err error) {
	stats, deltas, ok := FromMessageOn(m, p.cfg.Dialect)
	if !ok {
		// Octavia's update_stats fails on such a message before any driver.
		p.cfg.Metrics.dropped("listener_without_stats", 1)
		return false, nil
	}
	var errs []error
	for _, s := range *p.sinks.Load() {
		if err := s.driver.Update(ctx, stats, deltas); err != nil {
			p.cfg.Metrics.dropped("driver_error", 1)
			p.cfg.Logger.Warn("statistics driver failed", "driver", s.name, "amphora_id", m.AmphoraID, "err", err)
			errs = append(errs, fmt.Errorf("%s: %w", s.name, err))
		}
	}
	return true, errors.Join(errs...)
}

// PipelineMetrics are the statistics path's Prometheus metrics.
type PipelineMetrics struct {
	flushSeconds prometheus.Histogram
	flushErrors  prometheus.Counter
	drops        *prometheus.CounterVec
	backlog      atomic.Pointer[Aggregator]
}

// NewPipelineMetrics creates and registers them.
func NewPipelineMetrics(reg prometheus.Registerer) *PipelineMetrics {
	m := &PipelineMetrics{
		flushSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "octavia_hm_stats_flush_duration_seconds", Help: "Time to write one flush of aggregated listener statistics.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 15)}),
		flushErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "octavia_hm_stats_flush_errors_total", Help: "Flushes that failed; their statistics are kept and retried."}),
		drops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "octavia_hm_stats_dropped_total", Help: "Heartbeats whose statistics were not recorded, by reason."},
			[]string{"reason"}),
	}
	backlog := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "octavia_hm_stats_backlog_pairs", Help: "(listener, amphora) pairs aggregated and not yet written."},
		func() float64 {
			if a := m.backlog.Load(); a != nil {
				return float64(a.Pending())
			}
			return 0
		})
	discarded := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "octavia_hm_stats_discarded_rows_total", Help: "Aggregated rows discarded: over stats_max_pairs, or refused by the database."},
		func() float64 {
			if a := m.backlog.Load(); a != nil {
				return float64(a.Discarded())
			}
			return 0
		})
	for _, reason := range []string{"listener_without_stats", "driver_error"} {
		m.drops.WithLabelValues(reason)
	}
	reg.MustRegister(m.flushSeconds, m.flushErrors, m.drops, backlog, discarded)
	return m
}

func (m *PipelineMetrics) dropped(reason string, n int) {
	if m != nil {
		m.drops.WithLabelValues(reason).Add(float64(n))
	}
}
