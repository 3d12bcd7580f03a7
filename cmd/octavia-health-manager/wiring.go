package main

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/urfave/cli/v2"

	"github.com/octavia-vpp/health/healthdb/manager"
	"github.com/octavia-vpp/health/heartbeat"
	"github.com/octavia-vpp/health/internal/octaviaconf"
	"github.com/octavia-vpp/health/internal/oslocli"
	"github.com/octavia-vpp/health/internal/oslolog"
)

// loadConfig reads the --config-file files.
func loadConfig(c *cli.Context) (*octaviaconf.Config, error) {
	cfg, err := octaviaconf.Load(oslocli.Files(c)...)
	if err != nil {
		return nil, usageError("%v", err)
	}
	return cfg, nil
}

// newLogger is the logger of a command other than serve: the oslo.log
// options and flags, as serve reads them.
func newLogger(c *cli.Context, cfg *octaviaconf.Config) (*oslolog.Logger, error) {
	l, err := oslolog.New(oslolog.FromCLI(c, c.App.Name, cfg.Default.Debug, cfg.Default.Logging))
	if err != nil {
		return nil, usageError("%v", err)
	}
	return l, nil
}

// openPool is manager.NewPool for a command that needs the database now.
func openPool(ctx context.Context, cfg *octaviaconf.Config) (*pgxpool.Pool, error) {
	pool, err := manager.NewPool(ctx, cfg, 1)
	if err != nil {
		return nil, usageError("%v", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, usageError("connect to %s: %v", octaviaconf.RedactURL(cfg.Database.Connection), err)
	}
	return pool, nil
}

// keyringFor is the keyring of the offline tools: manager.NewKeyring,
// the one serve uses, with --key in place of [health_manager]
// heartbeat_key when given. allowEmpty lets decode and encode take an
// explicitly empty key.
func keyringFor(c *cli.Context, cfg *octaviaconf.Config, allowEmpty bool) (*heartbeat.Keyring, error) {
	opts := manager.KeyringOptions{AllowEmpty: allowEmpty}
	if c.IsSet("key") {
		key := c.String("key")
		opts.Primary = &key
	}
	kr, err := manager.NewKeyring(cfg, opts)
	if errors.Is(err, manager.ErrNoKey) {
		return nil, usageError("no heartbeat key: pass --key or set [health_manager] heartbeat_key in a --config-file")
	}
	if err != nil {
		return nil, usageError("%v", err)
	}
	return kr, nil
}
