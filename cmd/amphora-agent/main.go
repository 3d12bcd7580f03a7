// Command amphora-agent runs inside a VPP-based amphora: it programs VPP's
// lb plugin from the LB description, health-checks members and sends V3
// heartbeats. This file only wires flags to package agent.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/urfave/cli/v2"

	agent "github.com/octavia-vpp/health/amphora-agent"
	"github.com/octavia-vpp/health/internal/errwalk"
	"github.com/octavia-vpp/health/vpp"
	"github.com/octavia-vpp/health/vpp/sim"
)

// Exit codes of check-config (and of the other commands).
const (
	exitOK       = 0
	exitParse    = 1 // a file could not be parsed; also "faulty" for status
	exitSemantic = 2 // a file parsed but is not valid; also usage errors
)

func main() {
	if err := newApp(os.Stdout).Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "amphora-agent:", err)
		os.Exit(exitSemantic)
	}
}

func newApp(stdout io.Writer) *cli.App {
	return &cli.App{
		Name:      "amphora-agent",
		Usage:     "program VPP's lb plugin, health-check members and send Octavia heartbeats",
		Writer:    stdout,
		ErrWriter: os.Stderr,
		Flags: []cli.Flag{
			&cli.StringSliceFlag{
				Name:  "config-file",
				Value: cli.NewStringSlice("/etc/octavia/amphora-agent.conf"),
				Usage: "oslo-style config `PATH`; repeat it, later files override earlier ones",
			},
			&cli.StringFlag{Name: "log-format", Value: "text", Usage: "log as `FORMAT`: text or json"},
			&cli.BoolFlag{Name: "debug", Usage: "log at DEBUG level"},
			&cli.BoolFlag{Name: "check", Usage: "validate the config and the LB description, print every problem and exit (0 valid, 1 parse error, 2 semantic error)"},
		},
		// --check is check-config as a flag, like the health manager's.
		Before: func(c *cli.Context) error {
			if !c.Bool("check") {
				return nil
			}
			if err := checkConfig(c); err != nil {
				return err
			}
			return cli.Exit("", exitOK)
		},
		DisableSliceFlagSeparator: true,
		Action:                    runAgent,
		Commands: []*cli.Command{
			{Name: "run", Usage: "run the agent (the default)", Action: runAgent},
			{Name: "check-config", Usage: "the same as --check", Action: checkConfig},
			{Name: "status", Usage: "print the running agent's status (exit 1 when faulty)", Action: showStatus},
			{Name: "counters", Usage: "print the V3 counter file", Action: showCounters},
			{Name: "marks", Usage: "list operator marks", Action: listMarks},
			markCommand("drain", "stop new flows to a member, a listener's members or all (flows kept)"),
			markCommand("maint", "remove a member, a listener's members or all from VPP (flows flushed)"),
			markCommand("up", "remove the mark of a target"),
			{
				Name:  "heartbeat",
				Usage: "with --print, print the next heartbeat as JSON without sending it",
				Flags: []cli.Flag{&cli.BoolFlag{Name: "print", Required: true, Usage: "print the next message"}},
				Action: func(c *cli.Context) error {
					cfg, err := loadConfig(c)
					if err != nil {
						return err
					}
					return httpGet(c, cfg, "/heartbeat", func(code int, body []byte) error {
						if code != http.StatusOK {
							return cli.Exit(strings.TrimSpace(string(body)), exitParse)
						}
						_, err := c.App.Writer.Write(body)
						return err
					})
				},
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
}

func newLogger(c *cli.Context) *slog.Logger {
	lvl := slog.LevelInfo
	if c.Bool("debug") {
		lvl = slog.LevelDebug
	}
	opts := &slog.HandlerOptions{Level: lvl}
	if c.String("log-format") == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

func loadConfig(c *cli.Context) (*agent.Config, error) {
	cfg, err := agent.LoadConfig(c.StringSlice("config-file")...)
	if err != nil {
		return nil, cli.Exit("amphora-agent: config: "+err.Error(), exitSemantic)
	}
	return cfg, nil
}

// checkConfig validates the config files and the LB description they
// name, printing every problem found: exit 1 when a file cannot be read
// or parsed, 2 when the files parse but something in them is invalid.
func checkConfig(c *cli.Context) error {
	var lines []string
	code := exitOK
	report := func(prefix string, err error, parse bool) {
		for _, p := range flatten(err) {
			lines = append(lines, "amphora-agent: "+prefix+p)
		}
		if parse {
			code = exitParse
		} else if code == exitOK {
			code = exitSemantic
		}
	}
	cfg, err := agent.LoadConfig(c.StringSlice("config-file")...)
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
		if code == exitOK {
			code = exitSemantic
		}
	case err != nil:
		report(lbFile+": ", err, true)
	}
	if code != exitOK {
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

func runAgent(c *cli.Context) error {
	log := newLogger(c)
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	var dp vpp.Dataplane
	runDP := func() {}
	switch cfg.VPP.Dataplane {
	case "sim":
		dp = sim.New(sim.Config{Logger: log})
	default:
		var stats vpp.StatsDialer
		if cfg.VPP.StatsSocket != "" {
			stats = vpp.StatsSocketDialer(cfg.VPP.StatsSocket)
		}
		g, err := vpp.NewGovpp(vpp.GovppConfig{APISocket: cfg.VPP.APISocket, Stats: stats, Logger: log})
		if err != nil {
			return cli.Exit("amphora-agent: vpp: "+err.Error(), exitSemantic)
		}
		// Started once agent.New has handed it the counter file's bases:
		// a scrape before that would not continue the totals.
		runDP = func() { go g.Run(ctx) }
		dp = g
	}
	reg, err := newRegistry(dp)
	if err != nil {
		return err
	}
	a, err := agent.New(agent.Options{Config: cfg, Dataplane: dp, Logger: log, Registry: reg})
	if err != nil {
		return err
	}
	runDP()
	if cfg.StatusBind != "" {
		ln, err := net.Listen("tcp", cfg.StatusBind)
		if err != nil {
			return cli.Exit("amphora-agent: status API: "+err.Error(), exitSemantic)
		}
		srv := &http.Server{
			Handler:           agent.NewAPI(agent.APIConfig{Agent: a, Gatherer: reg, AllowRemoteMarks: cfg.AllowRemoteMarks}),
			ReadHeaderTimeout: 5 * time.Second,
		}
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("status API stopped", "reason", err.Error())
			}
		}()
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
		}()
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				// The LB description first; then the controller list and
				// the heartbeat key, from the config files, if they still
				// validate.
				rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				if err := a.Reload(rctx); err != nil {
					log.Error("reload: lb description kept", "reason", err.Error())
				}
				cancel()
				if nc, err := agent.LoadConfig(c.StringSlice("config-file")...); err != nil {
					log.Error("reload: config file rejected", "reason", err.Error())
				} else {
					if err := a.SetControllers(nc.Controllers); err != nil {
						log.Error("reload: bad controller entries", "reason", err.Error())
					}
					if err := a.SetHeartbeatKey(nc.HeartbeatKey); err != nil {
						log.Error("reload: heartbeat key", "reason", err.Error())
					}
				}
			}
		}
	}()
	return a.Run(ctx)
}

