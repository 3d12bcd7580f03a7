package manager

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/octavia-vpp/health/healthdb"
	"github.com/octavia-vpp/health/healthdb/pgstore"
	"github.com/octavia-vpp/health/healthdb/shadow"
	"github.com/octavia-vpp/health/heartbeat"
	"github.com/octavia-vpp/health/internal/boundq"
	"github.com/octavia-vpp/health/internal/octaviaconf"
	"github.com/octavia-vpp/health/statsdriver"
)

// Shadow mode ([health_manager] shadow, docs/shadow.md): heartbeats are
// received and verified as serve does, then decided on by healthdb/shadow
// against a read-only database instead of the updater; the watcher, the
// compute deletes and the statistics drivers are not built.

// DefaultShadowFileName is the disagreement file's name when
// [health_manager] shadow_disagreement_file is unset.
const DefaultShadowFileName = "shadow-disagreements.jsonl"

// ShadowDisagreementFile is where shadow mode keeps its disagreements:
// [health_manager] shadow_disagreement_file, or DefaultShadowFileName in
// systemd's $STATE_DIRECTORY when set, else in /var/lib/octavia (the
// octavia user's home, which the packages create).
func ShadowDisagreementFile(cfg *octaviaconf.Config) string {
	if f := cfg.HealthManager.ShadowDisagreementFile; f != "" {
		return f
	}
	dir := "/var/lib/octavia"
	if d, _, _ := strings.Cut(os.Getenv("STATE_DIRECTORY"), ":"); d != "" {
		dir = d
	}
	return filepath.Join(dir, DefaultShadowFileName)
}

// Shadow is the shadow of a manager in shadow mode, nil otherwise.
func (m *Manager) Shadow() *shadow.Shadow { return m.shadow }

// lastUpdateResolution is the precision of amphora_health.last_update:
// whole seconds on MySQL and MariaDB, where Octavia's column is a DATETIME.
func (m *Manager) lastUpdateResolution() time.Duration {
	if m.opts.Stores != nil && m.opts.Stores.StatsDialect == statsdriver.MySQL {
		return time.Second
	}
	return 0
}

func (m *Manager) buildShadow(cfg *octaviaconf.Config) error {
	hm := &cfg.HealthManager
	m.observer = healthdb.NewObserver(time.Now(), hm.HeartbeatTimeout)
	reader := m.shadowReader()
	var err error
	m.shadow, err = shadow.New(shadow.Config{
		LastUpdateResolution: m.lastUpdateResolution(),
		Reader:               reader,
		Rules:                healthdb.Rules{HeartbeatInterval: hm.HeartbeatInterval},
		Failover: shadow.FailoverRules{HeartbeatTimeout: hm.HeartbeatTimeout, HealthCheckInterval: hm.HealthCheckInterval,
			Threshold: hm.FailoverThreshold, ThresholdSet: hm.FailoverThresholdSet},
		Decide:  m.opts.ShadowDecide,
		File:    ShadowDisagreementFile(cfg),
		Metrics: m.shadowMetrics, Logger: m.log,
	})
	if err != nil {
		return err
	}
	m.shadowQ = boundq.New[shadow.Heartbeat](hm.QueueSize)
	m.page.SetShadow(m.shadow)
	m.log.Warn("shadow mode: nothing is written, claimed, failed over or deleted; decisions are compared with the database",
		"disagreement_file", ShadowDisagreementFile(cfg))
	return nil
}

// shadowReader is Options.Stores' Shadow reader, or the database's.
func (m *Manager) shadowReader() shadow.Reader {
	if s := m.opts.Stores; s != nil {
		return s.Shadow
	}
	return pgstore.New(m.pool)
}

// shadowDatagram queues a verified heartbeat, with its datagram, for the
// shadow.
func (m *Manager) shadowDatagram(msg *heartbeat.Message, data []byte, from netip.AddrPort) {
	hb := shadow.Heartbeat{Msg: msg, Datagram: append([]byte(nil), data...), From: from}
	if n := len(m.shadowQ.Put(hb)); n > 0 {
		m.metrics.Dropped.WithLabelValues("health", "queue_full").Add(float64(n))
	}
}

// statisticsDrivers are the drivers statistics go to: none in shadow mode.
func statisticsDrivers(cfg *octaviaconf.Config) []string {
	if cfg.HealthManager.Shadow {
		return nil
	}
	return cfg.ControllerWorker.StatisticsDrivers
}

// rawHook is the receiver's Raw hook: the shadow's queue in shadow mode.
func (m *Manager) rawHook(shadowMode bool) func(*heartbeat.Message, []byte, netip.AddrPort) {
	if !shadowMode {
		return nil
	}
	return m.shadowDatagram
}
