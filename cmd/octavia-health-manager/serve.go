package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/urfave/cli/v2"

	"github.com/octavia-vpp/health/healthdb"
	"github.com/octavia-vpp/health/healthdb/failover"
	"github.com/octavia-vpp/health/healthdb/statuspage"
	"github.com/octavia-vpp/health/heartbeat"
	"github.com/octavia-vpp/health/internal/boundq"
	"github.com/octavia-vpp/health/internal/octaviaconf"
	"github.com/octavia-vpp/health/statsdriver"
)

// drainTimeout bounds how long shutdown waits for queued heartbeats.
const drainTimeout = 10 * time.Second

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "receive heartbeats and apply them (the default command)",
		Description: "Listens on [health_manager] bind_ip:bind_port, verifies heartbeats, and applies\n" +
			"them to the [database] connection as Octavia's health manager does.\n" +
			"SIGTERM/SIGINT drain and exit; SIGHUP reloads keys, replay_window, the statistics\n" +
			"drivers and the log level.",
		Action: runServe,
	}
}

func runServe(c *cli.Context) error {
	ctx, stop := signal.NotifyContext(c.Context, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	reload := make(chan struct{}, 1)
	go func() {
		for range hup {
			select {
			case reload <- struct{}{}:
			default:
			}
		}
	}()
	return runDaemon(ctx, daemonOptions{
		files:     c.StringSlice("config-file"),
		logFormat: c.String("log-format"),
		reload:    reload,
	})
}

type daemonOptions struct {
	files     []string
	logFormat string
	reload    <-chan struct{}
	// ready is called once the daemon listens (tests read its addresses).
	ready func(*daemon)
	// logOutput defaults to standard error.
	logOutput io.Writer
	// extraStats are statistics drivers added to the configured ones
	// (tests use them).
	extraStats []statsdriver.Driver
}

// daemon is the running health manager: receiver -> health queue ->
// updater, with metrics and reload.
type daemon struct {
	opts     daemonOptions
	log      *slog.Logger
	level    *slog.LevelVar
	keys     atomic.Pointer[heartbeat.Keyring]
	keyState keyState
	replay   *heartbeat.ReplayGuard
	pool     *pgxpool.Pool
	receiver *heartbeat.Receiver
	updater  *healthdb.Updater
	watcher  *healthdb.Watcher
	observer *healthdb.Observer
	page     *statuspage.Page
	healthQ  *boundq.Queue[*heartbeat.Message]
	statsQ   *boundq.Queue[*heartbeat.Message]
	stats    *statsdriver.Pipeline
	metrics  *heartbeat.ReceiverMetrics
	registry *prometheus.Registry
	http     *http.Server
	httpAddr net.Addr

	mu        sync.Mutex
	lastError error
}

// keyState remembers the configured keys, to tell on reload what changed
// without ever printing a key.
type keyState struct {
	primary  string
	previous []string
}

func runDaemon(ctx context.Context, opts daemonOptions) error {
	cfg, err := octaviaconf.Load(opts.files...)
	if err != nil {
		return usageError("%v", err)
	}
	d, err := newDaemon(ctx, cfg, opts)
	if err != nil {
		return err
	}
	return d.run(ctx)
}

func newDaemon(ctx context.Context, cfg *octaviaconf.Config, opts daemonOptions) (*daemon, error) {
	d := &daemon{opts: opts, level: new(slog.LevelVar)}
	var out io.Writer = os.Stderr
	if opts.logOutput != nil {
		out = opts.logOutput
	}
	handlerOpts := &slog.HandlerOptions{Level: d.level}
	switch opts.logFormat {
	case "", "text":
		d.log = slog.New(slog.NewTextHandler(out, handlerOpts))
	case "json":
		d.log = slog.New(slog.NewJSONHandler(out, handlerOpts))
	default:
		return nil, usageError("--log-format must be text or json, not %q", opts.logFormat)
	}
	d.setLevel(cfg)
	kr, ks, err := buildKeyring(cfg)
	if err != nil {
		return nil, err
	}
	d.keys.Store(kr)
	d.keyState = ks
	hm := &cfg.HealthManager
	d.replay = heartbeat.NewReplayGuard(hm.ReplayWindow, 0)
	if err := failover.CheckDriverName(hm.FailoverDriver); err != nil {
		return nil, usageError("%v", err)
	}
	session, err := openstackSession(cfg)
	if err != nil {
		return nil, err
	}

	// The pool connects lazily: a database that is down at start is retried
	// by every batch, as Octavia's health manager keeps running without one.
	if d.pool, err = newPool(ctx, cfg, 2); err != nil {
		return nil, err
	}
	if err := d.pool.Ping(ctx); err != nil {
		d.log.Warn("database not reachable yet; heartbeats will be retried as they arrive",
			"database", octaviaconf.RedactURL(cfg.Database.Connection), "err", err)
	}

	d.registry = prometheus.NewRegistry()
	d.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	d.registry.MustRegister(buildInfo())
	d.page = statusPage(cfg, d.pool, d.log)
	d.metrics = heartbeat.NewReceiverMetrics(d.page.Watch(d.registry))
	updaterMetrics := healthdb.NewUpdaterMetrics(d.registry, hm.HeartbeatTimeout)

	deleter, err := computeDeleter(cfg, session, d.log)
	if err != nil {
		return nil, err
	}
	d.updater, err = healthdb.NewUpdater(healthdb.UpdaterConfig{
		Store: healthdb.NewStore(d.pool), Deleter: deleter,
		Rules:     healthdb.Rules{HeartbeatInterval: hm.HeartbeatInterval},
		BatchSize: hm.HealthBatchSize, BatchDelay: hm.HealthBatchWait,
		TopologyCache: hm.TopologyCache,
		Logger:        d.log, Metrics: updaterMetrics,
	})
	if err != nil {
		return nil, usageError("%v", err)
	}
	driver, err := failoverDriver(cfg, session, d.log)
	if err != nil {
		return nil, err
	}
	driver = d.page.WrapDriver(driver)
	d.observer = healthdb.NewObserver(time.Now(), hm.HeartbeatTimeout)
	d.watcher, err = healthdb.NewWatcher(healthdb.WatcherConfig{
		Store: healthdb.NewStore(d.pool), Driver: driver,
		HeartbeatTimeout: hm.HeartbeatTimeout, HealthCheckInterval: hm.HealthCheckInterval,
		FailoverThreads:   hm.FailoverThreads,
		FailoverThreshold: hm.FailoverThreshold, FailoverThresholdSet: hm.FailoverThresholdSet,
		OctaviaBreakerRelease: !hm.FailoverBreakerHold,
		Observer:              d.observer, Logger: d.log, Metrics: healthdb.NewWatcherMetrics(d.page.Watch(d.registry)),
	})
	if err != nil {
		return nil, usageError("%v", err)
	}
	d.healthQ = boundq.New[*heartbeat.Message](hm.QueueSize)
	d.statsQ = boundq.New[*heartbeat.Message](hm.QueueSize)
	d.metrics.Dropped.WithLabelValues("health", "queue_full")
	d.metrics.Dropped.WithLabelValues("stats", "queue_full")
	d.stats, err = statsdriver.NewPipeline(statsdriver.PipelineConfig{
		Drivers:       cfg.ControllerWorker.StatisticsDrivers,
		Deps:          statsdriver.Deps{Pool: d.pool, Logger: d.log, Registerer: d.registry},
		FlushInterval: hm.StatsFlushInterval, MaxPairs: hm.StatsMaxPairs,
		Extra: opts.extraStats, Metrics: statsdriver.NewPipelineMetrics(d.registry), Logger: d.log,
	})
	if err != nil {
		return nil, usageError("%v", err)
	}

	d.receiver, err = heartbeat.NewReceiver(heartbeat.ReceiverConfig{
		Addr:    netip.AddrPortFrom(hm.BindIP, uint16(hm.BindPort)),
		Sockets: hm.ReceiveSockets, ReceiveBuffer: hm.SockRlimit,
		Workers: hm.HealthUpdateThreads, QueueSize: receiveQueueSize(hm.QueueSize),
		Keys:    func() *heartbeat.Keyring { return d.keys.Load() },
		Check:   func(m *heartbeat.Message) error { return d.replay.Check(m, m.RecvTime) },
		Deliver: d.deliver,
		// Heartbeats lost unopened make rows look stale as surely as a
		// full health queue: the same self-health rule holds failovers.
		Lost:    func(int) { d.observer.WorkDropped(time.Now()) },
		Metrics: d.metrics, Logger: d.log,
	})
	if err != nil {
		return nil, usageError("%v", err)
	}
	for name, length := range map[string]func() int{"receive": d.receiver.QueueLen, "health": d.healthQ.Len, "stats": d.statsQ.Len} {
		d.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "octavia_hm_queue_length", Help: "Work waiting in each queue.", ConstLabels: prometheus.Labels{"queue": name},
		}, func() float64 { return float64(length()) }))
	}
	d.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "octavia_hm_replay_guard_amphorae", Help: "Amphorae whose last accepted (boot, seq) the replay guard remembers.",
	}, func() float64 { return float64(d.replay.Len()) }))
	if hm.MetricsBind != "" {
		ln, err := net.Listen("tcp", hm.MetricsBind)
		if err != nil {
			return nil, usageError("[health_manager] metrics_bind %s: %v", hm.MetricsBind, err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(d.registry, promhttp.HandlerOpts{}))
		mux.HandleFunc("/healthz", d.healthz)
		d.page.Register(mux)
		d.http = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		d.httpAddr = ln.Addr()
		go func() {
			if err := d.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				d.log.Error("metrics server stopped", "err", err)
			}
		}()
	}
	return d, nil
}

