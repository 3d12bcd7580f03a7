package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/octavia-vpp/health/healthdb/manager"
	"github.com/octavia-vpp/health/internal/octaviaconf"
	"github.com/octavia-vpp/health/internal/oslocli"
	"github.com/octavia-vpp/health/internal/oslolog"
	"github.com/octavia-vpp/health/statsdriver"
)

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "receive heartbeats and apply them (the default command)",
		Description: "Listens on [health_manager] bind_ip:bind_port, verifies heartbeats, and applies\n" +
			"them to the [database] connection as Octavia's health manager does.\n" +
			"SIGTERM/SIGINT drain and exit; SIGHUP reloads keys, replay_window, the statistics\n" +
			"drivers and the log level.",
		// "serve --check" is the global --check, written after the command.
		Flags: []cli.Flag{&cli.BoolFlag{Name: checkFlag.Name, Usage: checkFlag.Usage},
			&cli.BoolFlag{Name: "shadow",
				Usage: "shadow mode: write nothing, compare decisions with Octavia's health manager ([health_manager] shadow, docs/shadow.md)"}},
		Action: runServe,
	}
}

func runServe(c *cli.Context) error {
	if c.Bool("check") {
		return cli.Exit("", runCheck(oslocli.Files(c), c.App.Writer, c.App.ErrWriter))
	}
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
		files:  oslocli.Files(c),
		reload: reload,
		logging: func(cfg *octaviaconf.Config) oslolog.Options {
			return oslolog.FromCLI(c, c.App.Name, cfg.Default.Debug, cfg.Default.Logging)
		},
		setDefault: true,
		shadow:     c.Bool("shadow"),
	})
}

type daemonOptions struct {
	files     []string
	logFormat string
	reload    <-chan struct{}
	// ready is called once the daemon listens (tests read its addresses).
	ready func(*manager.Manager)
	// logging is the oslo.log options of a configuration, the
	// command-line flags applied; nil uses the configuration's alone,
	// with logFormat.
	logging func(*octaviaconf.Config) oslolog.Options
	// setDefault makes the logger slog's default too (the real daemon,
	// not tests).
	setDefault bool
	// logOutput defaults to standard error.
	logOutput io.Writer
	// extraStats are statistics drivers added to the configured ones
	// (tests use them).
	extraStats []statsdriver.Driver
	// shadow is serve --shadow: [health_manager] shadow, whatever the
	// files say.
	shadow bool
}

// runDaemon reads the config files and runs the pipeline
// (healthdb/manager) until ctx ends; SIGHUP reads the files again.
func runDaemon(ctx context.Context, opts daemonOptions) error {
	logging := opts.logging
	if logging == nil {
		logging = func(cfg *octaviaconf.Config) oslolog.Options {
			return oslolog.Options{Program: "octavia-health-manager", Debug: cfg.Default.Debug,
				Logging: cfg.Default.Logging, Format: opts.logFormat}
		}
	}
	// The files are read twice: first for where to log, then for real,
	// so that their warnings go where the operator asked.
	cfg, err := octaviaconf.Check(slog.New(slog.DiscardHandler), opts.files...)
	if err != nil {
		return usageError("%v", err)
	}
	lo := logging(cfg)
	lo.Stderr = opts.logOutput
	logger, err := oslolog.New(lo)
	if err != nil {
		return usageError("%v", err)
	}
	defer logger.Close()
	if opts.setDefault {
		slog.SetDefault(logger.Logger)
	}
	// load reads the files as SIGHUP does: --debug, when given, still
	// decides the level.
	load := func() (*octaviaconf.Config, error) {
		cfg, err := octaviaconf.Check(logger.Logger, opts.files...)
		if err != nil {
			return nil, err
		}
		cfg.Default.Debug = logging(cfg).Debug
		cfg.HealthManager.Shadow = cfg.HealthManager.Shadow || opts.shadow
		return cfg, nil
	}
	if cfg, err = load(); err != nil {
		return usageError("%v", err)
	}
	// SIGHUP reopens the log file first (logrotate has moved it), then
	// reloads.
	reload := make(chan struct{}, 1)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-opts.reload:
			}
			if err := logger.Reopen(); err != nil {
				logger.Error("SIGHUP: log file not reopened", "reason", err.Error())
			}
			select {
			case reload <- struct{}{}:
			default:
			}
		}
	}()
	m, err := manager.New(ctx, cfg, manager.Options{
		Logger: logger.Logger, Level: logger.Level,
		Reload: reload, Load: load,
		Ready: opts.ready, ExtraStats: opts.extraStats,
	})
	if err != nil {
		return usageError("%v", err)
	}
	if err := m.Run(ctx); err != nil {
		return cli.Exit("octavia-health-manager: "+err.Error(), exitUnavailable)
	}
	return nil
}
