// Command amphora-agent runs inside a VPP-based amphora: it programs VPP's
// lb plugin from the LB description, health-checks members and sends V3
// heartbeats. This file only declares the flags and commands; their
// actions are in package agentcli.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/octavia-vpp/health/amphora-agent/agentcli"
	"github.com/octavia-vpp/health/internal/oslocli"
	"github.com/octavia-vpp/health/internal/oslolog"
)

// Exit codes of check-config (and of the other commands).
const (
	exitOK       = agentcli.ExitOK
	exitParse    = agentcli.ExitParse
	exitSemantic = agentcli.ExitSemantic
)

func main() {
	if err := newApp(os.Stdout).Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "amphora-agent:", err)
		os.Exit(exitSemantic)
	}
}

// defaultConfig is the file Octavia's amphora agent reads, used when no
// --config-file is given; tests point it elsewhere.
var defaultConfig = oslocli.Default{Path: "/etc/octavia/amphora-agent.conf"}

func newApp(stdout io.Writer) *cli.App {
	app := &cli.App{
		Name:      "amphora-agent",
		Usage:     "program VPP's lb plugin, health-check members and send Octavia heartbeats",
		Writer:    stdout,
		ErrWriter: os.Stderr,
		Flags: append(append(oslocli.Flags(defaultConfig),
			&cli.BoolFlag{Name: "check", Usage: "validate the config and the LB description, print every problem and exit (0 valid, 1 parse error, 2 semantic error)"},
		), oslolog.Flags()...),
		// --version, then the config files, worked out once for every command; --check
		// is check-config as a flag, like the health manager's.
		Before: func(c *cli.Context) error {
			if err := oslocli.Before(c, defaultConfig); err != nil {
				return err
			}
			if !c.Bool("check") {
				return nil
			}
			if err := agentcli.CheckConfig(c); err != nil {
				return err
			}
			return cli.Exit("", exitOK)
		},
		DisableSliceFlagSeparator: true,
		Action:                    agentcli.Run,
		Commands: []*cli.Command{
			{Name: "run", Usage: "run the agent (the default)", Action: agentcli.Run},
			{Name: "check-config", Usage: "the same as --check", Action: agentcli.CheckConfig},
			{Name: "status", Usage: "print the running agent's status (exit 1 when faulty)", Action: agentcli.ShowStatus},
			{Name: "counters", Usage: "print the V3 counter file", Action: agentcli.ShowCounters},
			{Name: "marks", Usage: "list operator marks", Action: agentcli.ListMarks},
			markCommand("drain", "stop new flows to a member, a listener's members or all (flows kept)"),
			markCommand("maint", "remove a member, a listener's members or all from VPP (flows flushed)"),
			markCommand("up", "remove the mark of a target"),
			{
				Name:   "heartbeat",
				Usage:  "with --print, print the next heartbeat as JSON without sending it",
				Flags:  []cli.Flag{&cli.BoolFlag{Name: "print", Required: true, Usage: "print the next message"}},
				Action: agentcli.PrintHeartbeat,
			},
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

// markCommand declares drain, maint or up; --reason and --expires may
// also follow the target, which agentcli.Mark parses.
func markCommand(action, usage string) *cli.Command {
	flags := []cli.Flag{}
	if action != "up" {
		flags = append(flags,
			&cli.StringFlag{Name: "reason", Usage: "why (recorded in the spool file)"},
			&cli.StringFlag{Name: "expires", Usage: "lift the mark after `DURATION` (e.g. 2h); default never"},
		)
	}
	return &cli.Command{
		Name: action, Usage: usage, ArgsUsage: "<member-id|listener-id|all>", Flags: flags,
		Action: agentcli.Mark(action),
	}
}
