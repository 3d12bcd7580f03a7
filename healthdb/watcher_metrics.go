package healthdb

import "github.com/prometheus/client_golang/prometheus"

// WatcherMetrics are the stale-amphora watcher's Prometheus metrics.
type WatcherMetrics struct {
	stale prometheus.Gauge
	// expected is 1 when some amphora should be sending heartbeats.
	expected    prometheus.Gauge
	breakerOpen prometheus.Gauge
	stopped     prometheus.Counter
	recovered   prometheus.Counter
	claims      prometheus.Counter
	// claimsWithdrawn counts claims released undispatched because
	// self-health changed while they were made.
	claimsWithdrawn prometheus.Counter
	failovers       *prometheus.CounterVec
	inFlight        prometheus.Gauge
	requestSeconds  prometheus.Histogram
	cycles          prometheus.Counter
	cycleErrors     prometheus.Counter
	suppressed      *prometheus.CounterVec
	suppressedNow   prometheus.Gauge
	// suppressedReason is 1 for the current reason and the SQLSTATE
	// behind it, 0 for every other reason (sqlstate "").
	suppressedReason *prometheus.GaugeVec
	unclaimFailures  prometheus.Counter
	// claimCommitUnknown counts claims whose COMMIT outcome was unknown.
	claimCommitUnknown prometheus.Counter
}

// Failover results (the "result" label of octavia_hm_failovers_total).
const (
	ResultAccepted = "accepted"
	// ResultLoadBalancerAccepted: the amphora failover was refused because
	// the load balancer is in ERROR, and the load balancer failover was
	// accepted.
	ResultLoadBalancerAccepted = "load_balancer_accepted"
	ResultImmutable            = "immutable"
	ResultNotFound             = "not_found"
	ResultError                = "error"
	ResultDryRun               = "dry_run"
	ResultCancelled            = "cancelled"
)

// NewWatcherMetrics creates and registers the watcher's metrics.
func NewWatcherMetrics(reg prometheus.Registerer) *WatcherMetrics {
	m := &WatcherMetrics{
		stale: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "octavia_hm_stale_amphorae", Help: "Stale, unclaimed amphora_health rows seen by the last health check."}),
		expected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "octavia_hm_amphorae_expected",
			Help: "1 when the last health check found an amphora that should send heartbeats (ALLOCATED or FAILOVER_STOPPED, with a health row), 0 when there is none."}),
		breakerOpen: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "octavia_hm_failover_breaker_open", Help: "1 while the last health check found failover_threshold reached."}),
		stopped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "octavia_hm_amphorae_failover_stopped_total", Help: "Amphorae marked FAILOVER_STOPPED by the circuit breaker."}),
		recovered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "octavia_hm_amphorae_failover_recovered_total", Help: "FAILOVER_STOPPED amphorae set back to ALLOCATED after fresh heartbeats."}),
		claims: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "octavia_hm_failover_claims_total", Help: "Stale amphorae claimed (busy) for failover by this process."}),
		claimsWithdrawn: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "octavia_hm_failover_claims_withdrawn_total",
			Help: "Claims released without a failover request because this process's self-health rules held failovers back by the time the claim returned."}),
		failovers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "octavia_hm_failovers_total", Help: "Failover requests, by result (accepted, load_balancer_accepted, immutable, not_found, error, dry_run, cancelled)."},
			[]string{"result"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "octavia_hm_failovers_in_flight", Help: "Failover requests under way."}),
		requestSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "octavia_hm_failover_request_duration_seconds", Help: "Time for the failover driver to answer.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14)}),
		cycles: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "octavia_hm_health_checks_total", Help: "Health-check cycles run (suppressed and failed ones included)."}),
		cycleErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "octavia_hm_health_check_errors_total", Help: "Health-check cycles that failed on the database."}),
		suppressed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "octavia_hm_health_checks_suppressed_total",
			Help: "Health-check cycles that dispatched nothing because this process itself is unhealthy, by reason."},
			[]string{"reason"}),
		suppressedNow: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "octavia_hm_failover_suppressed", Help: "1 while failovers are suppressed by the self-health rules."}),
		suppressedReason: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "octavia_hm_failover_suppressed_reason",
			Help: "1 for the reason failovers are suppressed now, with the SQLSTATE of the error behind it (empty when there is none); 0 for the other reasons."},
			[]string{"reason", "sqlstate"}),
		unclaimFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "octavia_hm_failover_unclaim_errors_total", Help: "Failed attempts to release a claim (retried every cycle)."}),
		claimCommitUnknown: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "octavia_hm_failover_claim_commit_unknown_total",
			Help: "Claims whose COMMIT got no answer (connection lost); each is looked up and released if it committed."}),
	}
	for _, r := range []string{ResultAccepted, ResultLoadBalancerAccepted, ResultImmutable, ResultNotFound, ResultError, ResultDryRun, ResultCancelled} {
		m.failovers.WithLabelValues(r)
	}
	for _, r := range SuppressReasons {
		m.suppressed.WithLabelValues(r)
		m.suppressedReason.WithLabelValues(r, "").Set(0)
	}
	reg.MustRegister(m.stale, m.expected, m.breakerOpen, m.stopped, m.recovered, m.claims, m.claimsWithdrawn, m.failovers, m.inFlight,
		m.requestSeconds, m.cycles, m.cycleErrors, m.suppressed, m.suppressedNow, m.suppressedReason, m.unclaimFailures,
		m.claimCommitUnknown)
	return m
}

// showSuppression moves octavia_hm_failover_suppressed_reason from the
// previous reason (and SQLSTATE) to the current one; "" is no reason.
// Series of a past SQLSTATE are deleted, so that at most one series is 1.
func (m *WatcherMetrics) showSuppression(prevReason, prevSQLState, reason, sqlState string) {
	if prevReason != "" {
		if prevSQLState != "" {
			m.suppressedReason.DeleteLabelValues(prevReason, prevSQLState)
		} else {
			m.suppressedReason.WithLabelValues(prevReason, "").Set(0)
		}
	}
	if reason != "" {
		m.suppressedReason.WithLabelValues(reason, sqlState).Set(1)
	}
}
