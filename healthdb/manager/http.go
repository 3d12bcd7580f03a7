package manager

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/octavia-vpp/health/healthdb/failover"
	"github.com/octavia-vpp/health/healthdb/manager/statuspage"
	"github.com/octavia-vpp/health/internal/octaviaconf"
)

// newRegistry is the registry behind /metrics, with the Go and process
// collectors and octavia_hm_build_info.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(buildInfo())
	return reg
}

// registerGauges exports the queues' lengths and the replay guard's size.
func (m *Manager) registerGauges() {
	for name, length := range map[string]func() int{"receive": m.receiver.QueueLen, "health": m.healthQ.Len, "stats": m.statsQ.Len} {
		m.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "octavia_hm_queue_length", Help: "Work waiting in each queue.", ConstLabels: prometheus.Labels{"queue": name},
		}, func() float64 { return float64(length()) }))
	}
	m.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "octavia_hm_replay_guard_amphorae", Help: "Amphorae whose last accepted (boot, seq) the replay guard remembers.",
	}, func() float64 { return float64(m.replay.Len()) }))
}

// listenHTTP serves /metrics, /livez, /readyz (alias /healthz) and the
// status page on
// metrics_bind; an empty address turns them off.
func (m *Manager) listenHTTP(addr string) error {
	if addr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("[health_manager] metrics_bind %s: %v", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("/livez", m.livez)
	mux.HandleFunc("/readyz", m.readyz)
	mux.HandleFunc("/healthz", m.readyz) // the name earlier versions served

	m.page.Register(mux)
	m.http = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	m.httpAddr = ln.Addr()
	go func() {
		if err := m.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.log.Error("metrics server stopped", "err", err)
		}
	}()
	return nil
}

func (m *Manager) stopHTTP() {
	for _, srv := range []*http.Server{m.http, m.pprof} {
		if srv == nil {
			continue
		}
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = srv.Shutdown(shutdownCtx)
		cancel()
	}
}

// statusPage is the web page on metrics_bind. It reads the metrics
// registered through its Watch and records the transitions and failovers
// the manager hands it.
func statusPage(cfg *octaviaconf.Config, pool *pgxpool.Pool, log *slog.Logger) *statuspage.Page {
	hm := &cfg.HealthManager
	threshold := 0
	if hm.FailoverThresholdSet {
		threshold = hm.FailoverThreshold
	}
	return statuspage.New(statuspage.Config{
		Pool: pool, HeartbeatTimeout: hm.HeartbeatTimeout,
		FailoverThreshold: threshold, DryRun: hm.FailoverDriver == failover.DriverNoop, Logger: log,
	})
}

func buildInfo() prometheus.Collector {
	version, goVersion := "(devel)", ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		goVersion = bi.GoVersion
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "octavia_hm_build_info", Help: "Build information; always 1.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": goVersion},
	})
	g.Set(1)
	return g
}
