package manager

import (
	"context"
	"database/sql"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/octavia-vpp/health/healthdb"
	"github.com/octavia-vpp/health/healthdb/failover"
	"github.com/octavia-vpp/health/healthdb/manager/statuspage"
	"github.com/octavia-vpp/health/healthdb/pgstore"
	"github.com/octavia-vpp/health/healthdb/shadow"
	"github.com/octavia-vpp/health/heartbeat"
	"github.com/octavia-vpp/health/heartbeat/udp"
	"github.com/octavia-vpp/health/internal/boundq"
	"github.com/octavia-vpp/health/internal/octaviaconf"
	"github.com/octavia-vpp/health/statsdriver"
)

// drainTimeout bounds how long shutdown waits for queued heartbeats.
const drainTimeout = 10 * time.Second

// Options are what the configuration does not say: where logs go, how
// reloads are asked for, and test hooks.
type Options struct {
	// Logger and Level: Level is the level of Logger's handler, which
	// [DEFAULT] debug sets at start and on every reload.
	Logger *slog.Logger
	Level  *slog.LevelVar
	// Reload asks for the configuration to be read again (SIGHUP); Load
	// reads it. An invalid configuration changes nothing.
	Reload <-chan struct{}
	Load   func() (*octaviaconf.Config, error)
	// Ready is called once the manager listens (tests read its addresses).
	Ready func(*Manager)
	// ExtraStats are statistics drivers added to the configured ones
	// (tests use them).
	ExtraStats []statsdriver.Driver
	// Stores, when set, replace the PostgreSQL wiring: no pool is made and
	// [database] connection is not read. Nil keeps PostgreSQL.
	Stores *Stores
	// ShadowDecide, when set, replaces the status procedure in shadow mode
	// (tests inject a rule difference with it); nil is healthdb.Decide.
	ShadowDecide shadow.DecideFunc
}

// Stores are the storage the pipeline runs on instead of PostgreSQL
// (tests pass healthdb/memstore and a statsdriver.MemorySink). Without a
// database the clock skew check is off and the status page shows no
// database view; readiness (/healthz) follows the batches as usual.
type Stores struct {
	Updater healthdb.UpdaterStore
	Watcher healthdb.WatcherStore
	// StatsSink receives stats_db's aggregated flushes; nil makes a
	// configured stats_db a start-up error, as without a database.
	StatsSink statsdriver.FlushSink
	// Shadow is what shadow mode reads ([health_manager] shadow).
	Shadow shadow.Reader
	// StatsDialect is the database StatsSink writes to.
	StatsDialect statsdriver.Dialect
}

// Manager is the running health manager: receiver -> health and stats
// queues -> updater and statistics drivers, the watcher, metrics and
// reload.
type Manager struct {
	opts     Options
	log      *slog.Logger
	level    *slog.LevelVar
	keys     atomic.Pointer[heartbeat.Keyring]
	keyState keyState
	replay   *heartbeat.ReplayGuard
	pool     *pgxpool.Pool
	mysqlDB  *sql.DB // the MySQL stores' pool, when [database] connection is MySQL
	// ping asks the database for an answer through the stores' pool; nil
	// with Options.Stores. dbWhere is [database] connection, redacted.
	ping    func(context.Context) error
	dbWhere string
	// dbRetry is [database] max_retries and retry_interval (awaitDatabase).
	dbRetry struct {
		max      int
		interval time.Duration
	}
	receiver *udp.Receiver
	updater  *healthdb.Updater
	watcher  *healthdb.Watcher
	observer *healthdb.Observer
	skew     *healthdb.ClockSkewCheck
	page     *statuspage.Page
	healthQ  *boundq.Queue[*heartbeat.Message]
	// shadow and shadowQ replace the updater and the watcher in shadow
	// mode (shadow.go).
	shadow  *shadow.Shadow
	shadowQ *boundq.Queue[shadow.Heartbeat]
	// shadowMetrics are exported in every mode, at 0 outside shadow mode,
	// so that dashboards and alerts find them.
	shadowMetrics *shadow.Metrics
	statsQ        *boundq.Queue[*heartbeat.Message]
	stats         *statsdriver.Pipeline
	metrics       *udp.ReceiverMetrics
	registry      *prometheus.Registry
	http          *http.Server
	httpAddr      net.Addr
	// pprof serves pprof_bind; nil when it is off.
	pprof     *http.Server
	pprofAddr net.Addr

	// reloads counts SIGHUP reloads by result.
	reloads *prometheus.CounterVec
	// life is what /livez, /readyz and systemd's watchdog judge by.
	life                lifecycle
	healthCheckInterval time.Duration

	// forwarder relays datagrams to shadow_forward_to; nil when unset.
	forwarder *udp.Forwarder
	// gc paces the garbage collector (gc_heap_target_mb); nil leaves Go's
	// defaults.
	gc *gcTuner
}

