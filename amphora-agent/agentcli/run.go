package agentcli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/urfave/cli/v2"

	agent "github.com/octavia-vpp/health/amphora-agent"
	"github.com/octavia-vpp/health/internal/oslocli"
	"github.com/octavia-vpp/health/internal/oslolog"
	"github.com/octavia-vpp/health/vpp"
	"github.com/octavia-vpp/health/vpp/sim"
)

// newLogger is the agent's logger: oslo.log's [DEFAULT] options, the
// command-line flags over them.
func newLogger(c *cli.Context, cfg *agent.Config) (*oslolog.Logger, error) {
	l, err := oslolog.New(oslolog.FromCLI(c, "amphora-agent", cfg.Debug, cfg.Logging))
	if err != nil {
		return nil, cli.Exit("amphora-agent: "+err.Error(), ExitSemantic)
	}
	return l, nil
}

// Run runs the agent until SIGTERM or SIGINT, with its dataplane, its
// status API and SIGHUP reloads.
func Run(c *cli.Context) error {
	cfg, err := LoadConfig(c)
	if err != nil {
		return err
	}
	logger, err := newLogger(c, cfg)
	if err != nil {
		return err
	}
	defer logger.Close()
	slog.SetDefault(logger.Logger)
	log := logger.Logger
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	agent.ApplyGCPercent(cfg.GCPercent)
	go agent.RunMemoryLimit(ctx, cfg.MemoryLimitMiB, log)

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
			return cli.Exit("amphora-agent: vpp: "+err.Error(), ExitSemantic)
		}
		// Started once agent.New has handed it the counter file's bases:
		// a scrape before that would not continue the totals.
		runDP = func() { go g.Run(ctx) }
		dp = g
	}
	reg, err := NewRegistry(dp)
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
			return cli.Exit("amphora-agent: status API: "+err.Error(), ExitSemantic)
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
				// logrotate has moved the log file: the next lines go to
				// a new one.
				if err := logger.Reopen(); err != nil {
					log.Error("SIGHUP: log file not reopened", "reason", err.Error())
				}
				// The LB description first; then the controller list and
				// the heartbeat key, from the config files, if they still
				// validate.
				rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				if err := a.Reload(rctx); err != nil {
					log.Error("reload: lb description kept", "reason", err.Error())
				}
				cancel()
				if nc, err := agent.LoadConfig(oslocli.Files(c)...); err != nil {
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

// NewRegistry holds the Go and process collectors and the dataplane
// layer's metrics; agent.New registers the agent's own on it.
func NewRegistry(dp vpp.Dataplane) (*prometheus.Registry, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if err := vpp.RegisterMetrics(reg, dp); err != nil {
		return nil, fmt.Errorf("vpp metrics: %w", err)
	}
	return reg, nil
}
