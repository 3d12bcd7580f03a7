package healthdb_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/octavia-vpp/health/healthdb"
	"github.com/octavia-vpp/health/healthdb/failover"
)

// octavia_hm_amphorae_expected tells the alert on missing heartbeats
// whether any amphora should be sending: 0 on a cloud without amphorae,
// 1 once one is ALLOCATED with a health row.
func TestWatcherExportsAmphoraeExpected(t *testing.T) {
	f := newMemFleet(nil)
	reg := prometheus.NewRegistry()
	m := healthdb.NewWatcherMetrics(reg)
	w := memWatcher(t, f, failover.Noop{Log: quietLog()}, nil, func(c *healthdb.WatcherConfig) { c.Metrics = m })
	value := func() float64 {
		t.Helper()
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, fam := range families {
			if fam.GetName() == "octavia_hm_amphorae_expected" {
				return fam.GetMetric()[0].GetGauge().GetValue()
			}
		}
		t.Fatal("octavia_hm_amphorae_expected not exported")
		return 0
	}
	cycle(t, w)
	if v := value(); v != 0 {
		t.Errorf("no amphorae: octavia_hm_amphorae_expected = %v, want 0", v)
	}
	f.amphora("amp-1", "lb-1", "ALLOCATED", time.Second, false)
	cycle(t, w)
	if v := value(); v != 1 {
		t.Errorf("one ALLOCATED amphora: octavia_hm_amphorae_expected = %v, want 1", v)
	}
}