// New builds the pipeline from cfg; it binds the heartbeat socket and
// metrics_bind, and makes the database pool, which connects lazily. Run
// starts it, and waits for the database's first answer as oslo.db does
// ([database] max_retries, retry_interval; see awaitDatabase).
func New(ctx context.Context, cfg *octaviaconf.Config, opts Options) (*Manager, error) {
	m := &Manager{opts: opts, log: opts.Logger, level: opts.Level}
	if m.log == nil {
		m.log = slog.Default()
	}
	if m.level == nil {
		m.level = new(slog.LevelVar)
	}
	m.setLevel(cfg)
	m.gc = newGCTuner(cfg.HealthManager.GCHeapTargetMB, m.log)
	kr, err := newDaemonKeyring(cfg)
	if err != nil {
		return nil, err
	}
	m.keys.Store(kr)
	m.keyState = keyStateOf(cfg)
	hm := &cfg.HealthManager
	m.healthCheckInterval = hm.HealthCheckInterval
	if err := checkPprofBind(hm.PprofBind); err != nil {
		return nil, err
	}
	m.replay = heartbeat.NewReplayGuard(hm.ReplayWindow, 0)
	if err := failover.CheckDriverName(hm.FailoverDriver); err != nil {
		return nil, err
	}
	// Shadow mode fails nothing over and deletes nothing: it needs no
	// Keystone credentials.
	var session *failover.Session
	if !hm.Shadow {
		if session, err = OpenstackSession(cfg); err != nil {
			return nil, err
		}
	}
	if err := m.openPool(ctx, cfg); err != nil {
		return nil, err
	}
	m.registry = newRegistry()
	switch {
	case m.pool != nil:
		m.registry.MustRegister(newPgxPoolCollector(m.pool))
	case m.mysqlDB != nil:
		m.registry.MustRegister(newSQLPoolCollector(m.mysqlDB))
	}
	m.reloads = newReloadCounter(m.registry)
	m.shadowMetrics = shadow.NewMetrics(m.registry)
	m.page = statusPage(cfg, m.pool, m.log)
	m.metrics = udp.NewReceiverMetrics(m.page.Watch(m.registry))
	if err := m.buildHealthPath(cfg, session); err != nil {
		m.closePool()
		return nil, err
	}
	if err := m.buildQueues(cfg); err != nil {
		m.closePool()
		return nil, err
	}
	if err := m.buildReceiver(ctx, cfg); err != nil {
		m.closePool()
		return nil, err
	}
	m.registerGauges()
	if err := m.listenHTTP(hm.MetricsBind); err != nil {
		m.closePool()
		return nil, err
	}
	if err := m.listenPprof(hm.PprofBind); err != nil {
		m.stopHTTP()
		m.closePool()
		return nil, err
	}
	return m, nil
}

