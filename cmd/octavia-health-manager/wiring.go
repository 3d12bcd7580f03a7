package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/urfave/cli/v2"

	"github.com/octavia-vpp/health/healthdb"
	"github.com/octavia-vpp/health/healthdb/failover"
	"github.com/octavia-vpp/health/heartbeat"
	"github.com/octavia-vpp/health/internal/octaviaconf"
)

// loadConfig reads the --config-file files.
func loadConfig(c *cli.Context) (*octaviaconf.Config, error) {
	cfg, err := octaviaconf.Load(c.StringSlice("config-file")...)
	if err != nil {
		return nil, usageError("%v", err)
	}
	return cfg, nil
}

func newLogger(cfg *octaviaconf.Config) *slog.Logger {
	level := slog.LevelInfo
	if cfg.Default.Debug {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// newPool makes a pool for [database] connection with [database]
// max_pool_size connections (at least minConns). It does not connect.
func newPool(ctx context.Context, cfg *octaviaconf.Config, minConns int) (*pgxpool.Pool, error) {
	if cfg.Database.Connection == "" {
		return nil, usageError("[database] connection is not set")
	}
	pcfg, err := pgxpool.ParseConfig(cfg.Database.Connection)
	if err != nil {
		return nil, usageError("[database] connection %s: %v", octaviaconf.RedactURL(cfg.Database.Connection), err)
	}
	pcfg.MaxConns = int32(max(cfg.Database.MaxPoolSize, minConns))
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, usageError("database %s: %v", octaviaconf.RedactURL(cfg.Database.Connection), err)
	}
	return pool, nil
}

// openPool is newPool for a command that needs the database now.
func openPool(ctx context.Context, cfg *octaviaconf.Config) (*pgxpool.Pool, error) {
	pool, err := newPool(ctx, cfg, 1)
	if err != nil {
		return nil, err
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, usageError("connect to %s: %v", octaviaconf.RedactURL(cfg.Database.Connection), err)
	}
	return pool, nil
}

// newUpdater builds the health updater the daemon and replay share.
func newUpdater(cfg *octaviaconf.Config, pool *pgxpool.Pool, log *slog.Logger) (*healthdb.Updater, error) {
	// Only the compute driver may need Keystone here: replay fails nothing
	// over.
	computeOnly := *cfg
	computeOnly.HealthManager.FailoverDriver = failover.DriverNoop
	session, err := openstackSession(&computeOnly)
	if err != nil {
		return nil, err
	}
	deleter, err := computeDeleter(cfg, session, log)
	if err != nil {
		return nil, err
	}
	u, err := healthdb.NewUpdater(healthdb.UpdaterConfig{
		Store:   healthdb.NewStore(pool),
		Deleter: deleter,
		Rules:   healthdb.Rules{HeartbeatInterval: cfg.HealthManager.HeartbeatInterval},
		Logger:  log,
	})
	if err != nil {
		return nil, usageError("%v", err)
	}
	return u, nil
}

// keyringFor is the keyring for heartbeats: --key if given, else
// [health_manager] heartbeat_key. The empty key is a valid HMAC key, which
// the decode and encode tools accept when it is set explicitly; anything
// that applies heartbeats to the database refuses it, because Octavia's
// amphorae sign with the literal "None" when their key is unset.
func keyringFor(c *cli.Context, cfg *octaviaconf.Config, allowEmpty bool) (*heartbeat.Keyring, error) {
	key := c.String("key")
	if !c.IsSet("key") {
		if !cfg.HealthManager.HeartbeatKeySet || (cfg.HealthManager.HeartbeatKey == "" && !allowEmpty) {
			return nil, usageError("no heartbeat key: pass --key or set [health_manager] heartbeat_key in a --config-file")
		}
		key = cfg.HealthManager.HeartbeatKey
	}
	kr, err := heartbeat.NewKeyring(heartbeat.KeyringConfig{Keys: []string{key}, Strict: cfg.HealthManager.StrictHeartbeats})
	if err != nil {
		return nil, usageError("%v", err)
	}
	return kr, nil
}
