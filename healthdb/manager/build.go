package manager

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/octavia-vpp/health/healthdb"
	"github.com/octavia-vpp/health/healthdb/failover"
	"github.com/octavia-vpp/health/healthdb/pgstore"
	"github.com/octavia-vpp/health/internal/octaviaconf"
	"github.com/octavia-vpp/health/statsdriver"
)

// This file builds, from the configuration, the parts that serve and the
// offline commands share: the database pool, the Keystone session, the
// compute and failover drivers, the replay updater and the statistics
// drivers. Each refusal names the option at fault.

// NewPool makes a pool for [database] connection with [database]
// max_pool_size connections (at least minConns). It does not connect.
func NewPool(ctx context.Context, cfg *octaviaconf.Config, minConns int) (*pgxpool.Pool, error) {
	return newPool(ctx, cfg, minConns, false)
}

// NewReadOnlyPool is NewPool whose sessions are read-only
// (default_transaction_read_only): any write fails, whatever the code
// asks (shadow mode, docs/shadow.md).
func NewReadOnlyPool(ctx context.Context, cfg *octaviaconf.Config, minConns int) (*pgxpool.Pool, error) {
	return newPool(ctx, cfg, minConns, true)
}

func newPool(ctx context.Context, cfg *octaviaconf.Config, minConns int, readOnly bool) (*pgxpool.Pool, error) {
	if cfg.Database.Connection == "" {
		return nil, fmt.Errorf("[database] connection is not set")
	}
	pcfg, err := pgxpool.ParseConfig(cfg.Database.Connection)
	if err != nil {
		return nil, fmt.Errorf("[database] connection %s: %v", octaviaconf.RedactURL(cfg.Database.Connection), err)
	}
	pcfg.MaxConns = int32(max(cfg.Database.MaxPoolSize, minConns))
	if readOnly {
		pcfg.ConnConfig.RuntimeParams["default_transaction_read_only"] = "on"
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("database %s: %v", octaviaconf.RedactURL(cfg.Database.Connection), err)
	}
	return pool, nil
}

// OpenstackSession returns the Keystone session the configured drivers
// need, or nil when none needs one (failover_driver noop with
// compute_noop_driver). Incomplete [service_auth] credentials are refused
// with the missing options named: failover must never silently do nothing.
func OpenstackSession(cfg *octaviaconf.Config) (*failover.Session, error) {
	var needs []string
	if cfg.HealthManager.FailoverDriver == failover.DriverOctaviaAPI {
		needs = append(needs, "[health_manager] failover_driver = octavia_api (to call the Octavia API's amphora failover)")
	}
	if cd := cfg.ControllerWorker.ComputeDriver; cd == "" || cd == "compute_nova_driver" {
		needs = append(needs, "[controller_worker] compute_driver = compute_nova_driver (to delete zombie amphorae)")
	}
	if len(needs) == 0 {
		return nil, nil
	}
	sa := &cfg.ServiceAuth
	if missing := sa.MissingCredentials(); len(missing) > 0 {
		return nil, fmt.Errorf("[service_auth] lacks %s, needed by %s; refusing to start. "+
			"Set them, or choose failover_driver = noop and compute_driver = compute_noop_driver for a dry run",
			strings.Join(missing, ", "), strings.Join(needs, " and "))
	}
	s, err := failover.NewSession(failover.AuthConfig{
		AuthURL: sa.AuthURL, Username: sa.Username, Password: sa.Password,
		ProjectName: sa.ProjectName, ProjectID: sa.ProjectID,
		UserDomainName: sa.UserDomainName, UserDomainID: sa.UserDomainID,
		ProjectDomainName: sa.ProjectDomainName, ProjectDomainID: sa.ProjectDomainID,
		CAFile: sa.CAFile, Insecure: sa.Insecure,
	})
	if err != nil {
		return nil, err
	}
	if _, err := failover.Availability(sa.Interface); err != nil {
		return nil, fmt.Errorf("[service_auth] interface: %v", err)
	}
	if _, err := failover.Availability(cfg.Nova.EndpointType); err != nil {
		return nil, fmt.Errorf("[nova] endpoint_type: %v", err)
	}
	return s, nil
}

// computeDeleter builds the [controller_worker] compute_driver.
func computeDeleter(cfg *octaviaconf.Config, session *failover.Session, log *slog.Logger) (healthdb.ComputeDeleter, error) {
	return healthdb.NewComputeDeleterFor(healthdb.ComputeConfig{
		Driver: cfg.ControllerWorker.ComputeDriver, Session: session,
		Region: cfg.Nova.RegionName, Interface: cfg.Nova.EndpointType, Logger: log,
	})
}

// failoverDriver builds the [health_manager] failover_driver.
func failoverDriver(cfg *octaviaconf.Config, session *failover.Session, log *slog.Logger) (failover.Driver, error) {
	name := cfg.HealthManager.FailoverDriver
	if err := failover.CheckDriverName(name); err != nil {
		return nil, err
	}
	if name == failover.DriverNoop {
		log.Warn("failover_driver is noop: stale amphorae are logged and counted, never failed over")
		return failover.Noop{Log: log}, nil
	}
	return &failover.OctaviaAPI{Session: session, Region: cfg.ServiceAuth.RegionName, Interface: cfg.ServiceAuth.Interface}, nil
}

// NewReplayUpdater builds the health updater replay applies heartbeats
// with, one at a time, the daemon's own rules.
func NewReplayUpdater(cfg *octaviaconf.Config, pool *pgxpool.Pool, log *slog.Logger) (*healthdb.Updater, error) {
	return newReplayUpdater(cfg, pgstore.New(pool), log)
}