// buildHealthPath makes the updater, which applies heartbeats, the
// watcher, which fails stale amphorae over, and the clock skew check.
func (m *Manager) buildHealthPath(cfg *octaviaconf.Config, session *failover.Session) error {
	hm := &cfg.HealthManager
	if hm.Shadow {
		return m.buildShadow(cfg)
	}
	deleter, err := computeDeleter(cfg, session, m.log)
	if err != nil {
		return err
	}
	updaterStore, watcherStore := m.stores()
	m.updater, err = healthdb.NewUpdater(healthdb.UpdaterConfig{
		Store: updaterStore, Deleter: deleter,
		Rules:     healthdb.Rules{HeartbeatInterval: hm.HeartbeatInterval},
		BatchSize: hm.HealthBatchSize, BatchDelay: hm.HealthBatchWait,
		TopologyCache: hm.TopologyCache, TopologyCacheMaxBytes: int64(hm.TopologyCacheMaxMB) << 20,
		Logger: m.log, Metrics: healthdb.NewUpdaterMetrics(m.registry, hm.HeartbeatTimeout),
		// m.observer is set below, before Run starts the updater.
		BatchStarted: func(oldest time.Time) { m.observer.HealthBatchStarted(oldest) },
	})
	if err != nil {
		return err
	}
	driver, err := failoverDriver(cfg, session, m.log)
	if err != nil {
		return err
	}
	driver = m.page.WrapDriver(driver)
	m.observer = healthdb.NewObserver(time.Now(), hm.HeartbeatTimeout)
	m.observer.TrackHealthBatches() // batchDone reports every batch's end
	m.observer.SetRowTimeResolution(m.lastUpdateResolution())
	m.watcher, err = healthdb.NewWatcher(healthdb.WatcherConfig{
		Store: watcherStore, Driver: driver,
		HeartbeatTimeout: hm.HeartbeatTimeout, HealthCheckInterval: hm.HealthCheckInterval,
		FailoverThreads:   hm.FailoverThreads,
		FailoverThreshold: hm.FailoverThreshold, FailoverThresholdSet: hm.FailoverThresholdSet,
		OctaviaBreakerRelease: !hm.FailoverBreakerHold,
		Observer:              m.observer, Logger: m.log, Metrics: healthdb.NewWatcherMetrics(m.page.Watch(m.registry)),
	})
	if err != nil {
		return err
	}
	if m.pool == nil {
		return nil // no database clock to compare with
	}
	// Health is judged on the database's clock; a skewed local clock is
	// only reported.
	m.skew, err = healthdb.NewClockSkewCheck(healthdb.ClockSkewConfig{
		Pool: m.pool, Logger: m.log, Registerer: m.registry})
	return err
}

// buildQueues makes the two bounded queues and the statistics drivers
// behind the stats queue.
func (m *Manager) buildQueues(cfg *octaviaconf.Config) error {
	hm := &cfg.HealthManager
	m.healthQ = boundq.New[*heartbeat.Message](hm.QueueSize)
	m.statsQ = boundq.New[*heartbeat.Message](hm.QueueSize)
	m.metrics.Dropped.WithLabelValues("health", "queue_full")
	m.metrics.Dropped.WithLabelValues("stats", "queue_full")
	var err error
	var sink statsdriver.FlushSink
	dialect := statsdriver.PostgreSQL
	if m.opts.Stores != nil {
		sink, dialect = m.opts.Stores.StatsSink, m.opts.Stores.StatsDialect
	}
	extra := m.opts.ExtraStats
	if cfg.HealthManager.Shadow {
		// Shadow mode writes no statistics: no driver at all.
		noStats := *cfg
		noStats.ControllerWorker.StatisticsDrivers = nil
		cfg, extra = &noStats, nil
	}
	m.stats, err = newStats(cfg, m.pool, sink, dialect, m.log, m.registry, extra, false)
	return err
}

// openPool makes the database pool, unless Options.Stores replace it.
func (m *Manager) openPool(ctx context.Context, cfg *octaviaconf.Config) error {
	if m.opts.Stores != nil {
		return nil
	}
	m.dbWhere = octaviaconf.RedactURL(cfg.Database.Connection)
	m.dbRetry.max, m.dbRetry.interval = cfg.Database.MaxRetries, cfg.Database.RetryInterval
	if isMySQL, err := m.openMySQL(ctx, cfg); isMySQL || err != nil {
		return err
	}
	var err error
	if m.pool, err = newPool(ctx, cfg, 2, cfg.HealthManager.Shadow); err != nil {
		return err
	}
	m.ping = m.pool.Ping
	return nil
}

