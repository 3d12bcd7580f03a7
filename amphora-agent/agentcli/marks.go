package agentcli

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	agent "github.com/octavia-vpp/health/amphora-agent"
)

// ListMarks prints the operator marks of the spool directory.
func ListMarks(c *cli.Context) error {
	cfg, err := LoadConfig(c)
	if err != nil {
		return err
	}
	marks, err := agent.Spool{Dir: cfg.SpoolDir}.List(time.Now())
	if err != nil {
		fmt.Fprintln(os.Stderr, "amphora-agent: warning:", err)
	}
	for _, m := range marks {
		exp := "never"
		if !m.Expires.IsZero() {
			exp = m.Expires.Format(time.RFC3339)
		}
		fmt.Fprintf(c.App.Writer, "%s %s created=%s expires=%s reason=%q\n", m.Target, m.Kind, m.Created.Format(time.RFC3339), exp, m.Reason)
	}
	return nil
}

// Mark returns the action of the mark command named action (drain,
// maint or up): it writes or removes the target's mark in the spool.
func Mark(action string) cli.ActionFunc {
	return func(c *cli.Context) error {
		target, reason, expires, err := markArgs(c)
		if err != nil {
			return cli.Exit("amphora-agent "+action+": "+err.Error(), ExitSemantic)
		}
		cfg, err := LoadConfig(c)
		if err != nil {
			return err
		}
		m, err := agent.ApplyMark(agent.Spool{Dir: cfg.SpoolDir}, agent.MarkRequest{
			Action: action, Target: target, Reason: reason, Expires: expires,
		}, time.Now())
		if err != nil {
			return cli.Exit("amphora-agent "+action+": "+err.Error(), ExitSemantic)
		}
		if action == "up" {
			fmt.Fprintf(c.App.Writer, "%s: mark removed\n", m.Target)
		} else {
			fmt.Fprintf(c.App.Writer, "%s: %s\n", m.Target, m.Kind)
		}
		return nil
	}
}

// markArgs takes the target and also accepts --reason and --expires after
// it ("drain m1 --reason R"), which urfave/cli leaves in the arguments.
func markArgs(c *cli.Context) (target, reason, expires string, err error) {
	reason, expires = c.String("reason"), c.String("expires")
	args := c.Args().Slice()
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		switch {
		case !strings.HasPrefix(a, "-"):
			if target != "" {
				return "", "", "", fmt.Errorf("want exactly one target, got %q and %q", target, a)
			}
			target = a
			continue
		case name != "reason" && name != "expires":
			return "", "", "", fmt.Errorf("unknown flag %s", a)
		case !hasVal:
			if i+1 >= len(args) {
				return "", "", "", fmt.Errorf("flag %s needs a value", a)
			}
			i++
			val = args[i]
		}
		if name == "reason" {
			reason = val
		} else {
			expires = val
		}
	}
	if target == "" {
		return "", "", "", errors.New("want a target: a member id, a listener id or all")
	}
	return target, reason, expires, nil
}