func newReplayUpdater(cfg *octaviaconf.Config, store healthdb.UpdaterStore, log *slog.Logger) (*healthdb.Updater, error) {
	// Only the compute driver may need Keystone here: replay fails nothing
	// over.
	computeOnly := *cfg
	computeOnly.HealthManager.FailoverDriver = failover.DriverNoop
	session, err := OpenstackSession(&computeOnly)
	if err != nil {
		return nil, err
	}
	deleter, err := computeDeleter(cfg, session, log)
	if err != nil {
		return nil, err
	}
	return healthdb.NewUpdater(healthdb.UpdaterConfig{
		Store:   store,
		Deleter: deleter,
		Rules:   healthdb.Rules{HeartbeatInterval: cfg.HealthManager.HeartbeatInterval},
		Logger:  log,
		// Replay applies one heartbeat at a time and reports each zombie
		// delete's outcome; serve never waits for the compute service.
		InlineZombieDeletes: true,
		// The same topology cache as serve, so that a replay shows what
		// serve would have written.
		TopologyCache:         cfg.HealthManager.TopologyCache,
		TopologyCacheMaxBytes: int64(cfg.HealthManager.TopologyCacheMaxMB) << 20,
	})
}

// NewStats opens [controller_worker] statistics_drivers for serve through
// the one registry (statsdriver.Pipeline): stats_db behind the
// aggregator, whose flushes are applied exactly once, the others called
// per heartbeat. reg receives the drivers' and the pipeline's metrics;
// extra drivers are called like the named ones.
func NewStats(cfg *octaviaconf.Config, pool *pgxpool.Pool, log *slog.Logger, reg prometheus.Registerer, extra []statsdriver.Driver) (*statsdriver.Pipeline, error) {
	return newStats(cfg, pool, nil, statsdriver.PostgreSQL, log, reg, extra, false)
}

// NewReplayStats opens the same drivers, by the same names and rules, for
// replay: it calls Apply for one heartbeat at a time, and stats_db writes
// each heartbeat as it comes (statsdriver.PipelineConfig.PerHeartbeat).
// The prometheus driver gets a registry of its own, which nothing serves.
func NewReplayStats(cfg *octaviaconf.Config, pool *pgxpool.Pool, log *slog.Logger) (*statsdriver.Pipeline, error) {
	return newStats(cfg, pool, nil, statsdriver.PostgreSQL, log, prometheus.NewRegistry(), nil, true)
}

// sink, when not nil, takes stats_db's aggregated flushes instead of the
// pool (Options.Stores).
func newStats(cfg *octaviaconf.Config, pool *pgxpool.Pool, sink statsdriver.FlushSink, dialect statsdriver.Dialect, log *slog.Logger,
	reg prometheus.Registerer, extra []statsdriver.Driver, perHeartbeat bool) (*statsdriver.Pipeline, error) {
	hm := &cfg.HealthManager
	return statsdriver.NewPipeline(statsdriver.PipelineConfig{
		Drivers:       cfg.ControllerWorker.StatisticsDrivers,
		Deps:          statsdriver.Deps{Pool: pool, Logger: log, Registerer: reg},
		Sink:          sink,
		FlushInterval: hm.StatsFlushInterval, MaxPairs: hm.StatsMaxPairs,
		Extra: extra, Metrics: statsdriver.NewPipelineMetrics(reg), Logger: log,
		PerHeartbeat: perHeartbeat,
		Dialect:      dialect,
	})
}

// StartupProblems runs, without binding sockets or connecting anywhere,
// the start-up checks New runs on a configuration that loaded, and
// returns every refusal. It calls the functions New calls, so the two
// cannot disagree. skip names ("section option") options already reported
// bad, whose defaults must not be reported a second time.
func StartupProblems(cfg *octaviaconf.Config, skip map[string]bool) []error {
	var problems []error
	add := func(err error) {
		if err != nil {
			problems = append(problems, err)
		}
	}
	if !skip["health_manager heartbeat_key"] && !skip["health_manager heartbeat_key_previous"] {
		_, err := newDaemonKeyring(cfg)
		add(err)
	}
	// A MySQL URL was parsed whole when the configuration loaded
	// (internal/mysqlconf); the server's version is checked on connecting.
	if !skip["database connection"] {
		add(checkDatabaseURL(cfg))
	}

	hm := &cfg.HealthManager
	add(failover.CheckDriverName(hm.FailoverDriver))
	var session *failover.Session
	var err error
	if !hm.Shadow { // shadow mode calls neither the Octavia API nor Nova
		session, err = OpenstackSession(cfg)
		add(err)
	}
	if err == nil && !hm.Shadow {
		// computeDeleter needs the session to judge compute_nova_driver;
		// without one, OpenstackSession has already said what is missing.
		_, err = computeDeleter(cfg, session, slog.New(slog.DiscardHandler))
		add(err)
	}

	// serve refuses an unknown statistics driver (statsdriver.Open, where
	// Octavia only warns); the names are checked here without opening the
	// drivers, which would need a pool and a registry.
	known := statsdriver.Names()
	for _, name := range cfg.ControllerWorker.StatisticsDrivers {
		if !slices.Contains(known, name) {
			add(fmt.Errorf("[controller_worker] statistics_drivers: %w %q (known: %s)",
				statsdriver.ErrUnknownDriver, name, strings.Join(known, ", ")))
		}
	}
	// serve would fail to listen on a malformed address; whether the
	// address is free can only be known by binding it.
	if hm.MetricsBind != "" {
		if _, _, err := net.SplitHostPort(hm.MetricsBind); err != nil {
			add(fmt.Errorf("[health_manager] metrics_bind %q: %w", hm.MetricsBind, err))
		}
	}
	add(checkPprofBind(hm.PprofBind))
	return problems
}
