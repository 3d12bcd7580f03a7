package agentcli

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	agent "github.com/octavia-vpp/health/amphora-agent"
	"github.com/octavia-vpp/health/internal/testproc"
	"github.com/octavia-vpp/health/vpp"
	"github.com/octavia-vpp/health/vpp/sim"
)

// recordingRegisterer remembers the collectors registered through it, so
// that metric families nothing has observed yet are listed too.
type recordingRegisterer struct {
	prometheus.Registerer
	collectors []prometheus.Collector
}

func (r *recordingRegisterer) Register(c prometheus.Collector) error {
	r.collectors = append(r.collectors, c)
	return r.Registerer.Register(c)
}

var descName = regexp.MustCompile(`fqName: "([^"]+)"`)

// simConfig writes a config for the simulated dataplane and a one-member
// LB description, and returns the config's path.
func simConfig(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	lb := `{"loadbalancer_id": "lb", "vip_addresses": ["192.0.2.10"],
 "listeners": [{"id": "l1", "protocol": "TCP", "protocol_port": 80, "default_pool_id": "p1"}],
 "pools": [{"id": "p1", "members": [{"id": "m1", "address": "10.0.0.1", "protocol_port": 80}]}]}`
	lbPath := filepath.Join(dir, "lb.json")
	if err := os.WriteFile(lbPath, []byte(lb), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "amphora-agent.conf")
	body := "[amphora_agent]\namphora_id = amp\nstatus_bind = \n" +
		"[health_manager]\nheartbeat_key = k\ncontroller_ip_port_list = 127.0.0.1:9\nheartbeat_interval = 0.05\n" +
		"[haproxy_amphora]\nbase_path = " + dir + "\n[vpp]\ndataplane = sim\nlb_config_file = " + lbPath +
		"\nstartup_min_delay = 0\nstartup_max_delay = 1\n"
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return conf
}

// TestMetricNamesGolden lists every amphora_agent_ metric family the
// agent exports, with its type, in the program's
// cmd/amphora-agent/testdata/metric-names.golden (regenerate with
// UPDATE_GOLDEN=1); the alert rules and the dashboard in etc/ are checked
// against it.
func TestMetricNamesGolden(t *testing.T) {
	conf := simConfig(t)
	cfg, err := agent.LoadConfig(conf)
	if err != nil {
		t.Fatal(err)
	}
	dp := sim.New(sim.Config{})
	reg, err := NewRegistry(dp)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recordingRegisterer{Registerer: reg}
	// The dataplane collector is registered by NewRegistry; describe a
	// second one (on a throwaway registry) to list the families it has no
	// sample for yet.

	a, err := agent.New(agent.Options{Config: cfg, Dataplane: dp, Logger: slog.New(slog.DiscardHandler), Registry: rec, Tick: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- a.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for a.Sensor().Record().LastSend.IsZero() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	families, err := reg.Gather()
	cancel()
	<-done
	if err != nil {
		t.Fatal(err)
	}

	types := map[string]string{}
	for _, f := range families {
		types[f.GetName()] = strings.ToLower(f.GetType().String())
	}
	// A family nothing has observed yet is not gathered; its type comes
	// from its collector, or for the dataplane collector from the layer's
	// own golden exposition.
	vppGolden, err := os.ReadFile("../../vpp/testdata/metrics.golden")
	if err != nil {
		t.Fatal(err)
	}
	vppTypes := map[string]string{}
	for _, line := range strings.Split(string(vppGolden), "\n") {
		if f := strings.Fields(line); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			vppTypes[f[2]] = f[3]
		}
	}
	vppRec := &recordingRegisterer{Registerer: prometheus.NewRegistry()}
	if err := vpp.RegisterMetrics(vppRec, dp); err != nil {
		t.Fatal(err)
	}
	for _, c := range append(rec.collectors, vppRec.collectors...) {
		typ := "unknown"
		switch c.(type) {
		// Gauge before Counter: a Gauge has Counter's methods too.
		case *prometheus.GaugeVec, prometheus.Gauge:
			typ = "gauge"
		case *prometheus.CounterVec, prometheus.Counter:
			typ = "counter"
		case *prometheus.HistogramVec, prometheus.Histogram:
			typ = "histogram"
		}
		ch := make(chan *prometheus.Desc, 16)
		go func() { c.Describe(ch); close(ch) }()
		for d := range ch {
			if m := descName.FindStringSubmatch(d.String()); m != nil {
				if _, ok := types[m[1]]; ok {
					continue
				}
				if vt, ok := vppTypes[m[1]]; ok && typ == "unknown" {
					typ = vt
				}
				types[m[1]] = typ
			}
		}
	}
	var got []string
	for name, typ := range types {
		if strings.HasPrefix(name, "amphora_agent_") {
			got = append(got, name+" "+typ)
		}
	}
	sort.Strings(got)
	testproc.Golden(t, "../../cmd/amphora-agent/testdata/metric-names.golden", got)
}

// The agent's labelled counters exist before the first event, each
// known label value at zero, so that rate() answers from the start.
func TestAgentCountersExistBeforeTheFirstEvent(t *testing.T) {
	cfg, err := agent.LoadConfig(simConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	if _, err := agent.New(agent.Options{Config: cfg, Dataplane: sim.New(sim.Config{}), Logger: slog.New(slog.DiscardHandler), Registry: reg}); err != nil {
		t.Fatal(err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	series := map[string]int{}
	for _, f := range families {
		series[f.GetName()] = len(f.GetMetric())
	}
	for name, want := range map[string]int{
		"amphora_agent_heartbeats_sent_total":       len(cfg.Controllers),
		"amphora_agent_heartbeat_send_errors_total": 2,
		"amphora_agent_probes_total":                12, // 6 monitor types x pass/fail
		"amphora_agent_member_transitions_total":    2,
		"amphora_agent_listener_transitions_total":  3,
		"amphora_agent_lb_config_loads_total":       2,
		"amphora_agent_vip_syncs_total":             2,
		"amphora_agent_stats_baselines_total":       4,
	} {
		if series[name] != want || want == 0 {
			t.Errorf("%s: %d series before the first event, want %d", name, series[name], want)
		}
	}
}
