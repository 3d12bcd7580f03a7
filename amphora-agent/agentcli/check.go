// Package agentcli holds the actions of the amphora-agent command: running
// the agent, checking its files, and the operator commands that read the
// running agent's state (status, counters, marks, heartbeat --print).
// cmd/amphora-agent only declares the flags and commands and calls these.
package agentcli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	agent "github.com/octavia-vpp/health/amphora-agent"
	"github.com/octavia-vpp/health/internal/errwalk"
	"github.com/octavia-vpp/health/internal/oslocli"
)

// Exit codes of check-config (and of the other commands).
const (
	ExitOK       = 0
	ExitParse    = 1 // a file could not be parsed; also "faulty" for status
	ExitSemantic = 2 // a file parsed but is not valid; also usage errors
)

// LoadConfig reads the files of --config-file; an error is a cli.Exit
// with ExitSemantic.
func LoadConfig(c *cli.Context) (*agent.Config, error) {
	cfg, err := agent.LoadConfig(oslocli.Files(c)...)
	if err != nil {
		return nil, cli.Exit("amphora-agent: config: "+err.Error(), ExitSemantic)
	}
	return cfg, nil
}

// CheckConfig validates the config files and the LB description they
// name, printing every problem found: exit 1 when a file cannot be read
// or parsed, 2 when the files parse but something in them is invalid.
func CheckConfig(c *cli.Context) error {
	var lines []string
	code := ExitOK
	report := func(prefix string, err error, parse bool) {
		for _, p := range flatten(err) {
			lines = append(lines, "amphora-agent: "+prefix+p)
		}
		if parse {
			code = ExitParse
		} else if code == ExitOK {
			code = ExitSemantic
		}
	}
	cfg, err := agent.LoadConfig(oslocli.Files(c)...)
	if cfg == nil {
		report("config: ", err, true)
		return checkFailed(lines, code)
	}
	if err != nil {
		report("config: ", err, false)
	}
	lbFile := cfg.VPP.LBConfigFile
	lb, err := agent.LoadLB(lbFile, cfg.VPP.Encap)
	var se *agent.SemanticError
	switch {
	case errors.As(err, &se):
		for _, p := range se.Problems {
			lines = append(lines, "amphora-agent: "+lbFile+": "+p)
		}
		if code == ExitOK {
			code = ExitSemantic
		}
	case err != nil:
		report(lbFile+": ", err, true)
	}
	if code != ExitOK {
		return checkFailed(lines, code)
	}
	fmt.Fprintf(c.App.Writer, "ok: amphora %s, load balancer %s, %d listeners, %d pools\n",
		cfg.AmphoraID, lb.ID, len(lb.Listeners), len(lb.Pools))
	return nil
}

func checkFailed(lines []string, code int) error {
	lines = append(lines, fmt.Sprintf("amphora-agent: %d problem(s) found", len(lines)))
	return cli.Exit(strings.Join(lines, "\n"), code)
}

// flatten lists the messages of the errors an errors.Join holds.
func flatten(err error) []string {
	var out []string
	for _, e := range errwalk.Leaves(err) {
		out = append(out, e.Error())
	}
	return out
}