// receiveQueueSize bounds the raw datagrams waiting to be opened. They may
// be up to 64 KiB each and need no key to send, so this queue is kept an
// eighth of queue_size (2,048 by default: at most 128 MiB); opening takes
// microseconds, so it only fills when the CPU is saturated.
func receiveQueueSize(queueSize int) int { return max(queueSize/8, 256) }

func (d *daemon) setLevel(cfg *octaviaconf.Config) {
	if cfg.Default.Debug {
		d.level.Set(slog.LevelDebug)
	} else {
		d.level.Set(slog.LevelInfo)
	}
}

// buildKeyring refuses an unset or empty key: Octavia's amphorae sign with
// the literal string "None" when theirs is unset, so an empty key here is
// always a mistake.
func buildKeyring(cfg *octaviaconf.Config) (*heartbeat.Keyring, keyState, error) {
	hm := &cfg.HealthManager
	if !hm.HeartbeatKeySet || hm.HeartbeatKey == "" {
		return nil, keyState{}, usageError("[health_manager] heartbeat_key is not set: refusing to start " +
			"(amphorae whose key is unset sign with the literal string \"None\"; set the same key on both sides)")
	}
	keys := append([]string{hm.HeartbeatKey}, hm.HeartbeatKeyPrevious...)
	kr, err := heartbeat.NewKeyring(heartbeat.KeyringConfig{Keys: keys, MaxInflatedBytes: hm.MaxHeartbeatBytes,
		Strict: hm.StrictHeartbeats})
	if err != nil {
		return nil, keyState{}, usageError("%v", err)
	}
	return kr, keyState{primary: hm.HeartbeatKey, previous: hm.HeartbeatKeyPrevious}, nil
}

