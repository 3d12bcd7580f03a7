package manager

import (
	"database/sql"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// poolCollector exports the database pool's statistics, read at scrape
// time: pgxpool.Stat on PostgreSQL, database/sql's DBStats on MySQL,
// under the same names where the two mean the same thing
// (docs/operations.md lists which exist on which).
type poolCollector[S any] struct {
	stat    func() S
	metrics []poolMetric[S]
}

type poolMetric[S any] struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value func(S) float64
}

func poolDesc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc("octavia_hm_db_pool_"+name, help, nil, nil)
}

var (
	descAcquiredConns   = poolDesc("acquired_conns", "Connections in use by the health manager.")
	descIdleConns       = poolDesc("idle_conns", "Open connections waiting in the pool.")
	descTotalConns      = poolDesc("total_conns", "Connections open or being opened.")
	descMaxConns        = poolDesc("max_conns", "The pool's size ([database] max_pool_size, at least 2).")
	descEmptyAcquires   = poolDesc("empty_acquires_total", "Acquires that had to wait: no idle connection was ready.")
	descEmptyAcquireSec = poolDesc("empty_acquire_wait_seconds_total", "Time acquires spent waiting because no idle connection was ready.")
	descLifetimeCloses  = poolDesc("max_lifetime_destroys_total", "Connections closed for reaching their maximum lifetime.")
	descIdleTimeCloses  = poolDesc("max_idle_destroys_total", "Connections closed for staying idle too long.")
)

func gauge[S any](d *prometheus.Desc, f func(S) float64) poolMetric[S] {
	return poolMetric[S]{d, prometheus.GaugeValue, f}
}

func counter[S any](d *prometheus.Desc, f func(S) float64) poolMetric[S] {
	return poolMetric[S]{d, prometheus.CounterValue, f}
}

// pgxPoolMetrics are PostgreSQL's, from pgxpool.Stat.
var pgxPoolMetrics = []poolMetric[*pgxpool.Stat]{
	gauge(descAcquiredConns, func(s *pgxpool.Stat) float64 { return float64(s.AcquiredConns()) }),
	gauge(descIdleConns, func(s *pgxpool.Stat) float64 { return float64(s.IdleConns()) }),
	gauge(poolDesc("constructing_conns", "Connections being opened."),
		func(s *pgxpool.Stat) float64 { return float64(s.ConstructingConns()) }),
	gauge(descTotalConns, func(s *pgxpool.Stat) float64 { return float64(s.TotalConns()) }),
	gauge(descMaxConns, func(s *pgxpool.Stat) float64 { return float64(s.MaxConns()) }),
	counter(poolDesc("acquires_total", "Connections acquired from the pool."),
		func(s *pgxpool.Stat) float64 { return float64(s.AcquireCount()) }),
	counter(poolDesc("acquire_duration_seconds_total", "Time spent acquiring connections, waits for a free one included."),
		func(s *pgxpool.Stat) float64 { return s.AcquireDuration().Seconds() }),
	counter(descEmptyAcquires, func(s *pgxpool.Stat) float64 { return float64(s.EmptyAcquireCount()) }),
	counter(descEmptyAcquireSec, func(s *pgxpool.Stat) float64 { return s.EmptyAcquireWaitTime().Seconds() }),
	counter(poolDesc("canceled_acquires_total", "Acquires given up (context cancelled or timed out)."),
		func(s *pgxpool.Stat) float64 { return float64(s.CanceledAcquireCount()) }),
	counter(poolDesc("new_conns_total", "Connections opened."),
		func(s *pgxpool.Stat) float64 { return float64(s.NewConnsCount()) }),
	counter(descLifetimeCloses, func(s *pgxpool.Stat) float64 { return float64(s.MaxLifetimeDestroyCount()) }),
	counter(descIdleTimeCloses, func(s *pgxpool.Stat) float64 { return float64(s.MaxIdleDestroyCount()) }),
}

// sqlPoolMetrics are MySQL's, from database/sql's DBStats: its
// OpenConnections counts connections being opened too, and its waits are
// those for a free connection when max_pool_size are open (a connection
// being opened below that limit is not a wait there, as it is for pgxpool).
var sqlPoolMetrics = []poolMetric[sql.DBStats]{
	gauge(descAcquiredConns, func(s sql.DBStats) float64 { return float64(s.InUse) }),
	gauge(descIdleConns, func(s sql.DBStats) float64 { return float64(s.Idle) }),
	gauge(descTotalConns, func(s sql.DBStats) float64 { return float64(s.OpenConnections) }),
	gauge(descMaxConns, func(s sql.DBStats) float64 { return float64(s.MaxOpenConnections) }),
	counter(descEmptyAcquires, func(s sql.DBStats) float64 { return float64(s.WaitCount) }),
	counter(descEmptyAcquireSec, func(s sql.DBStats) float64 { return s.WaitDuration.Seconds() }),
	counter(descLifetimeCloses, func(s sql.DBStats) float64 { return float64(s.MaxLifetimeClosed) }),
	counter(descIdleTimeCloses, func(s sql.DBStats) float64 { return float64(s.MaxIdleTimeClosed) }),
}

func newPgxPoolCollector(pool *pgxpool.Pool) prometheus.Collector {
	return poolCollector[*pgxpool.Stat]{stat: pool.Stat, metrics: pgxPoolMetrics}
}

func newSQLPoolCollector(db *sql.DB) prometheus.Collector {
	return poolCollector[sql.DBStats]{stat: db.Stats, metrics: sqlPoolMetrics}
}

func (c poolCollector[S]) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range c.metrics {
		ch <- m.desc
	}
}

func (c poolCollector[S]) Collect(ch chan<- prometheus.Metric) {
	st := c.stat()
	for _, m := range c.metrics {
		ch <- prometheus.MustNewConstMetric(m.desc, m.kind, m.value(st))
	}
}