// newRegistry holds the Go and process collectors and the dataplane
// layer's metrics; agent.New registers the agent's own on it.
func newRegistry(dp vpp.Dataplane) (*prometheus.Registry, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if err := vpp.RegisterMetrics(reg, dp); err != nil {
		return nil, fmt.Errorf("vpp metrics: %w", err)
	}
	return reg, nil
}

// httpGet calls the running agent's local API.
func httpGet(c *cli.Context, cfg *agent.Config, path string, f func(int, []byte) error) error {
	if cfg.StatusBind == "" {
		return cli.Exit("amphora-agent: the status API is disabled ([amphora_agent] status_bind is empty)", exitSemantic)
	}
	ctx, cancel := context.WithTimeout(c.Context, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+cfg.StatusBind+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return cli.Exit("amphora-agent: is the agent running? "+err.Error(), exitParse)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	return f(resp.StatusCode, body)
}

func showStatus(c *cli.Context) error {
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	return httpGet(c, cfg, "/status", func(code int, body []byte) error {
		var st agent.Status
		if err := json.Unmarshal(body, &st); err != nil {
			return fmt.Errorf("status: %w", err)
		}
		w := c.App.Writer
		h := "healthy"
		if !st.Health.Healthy {
			h = "faulty: " + st.Health.Reason
		}
		fmt.Fprintf(w, "amphora %s: %s (vpp connected=%v generation=%d, warm=%v)\n", st.AmphoraID, h, st.VPP.Connected, st.VPP.Generation, st.Warm)
		if st.Health.LBConfigRejected != "" {
			fmt.Fprintf(w, "lb description rejected: %s\n", st.Health.LBConfigRejected)
		}
		if st.ListenersLeftOut {
			fmt.Fprintln(w, "heartbeats leave the listeners out: vpp unreachable past vpp_unreachable_limit")
		}
		for _, l := range st.Listeners {
			fmt.Fprintf(w, "listener %s %s vips=%s pool=%s %s\n", l.ID, l.State, strings.Join(l.VIPs, ","), l.PoolID, l.PoolStatus)
		}
		for _, m := range st.Members {
			fmt.Fprintf(w, "  member %s %s %q weight=%d in_vpp=%v", m.ID, m.Address, m.Status, m.Weight, m.InVPP)
			if m.Mark != "" {
				fmt.Fprintf(w, " mark=%s", m.Mark)
			}
			if m.LastError != "" {
				fmt.Fprintf(w, " last_error=%q", m.LastError)
			}
			fmt.Fprintln(w)
		}
		for _, ctl := range st.Controllers {
			fmt.Fprintf(w, "controller %s score=%d sent=%d errors=%d\n", ctl.Entry, ctl.Score, ctl.Sent, ctl.Errors)
		}
		if !st.Health.Healthy {
			return cli.Exit("", exitParse)
		}
		return nil
	})
}

func showCounters(c *cli.Context) error {
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	counters, err := agent.LoadCounters(cfg.CounterFile())
	if err != nil {
		return cli.Exit("amphora-agent: "+err.Error(), exitParse)
	}
	ids := make([]string, 0, len(counters))
	for id := range counters {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	fmt.Fprintf(c.App.Writer, "%-36s %14s %14s %10s %10s\n", "listener", "bin", "bout", "stot", "ereq")
	for _, id := range ids {
		s := counters[id]
		fmt.Fprintf(c.App.Writer, "%-36s %14d %14d %10d %10d\n", id, s.Bin, s.Bout, s.Stot, s.EReq)
	}
	return nil
}

func listMarks(c *cli.Context) error {
	cfg, err := loadConfig(c)
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
		Action: func(c *cli.Context) error {
			target, reason, expires, err := markArgs(c)
			if err != nil {
				return cli.Exit("amphora-agent "+action+": "+err.Error(), exitSemantic)
			}
			cfg, err := loadConfig(c)
			if err != nil {
				return err
			}
			m, err := agent.ApplyMark(agent.Spool{Dir: cfg.SpoolDir}, agent.MarkRequest{
				Action: action, Target: target, Reason: reason, Expires: expires,
			}, time.Now())
			if err != nil {
				return cli.Exit("amphora-agent "+action+": "+err.Error(), exitSemantic)
			}
			if action == "up" {
				fmt.Fprintf(c.App.Writer, "%s: mark removed\n", m.Target)
			} else {
				fmt.Fprintf(c.App.Writer, "%s: %s\n", m.Target, m.Kind)
			}
			return nil
		},
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
