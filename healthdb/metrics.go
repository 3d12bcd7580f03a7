package healthdb

import (
	"strings"
	"sync"
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
	partial      *prometheus.CounterVec
	amphoraeSeen prometheus.GaugeFunc
	seen         *seenAmphorae
	lastSuccess  prometheus.Gauge
	// commitLatency is the receive-to-commit time of every heartbeat.
	commitLatency prometheus.Histogram
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
			Name: "octavia_hm_zombie_compute_deletes_total", Help: "Compute deletions for zombie amphorae, by result."},
			[]string{"result"}),
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
	for _, r := range AbortReasons() {
		m.partial.WithLabelValues(r.String())
	}
	m.deletes.WithLabelValues("deleted")
	m.deletes.WithLabelValues("failed")
	reg.MustRegister(m.batchSize, m.applySeconds, m.outcomes, m.changes, m.errors, m.deletes, m.partial,
		m.amphoraeSeen, m.lastSuccess, m.commitLatency)
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
	if ok := res.ComputeDeletes - res.ComputeDeleteFailures; ok > 0 {
		m.deletes.WithLabelValues("deleted").Add(float64(ok))
	}
	if res.ComputeDeleteFailures > 0 {
		m.deletes.WithLabelValues("failed").Add(float64(res.ComputeDeleteFailures))
	}
	for r, n := range res.Partial {
		if n > 0 {
			m.partial.WithLabelValues(AbortReason(r).String()).Add(float64(n))
		}
	}
	m.seen.mark(ids, now)
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
