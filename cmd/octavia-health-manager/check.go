package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/octavia-vpp/health/healthdb/manager"
	"github.com/octavia-vpp/health/internal/octaviaconf"
	"github.com/octavia-vpp/health/internal/oslolog"
)

// Exit codes of --check.
const (
	checkOK       = 0
	checkParse    = 1 // a file could not be read or is not valid INI
	checkSemantic = 2 // the files parse but a value is bad or serve would refuse to start
)

// checkFlag is the global --check flag.
var checkFlag = &cli.BoolFlag{
	Name:  "check",
	Usage: "validate the --config-file files, print every problem and exit (0 valid, 1 parse error, 2 semantic error)",
}

// runCheck validates the config files as serve would read them, printing
// every problem found to errOut; it returns the exit code.
func runCheck(files []string, out, errOut io.Writer) int {
	// Warnings (unknown [health_manager] options, deprecated names) are
	// worth seeing during a check; they do not change the exit code.
	log := slog.New(slog.NewTextHandler(errOut, &slog.HandlerOptions{Level: slog.LevelWarn, ReplaceAttr: oslolog.ReplaceLevel}))
	if len(files) == 0 {
		fmt.Fprintln(errOut, "octavia-health-manager: --check: no config file: give --config-file or --config-dir, or create "+defaultConfigPath)
		return checkParse
	}
	cfg, err := octaviaconf.Check(log, files...)
	problems := octaviaconf.Problems(err)
	if cfg == nil {
		printProblems(errOut, problems)
		return checkParse
	}
	problems = append(problems, manager.StartupProblems(cfg, badOptions(problems))...)
	if len(problems) > 0 {
		printProblems(errOut, problems)
		return checkSemantic
	}
	fmt.Fprintf(out, "ok: %s (listen %s:%d, failover_driver %s, statistics_drivers %s)\n",
		strings.Join(files, ", "), cfg.HealthManager.BindIP, cfg.HealthManager.BindPort,
		cfg.HealthManager.FailoverDriver, strings.Join(cfg.ControllerWorker.StatisticsDrivers, ","))
	return checkOK
}

func printProblems(w io.Writer, problems []error) {
	for _, p := range problems {
		fmt.Fprintln(w, "octavia-health-manager: "+strings.TrimPrefix(p.Error(), "octavia-health-manager: "))
	}
	fmt.Fprintf(w, "octavia-health-manager: %d problem(s) found\n", len(problems))
}

// badOptions names ("section option") the options whose values were
// refused while loading: they hold defaults, which the start-up checks
// must not report a second time ("connection is not set" after "mysql is
// not supported").
func badOptions(problems []error) map[string]bool {
	bad := map[string]bool{}
	for _, p := range problems {
		var oe *octaviaconf.OptionError
		if errors.As(p, &oe) {
			bad[oe.Section+" "+oe.Option] = true
		}
	}
	return bad
}