func (m *Manager) closePool() {
	if m.pool != nil {
		m.pool.Close()
	}
	closeMySQL(m.mysqlDB)
}

// stores are the updater's and the watcher's stores: Options.Stores, or
// PostgreSQL through the pool.
func (m *Manager) stores() (healthdb.UpdaterStore, healthdb.WatcherStore) {
	if s := m.opts.Stores; s != nil {
		return s.Updater, s.Watcher
	}
	return pgstore.New(m.pool), pgstore.New(m.pool)
}

// buildReceiver binds the heartbeat socket.
func (m *Manager) buildReceiver(ctx context.Context, cfg *octaviaconf.Config) error {
	hm := &cfg.HealthManager
	forward, err := m.buildForwarder(ctx, cfg)
	if err != nil {
		return err
	}
	m.receiver, err = udp.NewReceiver(udp.ReceiverConfig{
		Addr:    netip.AddrPortFrom(hm.BindIP, uint16(hm.BindPort)),
		Sockets: hm.ReceiveSockets, ReceiveBuffer: hm.SockRlimit,
		Workers: hm.HealthUpdateThreads, QueueSize: receiveQueueSize(hm.QueueSize),
		Keys:    func() *heartbeat.Keyring { return m.keys.Load() },
		Check:   func(msg *heartbeat.Message) error { return m.replay.Check(msg, msg.RecvTime) },
		Forward: forward,
		Deliver: m.deliver,
		Raw:     m.rawHook(hm.Shadow),
		// Heartbeats lost unopened make rows look stale as surely as a
		// full health queue: the same self-health rule holds failovers.
		Lost:    func(int) { m.observer.WorkDropped(time.Now()) },
		Metrics: m.metrics, Logger: m.log,
	})
	if err != nil {
		m.closeForwarder()
	}
	return err
}

// receiveQueueSize bounds the raw datagrams waiting to be opened. They may
// be up to 64 KiB each and need no key to send, so this queue is kept an
// eighth of queue_size (2,048 by default: at most 128 MiB); opening takes
// microseconds, so it only fills when the CPU is saturated.
func receiveQueueSize(queueSize int) int { return max(queueSize/8, 256) }

// deliver hands an opened heartbeat to two independent queues, health and
// statistics, so that a slow statistics sink never delays a health
// update. A full queue discards its oldest entry.
func (m *Manager) deliver(msg *heartbeat.Message) {
	now := time.Now()
	m.life.delivered.Add(1)
	m.observer.HeartbeatReceived(now)
	if m.shadow != nil {
		return // queued with its datagram by shadowDatagram
	}
	if n := len(m.healthQ.Put(msg)); n > 0 {
		m.metrics.Dropped.WithLabelValues("health", "queue_full").Add(float64(n))
		m.observer.WorkDropped(now)
	}
	if n := len(m.statsQ.Put(msg)); n > 0 {
		m.metrics.Dropped.WithLabelValues("stats", "queue_full").Add(float64(n))
	}
}

