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
		files:     oslocli.Files(c),
		logFormat: c.String("log-format"),
		reload:    reload,
	})
}

type daemonOptions struct {
	files     []string
	logFormat string
	reload    <-chan struct{}
	// ready is called once the daemon listens (tests read its addresses).
	ready func(*manager.Manager)
	// logOutput defaults to standard error.
	logOutput io.Writer
	// extraStats are statistics drivers added to the configured ones
	// (tests use them).
	extraStats []statsdriver.Driver
}

// runDaemon reads the config files and runs the pipeline
// (healthdb/manager) until ctx ends; SIGHUP reads the files again.
func runDaemon(ctx context.Context, opts daemonOptions) error {
	cfg, err := octaviaconf.Load(opts.files...)
	if err != nil {
		return usageError("%v", err)
	}
	var out io.Writer = os.Stderr
	if opts.logOutput != nil {
		out = opts.logOutput
	}
	level := new(slog.LevelVar)
	handlerOpts := &slog.HandlerOptions{Level: level}
	var log *slog.Logger
	switch opts.logFormat {
	case "", "text":
		log = slog.New(slog.NewTextHandler(out, handlerOpts))
	case "json":
		log = slog.New(slog.NewJSONHandler(out, handlerOpts))
	default:
		return usageError("--log-format must be text or json, not %q", opts.logFormat)
	}
	m, err := manager.New(ctx, cfg, manager.Options{
		Logger: log, Level: level,
		Reload: opts.reload, Load: func() (*octaviaconf.Config, error) { return octaviaconf.Load(opts.files...) },
		Ready: opts.ready, ExtraStats: opts.extraStats,
	})
	if err != nil {
		return usageError("%v", err)
	}
	return m.Run(ctx)
}
