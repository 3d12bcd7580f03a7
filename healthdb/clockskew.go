package healthdb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// Defaults of a ClockSkewCheck.
const (
	DefaultClockSkewInterval  = time.Minute
	DefaultClockSkewThreshold = 5 * time.Second
)

// clockSkewSamples is how many readings one check takes; the one with the
// shortest round trip, whose midpoint is the most certain, is kept.
const clockSkewSamples = 3

// ClockSkewConfig configures a ClockSkewCheck.
type ClockSkewConfig struct {
	Pool *pgxpool.Pool
	// Interval is the time between checks (default DefaultClockSkewInterval);
	// Threshold the skew above which a warning is logged (default
	// DefaultClockSkewThreshold).
	Interval, Threshold time.Duration
	// Timeout bounds one check (default 10 s).
	Timeout time.Duration
	Logger  *slog.Logger
	// Registerer receives octavia_hm_clock_skew_seconds; nil registers it
	// nowhere.
	Registerer prometheus.Registerer
}

// ClockSkewCheck compares this process's clock with the database
// server's. Health is written and judged on the database's clock alone
// (see docs/failover.md), so a skew does not cause failovers; it is
// reported because it still misleads whoever reads this process's logs
// next to the database's timestamps, and Octavia's own services, which
// stamp rows with their local clocks.
type ClockSkewCheck struct {
	cfg    ClockSkewConfig
	log    *slog.Logger
	gauge  prometheus.Gauge
	warned bool // the previous check found the skew above the threshold
}

// NewClockSkewCheck fills in defaults and registers the gauge.
func NewClockSkewCheck(cfg ClockSkewConfig) (*ClockSkewCheck, error) {
	if cfg.Pool == nil {
		return nil, errors.New("healthdb: a clock skew check needs a database pool")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultClockSkewInterval
	}
	if cfg.Threshold <= 0 {
		cfg.Threshold = DefaultClockSkewThreshold
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "octavia_hm_clock_skew_seconds",
		Help: "The database server's clock minus this process's, at the last check (corrected for the round trip). " +
			"Health is judged on the database's clock.",
	})
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(g); err != nil {
			return nil, fmt.Errorf("healthdb: register the clock skew gauge: %w", err)
		}
	}
	return &ClockSkewCheck{cfg: cfg, log: log, gauge: g}, nil
}

// Run checks at once, then every Interval, until ctx ends. A failed check
// (the database is down) is logged at debug level and leaves the gauge as
// it was: the batches and the watcher already report the outage.
func (c *ClockSkewCheck) Run(ctx context.Context) {
	ticker := time.NewTicker(c.cfg.Interval)
	defer ticker.Stop()
	for {
		checkCtx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
		if _, err := c.Check(checkCtx); err != nil && ctx.Err() == nil {
			c.log.Debug("clock skew not measured", "err", err)
		}
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// Check measures the skew (the database's clock minus this process's),
// sets the gauge, and logs a warning when it exceeds the threshold, and
// once when it is back under.
func (c *ClockSkewCheck) Check(ctx context.Context) (time.Duration, error) {
	skew, rtt, err := measureClockSkew(ctx, c.cfg.Pool)
	if err != nil {
		return 0, err
	}
	c.gauge.Set(skew.Seconds())
	attrs := []any{"skew", skew.Round(time.Millisecond), "threshold", c.cfg.Threshold,
		"round_trip", rtt.Round(time.Microsecond)}
	switch over := skew > c.cfg.Threshold || skew < -c.cfg.Threshold; {
	case over:
		c.warned = true
		c.log.Warn("this health manager's clock differs from the database server's; "+
			"amphora health is written and judged on the database's clock, but check NTP on both", attrs...)
	case c.warned:
		c.warned = false
		c.log.Info("clock skew with the database server is back under the threshold", attrs...)
	}
	return skew, nil
}

// measureClockSkew reads the server's clock a few times on one connection
// and compares the reading of the shortest round trip with the local
// clock at that round trip's midpoint.
func measureClockSkew(ctx context.Context, pool *pgxpool.Pool) (skew, rtt time.Duration, err error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("read the database clock: %w", err)
	}
	defer conn.Release()
	rtt = -1
	for range clockSkewSamples {
		var db time.Time
		sent := time.Now()
		// clock_timestamp(), not now(): the time of reading, not of the
		// transaction's start. Both are the clock health is written with.
		if err := conn.QueryRow(ctx, `SELECT clock_timestamp()`).Scan(&db); err != nil {
			return 0, 0, fmt.Errorf("read the database clock: %w", err)
		}
		took := time.Since(sent) // monotonic
		if rtt < 0 || took < rtt {
			rtt = took
			// Round(0) drops the monotonic reading: the skew is between
			// wall clocks.
			skew = db.Sub(sent.Round(0).Add(took / 2))
		}
	}
	return skew, rtt, nil
}
