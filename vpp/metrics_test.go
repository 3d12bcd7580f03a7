package vpp

import (
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
)

type fixedSource struct {
	st  State
	c   *Counters
	tel Telemetry
}

func (f fixedSource) State() State         { return f.st }
func (f fixedSource) Counters() *Counters  { return f.c }
func (f fixedSource) Telemetry() Telemetry { return f.tel }

// TestMetricsGolden renders the collector for a fixed source and compares
// it with testdata/metrics.golden (VPP_UPDATE_GOLDEN=1 rewrites it).
func TestMetricsGolden(t *testing.T) {
	k := VIPKey{Prefix: p("192.0.2.10/32"), Protocol: ProtoTCP, Port: 80}
	src := fixedSource{
		st: State{Connected: true, Generation: 3, Version: "v26.06-release", Dialect: DialectCLI,
			BootTime: time.Unix(1_700_000_000, 0), LastContact: time.Unix(1_700_000_100, 500_000_000)},
		c: &Counters{VIPs: []VIPCounters{{Key: k, NextPackets: 10, FirstPackets: 4, UntrackedPackets: 1, NoServerPackets: 2,
			RoutePackets: 17, RouteBytes: 1700, Flows: map[netip.Addr]uint64{a("10.0.0.1"): 3, a("10.0.0.2"): 1}}}},
		tel: Telemetry{
			Calls:    map[CallKey]uint64{{"cli_inband", "ok"}: 12, {"control_ping", "transport_error"}: 1},
			Connects: map[string]uint64{"ok": 2, "error": 5}, Disconnects: 1, Repushes: 2,
			Scrapes: map[string]uint64{"ok": 9}, Changes: map[string]uint64{"vip_created": 1, "backend_added": 2},
		},
	}
	reg := prometheus.NewRegistry()
	if err := RegisterMetrics(reg, src); err != nil {
		t.Fatal(err)
	}
	const golden = "testdata/metrics.golden"
	if os.Getenv("VPP_UPDATE_GOLDEN") != "" {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		f, err := os.Create(golden)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		for _, mf := range mfs {
			if _, err := expfmt.MetricFamilyToText(f, mf); err != nil {
				t.Fatal(err)
			}
		}
	}
	f, err := os.Open(golden)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := testutil.GatherAndCompare(reg, f); err != nil {
		t.Fatal(err)
	}
	if n, err := testutil.GatherAndCount(reg); err != nil || n != 22 {
		t.Fatalf("%d series, %v", n, err)
	}
	// A second registration on the same registry is refused, not duplicated.
	if err := RegisterMetrics(reg, src); err == nil {
		t.Fatal("double registration accepted")
	}
}

type plainSource struct{ st State }

func (s plainSource) State() State        { return s.st }
func (s plainSource) Counters() *Counters { return nil }

// A source without Telemetry (the simulator) and without counters yet
// exposes only the connection gauges.
func TestMetricsPlainSource(t *testing.T) {
	reg := prometheus.NewRegistry()
	if err := RegisterMetrics(reg, plainSource{State{Dialect: DialectSim}}); err != nil {
		t.Fatal(err)
	}
	n, err := testutil.GatherAndCount(reg)
	if err != nil || n != 3 { // up, info, generation; no boot time while unknown
		t.Fatalf("%d series, %v", n, err)
	}
	if n, err := testutil.GatherAndCount(reg, "amphora_agent_vpp_boot_time_seconds"); err != nil || n != 0 {
		t.Errorf("boot time exported while unknown: %d series, %v", n, err)
	}
	if v := testutil.ToFloat64(collectorFor(t, reg, "amphora_agent_vpp_up")); v != 0 {
		t.Fatalf("up = %v", v)
	}
}

// collectorFor gathers one metric family into a collector for ToFloat64.
func collectorFor(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name})
			g.Set(mf.GetMetric()[0].GetGauge().GetValue())
			return g
		}
	}
	t.Fatalf("no %s", name)
	return nil
}
