// Command octavia-health-manager is a drop-in replacement for OpenStack
// Octavia's health manager. This file only wires flags to packages.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/octavia-vpp/health/internal/oslolog"
)

// Exit codes shared by the subcommands.
const (
	exitRejected = 1 // the input was read but refused (a bad heartbeat, ...)
	exitUsage    = 2 // the command could not run: bad flags, config or files
)

func main() {
	if err := newApp().Run(os.Args); err != nil {
		// cli.Exit errors have already been printed and exited; anything
		// else is a usage problem urfave/cli reports as a plain error.
		fmt.Fprintln(os.Stderr, "octavia-health-manager:", err)
		os.Exit(exitUsage)
	}
}

func newApp() *cli.App {
	return &cli.App{
		Name:  "octavia-health-manager",
		Usage: "receive amphora heartbeats and keep Octavia's statuses in PostgreSQL",
		Flags: append([]cli.Flag{
			&cli.StringSliceFlag{
				Name:  "config-file",
				Usage: "oslo-style config `PATH`; repeat it, later files override earlier ones",
			},
			checkFlag,
		}, oslolog.Flags()...),
		// --check validates the config files instead of running anything.
		Before: func(c *cli.Context) error {
			if !c.Bool("check") {
				return nil
			}
			return cli.Exit("", runCheck(c.StringSlice("config-file"), c.App.Writer, c.App.ErrWriter))
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
}

func usageError(format string, args ...any) error {
	return cli.Exit(fmt.Sprintf("octavia-health-manager: "+format, args...), exitUsage)
}