// Run starts every part and returns when ctx ends, after the queued
// heartbeats are applied (within drainTimeout) and the pool is closed.
func (m *Manager) Run(ctx context.Context) error {
	m.log.Info("health manager started", "listen", m.receiver.Addr().String(), "metrics", m.metricsAddr(),
		"keyring", m.keys.Load(), "replay_window", m.replay.Window())
	start := time.Now()
	m.life.since.Store(start.UnixNano())
	m.life.loopTurn.Store(start.UnixNano())
	m.life.running.Store(true)
	if m.opts.Ready != nil {
		m.opts.Ready(m)
	}
	// Type=notify: READY=1 once the socket is bound (New) and the
	// database has answered; WATCHDOG=1 from this loop while the pipeline
	// progresses. A database that never answers at start stops the
	// manager, with the error.
	runCtx, cancelRun := context.WithCancel(ctx)
	defer cancelRun()
	dbFailed := make(chan error, 1)
	go func() {
		if err := m.awaitDatabase(runCtx); err != nil {
			dbFailed <- err
		}
	}()
	live := time.NewTicker(loopTick)
	defer live.Stop()
	var watchdog <-chan time.Time
	if period := watchdogPeriod(); period > 0 {
		t := time.NewTicker(period)
		defer t.Stop()
		watchdog = t.C
	}
	drainCtx, cancelDrain := context.WithCancel(context.Background())
	defer cancelDrain()
	updaterDone := goDone(func() {
		if m.shadow != nil {
			m.shadow.Run(drainCtx, m.shadowQ.C())
			return
		}
		m.updater.Run(drainCtx, m.healthQ.C(), m.batchDone)
	})
	statsDone := goDone(func() { m.stats.Run(drainCtx, m.statsQ.C(), drainTimeout/2) })
	receiverDone := goDone(func() { m.receiver.Run(runCtx) })
	// The watcher stops with the receiver; failover requests under way are
	// cancelled and their claims released before the pool closes.
	watcherDone := goDone(func() {
		if m.watcher != nil {
			m.watcher.Run(runCtx)
		}
	})
	gcDone := goDone(func() { m.gc.run(runCtx) })
	skewDone := goDone(func() {
		if m.skew != nil {
			m.skew.Run(runCtx)
		}
	})

	stop := func() {
		m.life.running.Store(false)
		m.notify(daemon.SdNotifyStopping)
		m.log.Info("stopping: no longer reading heartbeats; applying what is queued", "queued", m.healthQ.Len())
		cancelRun()
		<-receiverDone
		m.closeForwarder()
		<-watcherDone
		<-skewDone
		<-gcDone
		m.healthQ.Close()
		m.statsQ.Close()
		if m.shadowQ != nil {
			m.shadowQ.Close()
		}
		timer := time.AfterFunc(drainTimeout, cancelDrain)
		<-updaterDone
		<-statsDone
		if !timer.Stop() {
			m.log.Warn("stopped before every queued heartbeat was applied", "timeout", drainTimeout)
		}
		m.stopHTTP()
		m.closePool()
		m.log.Info("health manager stopped")
	}
	for {
		select {
		case <-ctx.Done():
			stop()
			return nil
		case err := <-dbFailed:
			m.log.Error("giving up: the database did not answer at start", "database", m.dbWhere, "err", err)
			stop()
			return err
		case <-m.opts.Reload:
			m.reloadConfig()
		case now := <-live.C:
			m.life.loopTurn.Store(now.UnixNano())
		case <-watchdog:
			m.life.loopTurn.Store(time.Now().UnixNano())
			m.feedWatchdog()
		}
	}
}

// goDone runs f in a goroutine and returns a channel closed when it ends.
func goDone(f func()) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	return done
}

func (m *Manager) batchDone(res healthdb.BatchResult, err error) {
	now := time.Now()
	m.observer.DatabaseResult(err, now)
	// Whatever the error, this batch's heartbeats were not committed:
	// failovers wait until batches have committed for heartbeat_timeout.
	m.observer.HealthBatchResult(err, now)
	m.page.RecordBatch(res, err)
	if res.Health[healthdb.HealthSkipLate] > 0 {
		// Heartbeats that waited heartbeat_interval in the queue were
		// dropped: as overloaded as a full queue.
		m.observer.WorkDropped(now)
	}
	m.life.batchDone(err, now)
	if err == nil {
		m.watcher.HeardFrom(res.Amphorae)
	}
}

// ListenAddr is the heartbeat socket's address.
func (m *Manager) ListenAddr() netip.AddrPort { return m.receiver.Addr() }

// MetricsAddr is metrics_bind's bound address, nil when it is off.
func (m *Manager) MetricsAddr() net.Addr { return m.httpAddr }

// Registry holds every metric the manager exports on /metrics.
func (m *Manager) Registry() *prometheus.Registry { return m.registry }

func (m *Manager) metricsAddr() string {
	if m.httpAddr == nil {
		return "disabled"
	}
	return m.httpAddr.String()
}
