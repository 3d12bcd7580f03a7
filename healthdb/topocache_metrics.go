package healthdb

import "github.com/prometheus/client_golang/prometheus"

// registerTopologyCache registers the topology cache's metrics, which read
// the cache the updater hands over (watchTopologyCache), and say "off"
// while there is none.
func (m *UpdaterMetrics) registerTopologyCache(reg prometheus.Registerer) {
	stats := func() TopologyCacheStats {
		if c := m.topologyCache.Load(); c != nil {
			return (*c).Stats()
		}
		return TopologyCacheStats{}
	}
	enabled := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "octavia_hm_topology_cache_enabled",
		Help: "1 while the topology cache serves batches; 0 when it is not configured, or turned itself off because a trigger it relies on is missing or disabled (the log says which)."},
		func() float64 {
			if stats().Enabled {
				return 1
			}
			return 0
		})
	reg.MustRegister(enabled)
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "octavia_hm_topology_cache_bytes",
		Help: "Bytes the topology cache's entries hold, as topology_cache_max_mb counts them; at the bound it caches no more load balancers."},
		func() float64 { return float64(stats().Bytes) }))
	for _, r := range []struct {
		result string
		count  func(TopologyCacheStats) uint64
	}{
		{"hit", func(s TopologyCacheStats) uint64 { return s.Hits }},
		{"miss", func(s TopologyCacheStats) uint64 { return s.Misses }},
		{"invalidated", func(s TopologyCacheStats) uint64 { return s.Invalidated }},
	} {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "octavia_hm_topology_cache_lookups_total",
			Help:        "Amphorae whose topology a batch needed, by how the topology cache served it: hit, miss (not cached, or the cache is off), invalidated (cached but out of date).",
			ConstLabels: prometheus.Labels{"result": r.result}},
			func() float64 { return float64(r.count(stats())) }))
	}
}

// watchTopologyCache makes c the cache the metrics read.
func (m *UpdaterMetrics) watchTopologyCache(c TopologyCache) {
	if m == nil {
		return
	}
	m.topologyCache.Store(&c)
}