// deliver hands an opened heartbeat to two independent queues, health and
// statistics, so that a slow statistics sink never delays a health
// update. A full queue discards its oldest entry.
func (d *daemon) deliver(m *heartbeat.Message, _ heartbeat.Verified) {
	now := time.Now()
	d.observer.HeartbeatReceived(now)
	if n := len(d.healthQ.Put(m)); n > 0 {
		d.metrics.Dropped.WithLabelValues("health", "queue_full").Add(float64(n))
		d.observer.WorkDropped(now)
	}
	if n := len(d.statsQ.Put(m)); n > 0 {
		d.metrics.Dropped.WithLabelValues("stats", "queue_full").Add(float64(n))
	}
}

func (d *daemon) run(ctx context.Context) error {
	d.log.Info("health manager started", "listen", d.receiver.Addr().String(), "metrics", d.metricsAddr(),
		"keyring", d.keys.Load(), "replay_window", d.replay.Window())
	if d.opts.ready != nil {
		d.opts.ready(d)
	}
	drainCtx, cancelDrain := context.WithCancel(context.Background())
	defer cancelDrain()
	updaterDone := make(chan struct{})
	go func() {
		d.updater.Run(drainCtx, d.healthQ.C(), d.batchDone)
		close(updaterDone)
	}()
	statsDone := make(chan struct{})
	go func() {
		d.stats.Run(drainCtx, d.statsQ.C(), drainTimeout/2)
		close(statsDone)
	}()
	receiverDone := make(chan struct{})
	go func() {
		d.receiver.Run(ctx)
		close(receiverDone)
	}()
	// The watcher stops with the receiver; failover requests under way are
	// cancelled and their claims released before the pool closes.
	watcherDone := make(chan struct{})
	go func() {
		d.watcher.Run(ctx)
		close(watcherDone)
	}()

	for {
		select {
		case <-ctx.Done():
			d.log.Info("stopping: no longer reading heartbeats; applying what is queued", "queued", d.healthQ.Len())
			<-receiverDone
			<-watcherDone
			d.healthQ.Close()
			d.statsQ.Close()
			timer := time.AfterFunc(drainTimeout, cancelDrain)
			<-updaterDone
			<-statsDone
			if !timer.Stop() {
				d.log.Warn("stopped before every queued heartbeat was applied", "timeout", drainTimeout)
			}
			if d.http != nil {
				shutdownCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				_ = d.http.Shutdown(shutdownCtx)
				cancel()
			}
			d.pool.Close()
			d.log.Info("health manager stopped")
			return nil
		case <-d.opts.reload:
			d.reloadConfig()
		}
	}
}

