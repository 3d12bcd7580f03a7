package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/octavia-vpp/health/healthdb/failover"
	"github.com/octavia-vpp/health/internal/octaviaconf"
	"github.com/octavia-vpp/health/statsdriver"
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
	log := slog.New(slog.NewTextHandler(errOut, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if len(files) == 0 {
		fmt.Fprintln(errOut, "octavia-health-manager: --check: no --config-file given")
		return checkParse
	}
	cfg, err := octaviaconf.Check(log, files...)
	problems := octaviaconf.Problems(err)
	if cfg == nil {
		printProblems(errOut, problems)
		return checkParse
	}
	problems = append(problems, serveProblems(cfg, badOptions(problems))...)
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

// serveProblems runs, without binding sockets or connecting anywhere, the
// start-up checks serve runs on a configuration that loaded, and returns
// every refusal. It calls the functions serve calls, so the two cannot
// disagree.
func serveProblems(cfg *octaviaconf.Config, bad map[string]bool) []error {
	var problems []error
	add := func(err error) {
		if err != nil {
			problems = append(problems, err)
		}
	}
	if !bad["health_manager heartbeat_key"] && !bad["health_manager heartbeat_key_previous"] {
		_, _, err := buildKeyring(cfg)
		add(err)
	}
	if !bad["database connection"] {
		if pool, err := newPool(context.Background(), cfg, 1); err != nil {
			add(err)
		} else {
			pool.Close()
		}
	}

	hm := &cfg.HealthManager
	add(failover.CheckDriverName(hm.FailoverDriver))
	session, err := openstackSession(cfg)
	add(err)
	if err == nil {
		// computeDeleter needs the session to judge compute_nova_driver;
		// without one, openstackSession has already said what is missing.
		_, err = computeDeleter(cfg, session, slog.New(slog.DiscardHandler))
		add(err)
	}

	// serve refuses an unknown statistics driver (statsdriver.Open, where
	// Octavia only warns); the names are checked here without opening the
	// drivers, which would need a pool and a registry.
	known := statsdriver.Names()
	for _, name := range cfg.ControllerWorker.StatisticsDrivers {
		if !slices.Contains(known, name) {
			add(fmt.Errorf("[controller_worker] statistics_drivers: %w %q (known: %s)",
				statsdriver.ErrUnknownDriver, name, strings.Join(known, ", ")))
		}
	}
	// serve would fail to listen on a malformed address; whether the
	// address is free can only be known by binding it.
	if hm.MetricsBind != "" {
		if _, _, err := net.SplitHostPort(hm.MetricsBind); err != nil {
			add(fmt.Errorf("[health_manager] metrics_bind %q: %w", hm.MetricsBind, err))
		}
	}
	return problems
}
