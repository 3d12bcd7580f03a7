// Command octavia-health-manager is a drop-in replacement for OpenStack
// Octavia's health manager. This file only wires flags to packages.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/octavia-vpp/health/internal/oslocli"
	"github.com/octavia-vpp/health/internal/oslolog"
)

// Exit codes shared by the subcommands.
const (
	exitRejected = 1 // the input was read but refused (a bad heartbeat, ...)
	exitUsage    = 2 // the command could not run: bad flags, config or files
	// exitUnavailable: the database did not answer at start within
	// [database] max_retries attempts (sysexits.h's EX_UNAVAILABLE).
	exitUnavailable = 69
)

func main() {
	if err := newApp().Run(os.Args); err != nil {
		// cli.Exit errors have already been printed and exited; anything
		// else is a usage problem urfave/cli reports as a plain error.
		fmt.Fprintln(os.Stderr, "octavia-health-manager:", err)
		os.Exit(exitUsage)
	}
}

// defaultConfigPath is read, if it exists, when no --config-file is
// given, and the directory beside it when no --config-dir is, as Octavia's
// services read them.
const defaultConfigPath = "/etc/octavia/octavia.conf"

// defaultConfig is defaultConfigPath; tests point it elsewhere.
var defaultConfig = oslocli.Default{Path: defaultConfigPath, IfExists: true, Dir: defaultConfigPath + ".d"}

func newApp() *cli.App {
	app := &cli.App{
		Name:  "octavia-health-manager",
		Usage: "receive amphora heartbeats and keep Octavia's statuses in PostgreSQL",
		Flags: append(append(oslocli.Flags(defaultConfig), checkFlag), oslolog.Flags()...),
		// --version, then the config files, worked out once for every command; --check
		// validates them instead of running anything.
		Before: func(c *cli.Context) error {
			if err := oslocli.Before(c, defaultConfig); err != nil {
				return err
			}
			if !c.Bool("check") {
				return nil
			}
			return cli.Exit("", runCheck(oslocli.Files(c), c.App.Writer, c.App.ErrWriter))
		},
		// As with Octavia's binary, no command means run the daemon.
		Action: runServe,
		// Keys and paths may contain commas; a repeated flag is the way to
		// give several.
		DisableSliceFlagSeparator: true,
		Commands: []*cli.Command{
			decodeCommand(),
			encodeCommand(),
			serveCommand(),
			migrateCommand(),
			replayCommand(),
			loadgenCommand(),
			shadowReportCommand(),
		},
		ExitErrHandler: func(_ *cli.Context, err error) {
			var coder cli.ExitCoder
			if errors.As(err, &coder) {
				if msg := err.Error(); msg != "" {
					fmt.Fprintln(os.Stderr, msg)
				}
				os.Exit(coder.ExitCode())
			}
		},
	}
	oslocli.Setup(app)
	return app
}

func usageError(format string, args ...any) error {
	return cli.Exit(fmt.Sprintf("octavia-health-manager: "+format, args...), exitUsage)
}
