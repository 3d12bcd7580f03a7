package healthdb

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/octavia-vpp/health/heartbeat"
)

// UpdaterMetrics are the updater's Prometheus metrics.
type UpdaterMetrics struct {
	batchSize    prometheus.Histogram
	applySeconds prometheus.Histogram
	outcomes     *prometheus.CounterVec
	changes      *prometheus.CounterVec
	errors       prometheus.Counter
	deletes      *prometheus.CounterVec
	zombieQueue  prometheus.Gauge
	zombieDelay  prometheus.Histogram
	partial      *prometheus.CounterVec
	amphoraeSeen prometheus.GaugeFunc
	seen         *seenAmphorae
	lastSuccess  prometheus.Gauge
	// commitLatency is the receive-to-commit time of every heartbeat.
	commitLatency prometheus.Histogram
	// topologyCache is the updater's cache, read by the cache metrics.
	topologyCache atomic.Pointer[TopologyCache]
}

// NewUpdaterMetrics creates and registers the updater's metrics. Amphorae
// count as seen for window after their last heartbeat.
func NewUpdaterMetrics(reg prometheus.Registerer, window time.Duration) *UpdaterMetrics {
	m := &UpdaterMetrics{
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "octavia_hm_health_batch_size", Help: "Heartbeats per applied batch.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 13)}),
		applySeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "octavia_hm_health_batch_duration_seconds", Help: "Time to read topologies and write one batch.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 15)}),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "octavia_hm_heartbeats_applied_total",
			Help: "Heartbeats applied, by amphora_health outcome (written, listener_count_mismatch, too_late, zombie, unknown_amphora, aborted)."},
			[]string{"outcome"}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "octavia_hm_status_changes_total", Help: "operating_status changes written, by entity and new status."},
			[]string{"entity", "status"}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "octavia_hm_health_batch_errors_total", Help: "Batches that could not be applied (database errors)."}),
		deletes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "octavia_hm_zombie_compute_deletes_total",
			Help: "Compute deletions for zombie amphorae, by result (deleted, failed, skipped_no_compute_id, queue_full)."},
			[]string{"result"}),
		zombieQueue: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "octavia_hm_zombie_delete_queue_length", Help: "Zombie compute deletes waiting for a worker."}),
		zombieDelay: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "octavia_hm_zombie_delete_duration_seconds", Help: "Time the compute driver took to answer a zombie delete.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 13)}),
		partial: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "octavia_hm_heartbeats_partial_total",
			Help: "Heartbeats applied only in part, because Octavia's procedure stops on them part-way, by reason (docs/deviations.md)."},
			[]string{"reason"}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "octavia_hm_health_last_batch_success_timestamp_seconds", Help: "When a batch was last applied."}),
		seen: &seenAmphorae{window: window, last: map[string]*time.Time{}},
		commitLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "octavia_hm_receive_to_commit_seconds",
			Help:    "From reading a heartbeat off the socket to committing its batch.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}),
	}
	m.amphoraeSeen = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "octavia_hm_amphorae_seen", Help: "Distinct amphorae with an applied heartbeat within the last heartbeat_timeout."},
		func() float64 { return float64(m.seen.count(time.Now())) })
	for o := HealthWrite; o < healthOutcomeCount; o++ {
		m.outcomes.WithLabelValues(o.String())
	}
	for _, r := range []string{ZombieDeleted, ZombieFailed, ZombieNoComputeID, ZombieQueueFull} {
		m.deletes.WithLabelValues(r)
	}
	for _, r := range AbortReasons() {
		m.partial.WithLabelValues(r.String())
	}
	for entity, statuses := range statusesWritten {
		for _, status := range statuses {
			m.changes.WithLabelValues(entity, status)
		}
	}
	reg.MustRegister(m.batchSize, m.applySeconds, m.outcomes, m.changes, m.errors, m.deletes, m.zombieQueue, m.zombieDelay, m.partial,
		m.amphoraeSeen, m.lastSuccess, m.commitLatency)
	m.registerTopologyCache(reg)
	return m
}

// committed records, for each heartbeat of a batch just committed, how
// long it took from the socket to the database.
func (m *UpdaterMetrics) committed(msgs []*heartbeat.Message, at time.Time) {
	if m == nil {
		return
	}
	for _, msg := range msgs {
		m.commitLatency.Observe(at.Sub(msg.RecvTime).Seconds())
	}
}

func (m *UpdaterMetrics) observe(res *BatchResult, ids []string, took time.Duration, err error, now time.Time) {
	if m == nil {
		return
	}
	m.batchSize.Observe(float64(res.Messages))
	m.applySeconds.Observe(took.Seconds())
	if err != nil {
		m.errors.Inc()
		return
	}
	m.lastSuccess.Set(float64(now.Unix()))
	for o, n := range res.Health {
		if n > 0 {
			m.outcomes.WithLabelValues(HealthOutcome(o).String()).Add(float64(n))
		}
	}
	for entity, byStatus := range res.Changes {
		for status, n := range byStatus {
			m.changes.WithLabelValues(entity, status).Add(float64(n))
		}
	}
	for r, n := range res.Partial {
		if n > 0 {
			m.partial.WithLabelValues(AbortReason(r).String()).Add(float64(n))
		}
	}
	m.seen.mark(ids, now)
}

// zombieDelete counts a zombie delete's result; took is the compute
// driver's time, 0 when it was not called.
func (m *UpdaterMetrics) zombieDelete(result string, took time.Duration) {
	if m == nil {
		return
	}
	m.deletes.WithLabelValues(result).Inc()
	if took > 0 {
		m.zombieDelay.Observe(took.Seconds())
	}
}

func (m *UpdaterMetrics) zombieQueued(n int) {
	if m == nil {
		return
	}
	m.zombieQueue.Set(float64(n))
}

// seenAmphorae remembers when each amphora was last applied. Entries older
// than the window are pruned, so the map holds at most the amphorae that
// heartbeated within it.
//
// An id taken from a decoded heartbeat shares the memory of the whole
// inflated message (about 1 KB), so a key is stored as a copy, and
// refreshed through the pointer: assigning to an existing string key
// replaces the key too. Keeping the message's id was three quarters of
// the heap with 100,000 amphorae (docs/performance.md).
type seenAmphorae struct {
	mu        sync.Mutex
	window    time.Duration
	last      map[string]*time.Time
	lastPrune time.Time
}

func (s *seenAmphorae) mark(ids []string, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		if t, ok := s.last[id]; ok {
			*t = now
			continue
		}
		t := now
		s.last[strings.Clone(id)] = &t
	}
	if now.Sub(s.lastPrune) > s.window/4 {
		s.prune(now)
	}
}

func (s *seenAmphorae) prune(now time.Time) {
	for id, t := range s.last {
		if now.Sub(*t) > s.window {
			delete(s.last, id)
		}
	}
	s.lastPrune = now
}

func (s *seenAmphorae) count(now time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.prune(now)
	return len(s.last)
}

// statusesWritten are the operating statuses the updater writes, by
// entity (status_pass.go): octavia_hm_status_changes_total starts at zero
// for each.
var statusesWritten = map[string][]string{
	"load_balancer": {StatusOnline, StatusDegraded, StatusError},
	"listener":      {StatusOnline, StatusDegraded, StatusError, StatusOffline},
	"pool":          {StatusOnline, StatusDegraded, StatusError, StatusOffline},
	"member":        {StatusOnline, StatusError, StatusOffline, StatusDraining, StatusNoMonitor},
}