func (d *daemon) batchDone(res healthdb.BatchResult, err error) {
	now := time.Now()
	d.observer.DatabaseResult(err, now)
	d.page.RecordBatch(res, err)
	if res.Health[healthdb.HealthSkipLate] > 0 {
		// Heartbeats that waited heartbeat_interval in the queue were
		// dropped: as overloaded as a full queue.
		d.observer.WorkDropped(now)
	}
	d.mu.Lock()
	d.lastError = err
	d.mu.Unlock()
}

// reloadConfig re-reads the config files on SIGHUP. Keys (with
// strict_heartbeats, which the keyring applies), the replay window and the
// log level change in place; the socket is kept. An invalid file changes nothing.
func (d *daemon) reloadConfig() {
	cfg, err := octaviaconf.Load(d.opts.files...)
	if err != nil {
		d.log.Error("reload failed; keeping the running configuration", "err", err)
		return
	}
	kr, ks, err := buildKeyring(cfg)
	if err != nil {
		d.log.Error("reload failed; keeping the running configuration", "err", err)
		return
	}
	if err := d.stats.SetDrivers(cfg.ControllerWorker.StatisticsDrivers); err != nil {
		d.log.Error("reload failed; keeping the running configuration", "err", err)
		return
	}
	d.setLevel(cfg)
	primaryChanged := ks.primary != d.keyState.primary
	previousChanged := fmt.Sprint(ks.previous) != fmt.Sprint(d.keyState.previous)
	d.keys.Store(kr)
	d.keyState = ks
	d.replay.SetWindow(cfg.HealthManager.ReplayWindow)
	d.log.Info("configuration reloaded", "primary_key_changed", primaryChanged,
		"previous_keys_changed", previousChanged, "previous_keys", len(ks.previous), "debug", cfg.Default.Debug,
		"statistics_drivers", cfg.ControllerWorker.StatisticsDrivers, "replay_window", d.replay.Window())
}

func (d *daemon) metricsAddr() string {
	if d.httpAddr == nil {
		return "disabled"
	}
	return d.httpAddr.String()
}

// healthz answers 503 while the last batch failed (the database is
// unreachable), 200 otherwise.
func (d *daemon) healthz(w http.ResponseWriter, _ *http.Request) {
	d.mu.Lock()
	err := d.lastError
	d.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	body := map[string]string{"status": "ok"}
	if err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		body = map[string]string{"status": "unhealthy", "reason": "last health batch failed: " + err.Error()}
	}
	_ = json.NewEncoder(w).Encode(body)
}

// statusPage is the web page on metrics_bind. It reads the metrics
// registered through its Watch and records the transitions and failovers
// the daemon hands it.
func statusPage(cfg *octaviaconf.Config, pool *pgxpool.Pool, log *slog.Logger) *statuspage.Page {
	hm := &cfg.HealthManager
	threshold := 0
	if hm.FailoverThresholdSet {
		threshold = hm.FailoverThreshold
	}
	return statuspage.New(statuspage.Config{
		Pool: pool, HeartbeatTimeout: hm.HeartbeatTimeout,
		FailoverThreshold: threshold, DryRun: hm.FailoverDriver == failover.DriverNoop, Logger: log,
	})
}

func buildInfo() prometheus.Collector {
	version, goVersion := "(devel)", ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		goVersion = bi.GoVersion
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "octavia_hm_build_info", Help: "Build information; always 1.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": goVersion},
	})
	g.Set(1)
	return g
}
