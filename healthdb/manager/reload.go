package manager

import (
	"fmt"
	"log/slog"

	"github.com/octavia-vpp/health/internal/octaviaconf"
	"github.com/prometheus/client_golang/prometheus"
)

// keyState remembers the configured keys, to tell on reload what changed
// without ever printing a key.
type keyState struct {
	primary  string
	previous []string
}

func keyStateOf(cfg *octaviaconf.Config) keyState {
	return keyState{primary: cfg.HealthManager.HeartbeatKey, previous: cfg.HealthManager.HeartbeatKeyPrevious}
}

func (m *Manager) setLevel(cfg *octaviaconf.Config) {
	if cfg.Default.Debug {
		m.level.Set(slog.LevelDebug)
	} else {
		m.level.Set(slog.LevelInfo)
	}
}

// reloadConfig re-reads the configuration (SIGHUP). Keys (with
// strict_heartbeats, which the keyring applies), the replay
// window, the statistics drivers and the log level change in place; the
// socket is kept. An invalid configuration changes nothing.
func (m *Manager) reloadConfig() {
	if m.opts.Load == nil {
		m.log.Warn("reload asked for, but the manager was given no configuration to read again")
		m.reloads.WithLabelValues(reloadFailure).Inc()
		return
	}
	failed := func(err error) {
		m.log.Error("reload failed; keeping the running configuration", "err", err)
		m.reloads.WithLabelValues(reloadFailure).Inc()
	}
	cfg, err := m.opts.Load()
	if err != nil {
		failed(err)
		return
	}
	kr, err := newDaemonKeyring(cfg)
	if err != nil {
		failed(err)
		return
	}
	if err := m.stats.SetDrivers(statisticsDrivers(cfg)); err != nil {
		failed(err)
		return
	}
	m.reloads.WithLabelValues(reloadSuccess).Inc()
	m.setLevel(cfg)
	ks := keyStateOf(cfg)
	primaryChanged := ks.primary != m.keyState.primary
	previousChanged := fmt.Sprint(ks.previous) != fmt.Sprint(m.keyState.previous)
	m.keys.Store(kr)
	m.keyState = ks
	m.replay.SetWindow(cfg.HealthManager.ReplayWindow)
	m.log.Info("configuration reloaded", "primary_key_changed", primaryChanged,
		"previous_keys_changed", previousChanged, "previous_keys", len(ks.previous), "debug", cfg.Default.Debug,
		"statistics_drivers", cfg.ControllerWorker.StatisticsDrivers, "replay_window", m.replay.Window())
}

// Results of a reload (the result label of octavia_hm_config_reloads_total).
const (
	reloadSuccess = "success"
	reloadFailure = "failure"
)

func newReloadCounter(reg prometheus.Registerer) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "octavia_hm_config_reloads_total",
		Help: "Configuration reloads (SIGHUP), by result: success, or failure (the running configuration is kept).",
	}, []string{"result"})
	c.WithLabelValues(reloadSuccess)
	c.WithLabelValues(reloadFailure)
	reg.MustRegister(c)
	return c
}
