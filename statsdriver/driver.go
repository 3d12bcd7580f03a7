package statsdriver

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/octavia-vpp/health/heartbeat"
)

// ListenerStats is one listener's statistics from one amphora, as Octavia's
// update_stats builds a ListenerStatistics from a heartbeat listener.
type ListenerStats struct {
	ListenerID string
	// AmphoraID is the heartbeat's "id". Empty means a provider-driver
	// report, which stats_db files under the listener id.
	AmphoraID string
	// From version 3 on, BytesIn, BytesOut, TotalConnections and
	// RequestErrors are deltas; ActiveConnections is always a gauge.
	BytesIn           int64 // "rx"
	BytesOut          int64 // "tx"
	ActiveConnections int64 // "conns"
	TotalConnections  int64 // "totconns"
	RequestErrors     int64 // "ereq"
	// ReceivedTime is the heartbeat's recv_time. Octavia never stores it.
	ReceivedTime time.Time
}

// Driver receives the statistics of every authenticated heartbeat.
//
// Update gets one message's listeners, in the message's order; deltas tells
// increments (version 3 and later) from absolute values. Implementations
// must be safe for concurrent use. An error means some or all of the
// statistics were not recorded; Octavia logs such errors and moves on, and
// so should callers.
type Driver interface {
	Update(ctx context.Context, stats []ListenerStats, deltas bool) error
}

// FromMessage converts a heartbeat into what drivers receive, as Octavia's
// update_stats does: one entry per listener, in the message's order, with
// deltas when "ver" is 3 or more (a missing "ver" counts as 2 here, unlike
// in the health path).
//
// ok is false when update_stats fails before any driver runs, so that the
// message's statistics are dropped whole: "ver" cannot be compared with 3,
// "listeners" is there but not an object, or some listener is not an object
// or carries no "stats" object. A message without "listeners" has no
// statistics.
//
// Where Octavia's stats_db fails on one listener's row, it keeps the rows
// before it and writes none after it; the list is cut there, so that every
// driver, and any aggregation in front of stats_db, gets the same rows:
//   - at a listener with a counter stats_db cannot store
//     (heartbeat.Listener.StatsUnwritable);
//   - at a listener or amphora id that held a lone UTF-16 surrogate escape
//     (carried as U+FFFD, see heartbeat.Message.AmphoraIDLoneSurrogate),
//     which the database driver cannot encode;
//   - at the first listener when "id" is a non-string Python finds true
//     (the query compares it with a varchar column and fails).
//
// An "id" that is absent, or a non-string Python finds false, gives an
// empty AmphoraID: stats_db files the rows under the listener id.
func FromMessage(m *heartbeat.Message) (stats []ListenerStats, deltas, ok bool) {
	return FromMessageOn(m, PostgreSQL)
}

// Dialect is the database Octavia's stats_db writes to, where what it can
// store differs (docs/deviations.md, "On MySQL").
type Dialect int

const (
	// PostgreSQL refuses a boolean counter (psycopg2 sends a boolean,
	// which a bigint column does not take).
	PostgreSQL Dialect = iota
	// MySQL stores a boolean counter as 0 or 1 (PyMySQL sends it so).
	MySQL
)

// FromMessageOn is FromMessage with stats_db on the database d.
func FromMessageOn(m *heartbeat.Message, d Dialect) (stats []ListenerStats, deltas, ok bool) {
	if m.VersionNotComparable || m.ListenersOdd.Kind != heartbeat.KindNormal {
		return nil, false, false
	}
	for i := range m.Listeners {
		if m.Listeners[i].NotObject || !m.Listeners[i].HasStats {
			return nil, false, false
		}
	}
	stats = make([]ListenerStats, 0, len(m.Listeners))
	if m.AmphoraIDLoneSurrogate || m.IDProblem == heartbeat.IDTruthy {
		return stats, m.StatsAreDeltas(), true
	}
	for i := range m.Listeners {
		l := &m.Listeners[i]
		unwritable := l.StatsUnwritable
		if d == MySQL {
			unwritable = l.StatsUnwritableMySQL
		}
		if l.IDLoneSurrogate || unwritable != "" {
			break
		}
		stats = append(stats, ListenerStats{
			ListenerID:        l.ID,
			AmphoraID:         m.AmphoraID,
			BytesIn:           l.Stats.RX,
			BytesOut:          l.Stats.TX,
			ActiveConnections: l.Stats.Conns,
			TotalConnections:  l.Stats.TotConns,
			RequestErrors:     l.Stats.EReq,
			ReceivedTime:      m.RecvTime,
		})
	}
	return stats, m.StatsAreDeltas(), true
}

// Deps is what drivers may need. A driver that needs something missing
// fails to open.
type Deps struct {
	// Pool is the Octavia database, for stats_db.
	Pool *pgxpool.Pool
	// MySQL is the Octavia database on MySQL/MariaDB, for stats_db
	// heartbeat by heartbeat (replay); serve uses MySQLSink.
	MySQL  *sql.DB
	Logger *slog.Logger
	// Registerer is where the prometheus driver publishes its metrics.
	Registerer prometheus.Registerer
}

// ErrUnknownDriver is returned by Open for a name no driver registers.
var ErrUnknownDriver = errors.New("unknown statistics driver")

// factories is the registry: Octavia's entry-point names (namespace
// octavia.statistics.drivers) to constructors. A function rather than a
// package variable, so nothing can register into it at run time.
func factories() map[string]func(Deps) (Driver, error) {
	return map[string]func(Deps) (Driver, error){
		"stats_db": func(d Deps) (Driver, error) {
			switch {
			case d.Pool != nil:
				return NewDB(d.Pool), nil
			case d.MySQL != nil:
				return NewMySQLDB(d.MySQL), nil
			}
			return nil, errors.New("stats_db needs a database connection")
		},
		"stats_logger": func(d Deps) (Driver, error) {
			return NewLogger(d.Logger), nil
		},
		// Ours, not Octavia's: per-listener metrics on /metrics.
		"prometheus": func(d Deps) (Driver, error) {
			if d.Registerer == nil {
				return nil, errors.New("prometheus needs a metrics registry (metrics_bind)")
			}
			return NewPrometheus(d.Registerer, DefaultPrometheusExpire)
		},
	}
}

// Names lists the registered driver names, sorted.
func Names() []string {
	f := factories()
	names := make([]string, 0, len(f))
	for name := range f {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// Open builds the driver registered under an Octavia name.
func Open(name string, deps Deps) (Driver, error) {
	f, ok := factories()[name]
	if !ok {
		return nil, fmt.Errorf("%w %q (known: %v)", ErrUnknownDriver, name, Names())
	}
	d, err := f(deps)
	if err != nil {
		return nil, fmt.Errorf("open statistics driver %s: %w", name, err)
	}
	return d, nil
}
