package agent

import (
	"github.com/octavia-vpp/health/heartbeat/udp"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the agent's own Prometheus metrics (the dataplane layer
// registers its own with vpp.RegisterMetrics).
type metrics struct {
	sent                *prometheus.CounterVec
	sendErrors          *prometheus.CounterVec
	probes              *prometheus.CounterVec
	memberTransitions   *prometheus.CounterVec
	listenerTransitions *prometheus.CounterVec
	reloads             *prometheus.CounterVec
	syncs               *prometheus.CounterVec
	statsLost           *prometheus.CounterVec
	healthy             prometheus.Gauge
}

func newMetrics(a *Agent) *metrics {
	m := &metrics{
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "amphora_agent_heartbeats_sent_total", Help: "Heartbeats handed to the kernel, per controller entry.",
		}, []string{"controller"}),
		sendErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "amphora_agent_heartbeat_send_errors_total", Help: "Heartbeats not sent, by reason (send, too_large).",
		}, []string{"reason"}),
		probes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "amphora_agent_probes_total", Help: "Member health probes, by monitor type and result.",
		}, []string{"type", "result"}),
		memberTransitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "amphora_agent_member_transitions_total", Help: "Members that changed between up and down.",
		}, []string{"to"}),
		listenerTransitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "amphora_agent_listener_transitions_total", Help: "Listener aggregate state changes.",
		}, []string{"to"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "amphora_agent_lb_config_loads_total", Help: "LB description loads, by result (ok, invalid).",
		}, []string{"result"}),
		syncs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "amphora_agent_vip_syncs_total", Help: "VIP reconciliations, by result.",
		}, []string{"result"}),
		statsLost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "amphora_agent_stats_baselines_total",
			Help: "VIPs whose counters were taken as a new baseline without reporting the deltas since the last heartbeat, by reason (old_file, corrupt, no_file, backwards).",
		}, []string{"reason"}),
		healthy: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "amphora_agent_healthy", Help: "1 while the agent judges itself healthy.",
		}),
	}
	// Every label value known in advance starts at zero, so that rate()
	// answers before the first event.
	m.controllers(a.cfg.Controllers)
	for _, typ := range []string{MonitorTCP, MonitorHTTP, MonitorHTTPS, MonitorTLSHello, MonitorUDPConnect, MonitorPing} {
		for _, r := range []string{"pass", "fail"} {
			m.probes.WithLabelValues(typ, r)
		}
	}
	for _, to := range []string{"up", "down"} {
		m.memberTransitions.WithLabelValues(to)
	}
	for _, s := range []ListenerState{ListenerUp, ListenerDown, ListenerUnknown} {
		m.listenerTransitions.WithLabelValues(s.String())
	}
	for _, r := range []string{"ok", "error"} {
		m.syncs.WithLabelValues(r)
	}
	for _, r := range []string{"send", "too_large"} {
		m.sendErrors.WithLabelValues(r)
	}
	for _, r := range []string{"ok", "invalid"} {
		m.reloads.WithLabelValues(r)
	}
	for _, r := range []string{LossOldFile, LossCorrupt, LossNoFile, LossBackwards} {
		m.statsLost.WithLabelValues(r)
	}
	return m
}

// controllers starts the per-controller counter of each valid entry at
// zero, under the name the sender reports it by.
func (m *metrics) controllers(entries []string) {
	for _, e := range entries {
		if c, err := udp.ParseController(e); err == nil {
			m.sent.WithLabelValues(c.Entry)
		}
	}
}

func (m *metrics) register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.sent, m.sendErrors, m.probes, m.memberTransitions,
		m.listenerTransitions, m.reloads, m.syncs, m.statsLost, m.healthy} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

func (m *metrics) setHealthy(ok bool) {
	if ok {
		m.healthy.Set(1)
	} else {
		m.healthy.Set(0)
	}
}
