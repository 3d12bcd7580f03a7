package healthdb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/octavia-vpp/health/healthdb/failover"
)

// WatcherConfig configures a Watcher. Durations may be below a second
// (tests); octavia.conf gives them in whole seconds.
type WatcherConfig struct {
	// Store is the database: a *pgstore.Store (PostgreSQL), or any
	// WatcherStore.
	Store  WatcherStore
	Driver failover.Driver
	// HeartbeatTimeout is heartbeat_timeout: an amphora silent this long is
	// stale; also the start-up grace and the pause after the database
	// comes back.
	HeartbeatTimeout time.Duration
	// HealthCheckInterval is health_check_interval: the cycle period.
	HealthCheckInterval time.Duration
	// FailoverThreads is failover_threads: failover requests under way at
	// once, at most (default 10).
	FailoverThreads int
	// FailoverThreshold is failover_threshold, applied when
	// FailoverThresholdSet.
	FailoverThreshold    int
	FailoverThresholdSet bool
	// BackoffBase and BackoffMax bound the per-amphora backoff after a
	// transient failure (defaults: HealthCheckInterval and 5 minutes).
	BackoffBase, BackoffMax time.Duration
	// RequestTimeout bounds one failover request (default 60 s), and
	// DBTimeout one database step (default 10 s).
	RequestTimeout, DBTimeout time.Duration
	// Observer feeds the self-health rules; nil disables them.
	Observer *Observer
	// OctaviaBreakerRelease resumes claims at the first check that finds
	// the failover_threshold breaker let go, as Octavia does, instead of
	// holding them for HeartbeatTimeout (failover_breaker_hold = false).
	OctaviaBreakerRelease bool
	// Now is the clock; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
	// Metrics may be nil.
	Metrics *WatcherMetrics
}

// breakerHolding says whether claims wait for the breaker at now; with
// OctaviaBreakerRelease they never do, the threshold alone decides. The
// caller holds w.mu.
func (w *Watcher) breakerHolding(now time.Time) bool {
	if w.cfg.OctaviaBreakerRelease {
		return false
	}
	return breakerHolding(w.breakerOpen, w.breakerClosed, now, w.cfg.HeartbeatTimeout)
}

// Watcher finds stale amphorae and fails them over (docs/failover.md). Several
// watchers, in one process or many, may share a database: they coordinate
// only through amphora_health.busy and row locks.
type Watcher struct {
	cfg WatcherConfig
	log *slog.Logger
	m   *WatcherMetrics

	wg       sync.WaitGroup
	mu       sync.Mutex
	inFlight int
	backoff  map[string]backoffEntry
	// release holds claims whose release failed; each cycle retries them.
	release map[string]bool
	// dryRun holds the amphorae a dry run (failover_driver = noop) would
	// have failed over, until they are heard from again: as a dispatched
	// failover keeps its claim, one stale episode is one "would fail
	// over". The hold is here, not in amphora_health.busy, so that a dry
	// run leaves the database as it found it.
	dryRun map[string]bool
	// dryRunHeld mirrors len(dryRun) for HeardFrom's fast path.
	dryRunHeld atomic.Int64
	// unresolved holds claims whose COMMIT outcome is unknown, by
	// transaction id; each cycle asks the database until it knows.
	unresolved map[int64][]string
	suppressed string // the reason of the previous cycle, to log changes only
	// suppressedCause is the error behind it, if any.
	suppressedCause FailureCause
	// breakerOpen is whether the previous cycle found failover_threshold
	// reached; breakerClosed is when a cycle last found it no longer was.
	breakerOpen   bool
	breakerClosed time.Time
}

// errCancelled replaces a request's error when the watcher is stopping.
var errCancelled = errors.New("stopping: failover request cancelled")

type backoffEntry struct {
	failures int
	until    time.Time
}

// NewWatcher checks the configuration and fills in defaults.
func NewWatcher(cfg WatcherConfig) (*Watcher, error) {
	if cfg.Store == nil || cfg.Driver == nil {
		return nil, errors.New("healthdb: a watcher needs a store and a failover driver")
	}
	if cfg.HeartbeatTimeout <= 0 || cfg.HealthCheckInterval <= 0 {
		return nil, errors.New("healthdb: heartbeat_timeout and health_check_interval must be positive")
	}
	if cfg.FailoverThreads <= 0 {
		cfg.FailoverThreads = 10
	}
	if cfg.BackoffBase <= 0 {
		cfg.BackoffBase = cfg.HealthCheckInterval
	}
	if cfg.BackoffMax <= 0 {
		cfg.BackoffMax = 5 * time.Minute
	}
	cfg.BackoffMax = max(cfg.BackoffMax, cfg.BackoffBase)
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 60 * time.Second
	}
	if cfg.DBTimeout <= 0 {
		cfg.DBTimeout = 10 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	m := cfg.Metrics
	if m == nil {
		m = NewWatcherMetrics(prometheus.NewRegistry())
	}
	return &Watcher{cfg: cfg, log: log, m: m, backoff: map[string]backoffEntry{}, release: map[string]bool{},
		dryRun: map[string]bool{}, unresolved: map[int64][]string{}}, nil
}

// Run waits the start-up grace (heartbeat_timeout), then runs a cycle
// every health_check_interval until ctx ends. It returns once the failover
// requests under way have finished; ending ctx cancels them, and their
// claims are released.
func (w *Watcher) Run(ctx context.Context) {
	defer w.wg.Wait()
	w.log.Info("stale-amphora watcher waiting out the start-up grace", "grace", w.cfg.HeartbeatTimeout)
	grace := time.NewTimer(w.cfg.HeartbeatTimeout)
	select {
	case <-ctx.Done():
		grace.Stop()
		return
	case <-grace.C:
	}
	ticker := time.NewTicker(w.cfg.HealthCheckInterval)
	defer ticker.Stop()
	for {
		if _, err := w.Cycle(ctx); err != nil && ctx.Err() == nil {
			w.log.Error("health check failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// Wait blocks until the failover requests under way have finished.
func (w *Watcher) Wait() { w.wg.Wait() }

// CycleResult says what one cycle did.
type CycleResult struct {
	// Suppressed is the self-health reason no failover was dispatched, or
	// "".
	Suppressed string
	Claim      ClaimResult
	// Dispatched counts the failover requests started (they finish in the
	// background).
	Dispatched int
}

// Cycle runs one health check: release claims whose earlier release
// failed, apply the self-health rules, claim stale amphorae (with the
// circuit breaker), and start a failover request for each claimed one
// without waiting for it.
func (w *Watcher) Cycle(ctx context.Context) (CycleResult, error) {
	w.m.cycles.Inc()
	var res CycleResult
	w.resolveClaims(ctx)
	w.retryReleases(ctx)

	probeCtx, cancel := context.WithTimeout(ctx, w.cfg.DBTimeout)
	exist, err := w.cfg.Store.CandidatesExist(probeCtx)
	cancel()
	now := w.cfg.Now()
	if o := w.cfg.Observer; o != nil {
		o.DatabaseResult(err, now)
	}
	if err != nil {
		w.m.cycleErrors.Inc()
		w.noteSuppression(SuppressDatabaseDown, now, causeOf(err))
		return res, err
	}
	if exist {
		w.m.expected.Set(1)
	} else {
		w.m.expected.Set(0)
	}
	reason := ""
	if o := w.cfg.Observer; o != nil {
		reason = judgeSelfHealth(o.state(), now, selfHealthRules{
			heartbeatTimeout: w.cfg.HeartbeatTimeout}, exist)
	}
	if reason != "" {
		cause, _ := w.cfg.Observer.Cause(reason)
		w.noteSuppression(reason, now, cause)
		res.Suppressed = reason
		return res, nil
	}

	w.mu.Lock()
	free := w.cfg.FailoverThreads - w.inFlight
	exclude := w.backingOff(now)
	for id := range w.dryRun {
		exclude = append(exclude, id)
	}
	// While the breaker holds and for heartbeat_timeout after it lets go,
	// nothing is claimed; the other steps (un-stopping recovered
	// amphorae, counting, the breaker itself) still run.
	holding := w.breakerHolding(now)
	w.mu.Unlock()
	if holding {
		free = 0
	}
	claimCtx, cancel := context.WithTimeout(ctx, w.cfg.DBTimeout)
	claim, err := w.cfg.Store.ClaimStale(claimCtx, ClaimRequest{
		HeartbeatTimeout: w.cfg.HeartbeatTimeout, Limit: free, Exclude: exclude,
		Threshold: w.cfg.FailoverThreshold, ThresholdSet: w.cfg.FailoverThresholdSet,
	})
	cancel()
	if o := w.cfg.Observer; o != nil {
		o.DatabaseResult(err, w.cfg.Now())
	}
	if err != nil {
		w.noteSuppression("", now, FailureCause{})
		w.m.cycleErrors.Inc()
		var unknown *ClaimCommitUnknownError
		if errors.As(err, &unknown) {
			w.claimCommitUnknown(ctx, unknown)
		}
		return res, fmt.Errorf("health check: %w", err)
	}
	w.mu.Lock()
	if w.breakerOpen && !claim.BreakerOpen {
		w.breakerClosed = now
	}
	w.breakerOpen = claim.BreakerOpen
	holding = w.breakerHolding(now)
	w.mu.Unlock()
	if holding && !claim.BreakerOpen {
		reason = SuppressBreakerRecovering
		res.Suppressed = reason
	}
	w.noteSuppression(reason, now, FailureCause{})
	res.Claim = claim
	w.m.stale.Set(float64(claim.Stale))
	w.m.recovered.Add(float64(claim.Recovered))
	if claim.Recovered > 0 {
		w.log.Info("amphorae heartbeating again; FAILOVER_STOPPED set back to ALLOCATED", "count", claim.Recovered)
	}
	if claim.BreakerOpen {
		w.m.breakerOpen.Set(1)
		w.m.stopped.Add(float64(claim.Stopped))
		w.log.Error("stale amphora count reached the failover threshold; no failover until it drops below",
			"threshold", w.cfg.FailoverThreshold, "stale", claim.Stale, "marked_failover_stopped", claim.Stopped,
			"reason", "failover_threshold")
		return res, nil
	}
	w.m.breakerOpen.Set(0)
	if why := w.judgeAgain(ctx, claim.Claimed); why != "" {
		res.Suppressed = why
		res.Claim.Claimed = nil
		return res, nil
	}
	w.m.claims.Add(float64(len(claim.Claimed)))
	for _, c := range claim.Claimed {
		w.dispatch(ctx, c)
		res.Dispatched++
	}
	return res, nil
}

// judgeAgain applies the self-health rules once more after a claim, and
// releases the claim if they now hold failovers back. The rules were
// applied before the claim, but a claim can take long (a row lock, a slow
// database, a starved process), and a write that hung or failed meanwhile
// leaves working amphorae looking stale: those are exactly the rows the
// late claim picks up. It returns the reason, or "" when the claims may
// be dispatched.
func (w *Watcher) judgeAgain(ctx context.Context, claimed []Claimed) string {
	o := w.cfg.Observer
	if o == nil || len(claimed) == 0 {
		return ""
	}
	now := w.cfg.Now()
	reason := judgeSelfHealth(o.state(), now, selfHealthRules{heartbeatTimeout: w.cfg.HeartbeatTimeout}, true)
	if reason == "" {
		return ""
	}
	cause, _ := o.Cause(reason)
	w.noteSuppression(reason, now, cause)
	ids := make([]string, len(claimed))
	for i, c := range claimed {
		ids[i] = c.AmphoraID
	}
	w.m.claimsWithdrawn.Add(float64(len(ids)))
	w.log.Warn("claims released undispatched: this health manager's self-health changed while it claimed them",
		"reason", reason, "amphorae", len(ids))
	if err := w.releaseOrRetry(ctx, ids); err != nil {
		w.log.Error("could not release the claims; retried every health check", "amphorae", len(ids), "err", err)
	}
	return reason
}

// releaseOrRetry releases claims; if that fails, it counts the failure
// and leaves them to retryReleases, which tries again every cycle. The
// error is returned for the caller's log line.
func (w *Watcher) releaseOrRetry(ctx context.Context, ids []string) error {
	rctx, cancel := context.WithTimeout(ctx, w.cfg.DBTimeout)
	defer cancel()
	err := w.cfg.Store.Unclaim(rctx, ids)
	if err != nil {
		w.m.unclaimFailures.Inc()
		w.mu.Lock()
		for _, id := range ids {
			w.release[id] = true
		}
		w.mu.Unlock()
	}
	return err
}

// noteSuppression logs a change of self-health state or of its cause
// (WARN on entering, INFO on leaving), counts suppressed cycles, and shows
// the reason and its SQLSTATE on octavia_hm_failover_suppressed_reason.
func (w *Watcher) noteSuppression(reason string, now time.Time, cause FailureCause) {
	if reason != "" {
		w.m.suppressed.WithLabelValues(reason).Inc()
		w.m.suppressedNow.Set(1)
	} else {
		w.m.suppressedNow.Set(0)
		cause = FailureCause{}
	}
	w.mu.Lock()
	prev, prevCause := w.suppressed, w.suppressedCause
	w.suppressed, w.suppressedCause = reason, cause
	w.mu.Unlock()
	if reason == prev && cause.SQLState == prevCause.SQLState {
		return
	}
	w.m.showSuppression(prev, prevCause.SQLState, reason, cause.SQLState)
	switch {
	case reason != "":
		attrs := []any{"reason", reason, "heartbeat_timeout", w.cfg.HeartbeatTimeout, "since", now.UTC().Format(time.RFC3339)}
		if cause.Err != "" {
			attrs = append(attrs, "sqlstate", cause.SQLState, "err", cause.Err)
		}
		w.log.Warn("not failing over any amphora: this health manager cannot judge staleness right now", attrs...)
	default:
		w.log.Info("failovers allowed again", "previous_reason", prev, "previous_sqlstate", prevCause.SQLState)
	}
}

// backingOff lists the amphorae still in their backoff; w.mu is held.
func (w *Watcher) backingOff(now time.Time) []string {
	var ids []string
	for id, b := range w.backoff {
		switch {
		case now.Before(b.until):
			ids = append(ids, id)
		case now.Sub(b.until) > w.cfg.BackoffMax:
			delete(w.backoff, id) // long forgotten: start over
		}
	}
	return ids
}

func (w *Watcher) dispatch(ctx context.Context, c Claimed) {
	w.mu.Lock()
	w.inFlight++
	w.mu.Unlock()
	w.m.inFlight.Inc()
	w.log.Info("stale amphora: requesting failover", "amphora_id", c.AmphoraID, "load_balancer_id", c.LoadBalancerID,
		"last_update", c.LastUpdate.Format(time.RFC3339Nano))
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		defer func() {
			w.mu.Lock()
			w.inFlight--
			w.mu.Unlock()
			w.m.inFlight.Dec()
		}()
		reqCtx, cancel := context.WithTimeout(ctx, w.cfg.RequestTimeout)
		start := time.Now()
		err := w.cfg.Driver.Failover(reqCtx, c.AmphoraID)
		viaLB := false
		if errors.Is(err, failover.ErrImmutable) && ctx.Err() == nil {
			viaLB, err = w.failoverLoadBalancerInError(reqCtx, c, err)
		}
		cancel()
		w.m.requestSeconds.Observe(time.Since(start).Seconds())
		if err != nil && ctx.Err() != nil {
			err = errCancelled
		}
		w.settle(c, err, viaLB)
	}()
}

// settle acts on a failover request's outcome. Accepted (viaLB: the
// failover of the amphora's load balancer was): the claim stays (Octavia's
// worker deletes the health row). Immutable: release, and any later cycle
// may retry. Cancelled by shutdown: release. Anything else: release and
// back off.
func (w *Watcher) settle(c Claimed, err error, viaLB bool) {
	now := w.cfg.Now()
	attrs := []any{"amphora_id", c.AmphoraID, "load_balancer_id", c.LoadBalancerID}
	var result string
	switch {
	case err == nil && viaLB:
		result = ResultLoadBalancerAccepted
		w.log.Info("load balancer failover accepted for a stale amphora of a load balancer in ERROR", attrs...)
	case err == nil:
		result = ResultAccepted
		w.log.Info("failover accepted", attrs...)
	case errors.Is(err, failover.ErrImmutable):
		result = ResultImmutable
		w.log.Warn("load balancer is in an immutable state; failover retried by a later health check",
			append(attrs, "reason", "immutable", "err", err)...)
	case errors.Is(err, failover.ErrDryRun):
		result = ResultDryRun
	case errors.Is(err, failover.ErrNotFound):
		result = ResultNotFound
	case errors.Is(err, errCancelled):
		result = ResultCancelled
		w.log.Info("failover request cancelled by shutdown; claim released", attrs...)
	default:
		result = ResultError
	}
	w.m.failovers.WithLabelValues(result).Inc()

	w.mu.Lock()
	switch result {
	case ResultDryRun:
		delete(w.backoff, c.AmphoraID)
		w.dryRun[c.AmphoraID] = true
		w.dryRunHeld.Store(int64(len(w.dryRun)))
	case ResultAccepted, ResultLoadBalancerAccepted, ResultImmutable, ResultCancelled:
		delete(w.backoff, c.AmphoraID)
	default:
		b := w.backoff[c.AmphoraID]
		b.failures++
		delay := backoffDelay(b.failures, w.cfg.BackoffBase, w.cfg.BackoffMax)
		b.until = now.Add(delay)
		w.backoff[c.AmphoraID] = b
		switch result {
		case ResultNotFound:
			w.log.Warn("the Octavia API does not know this amphora; released, retried after a backoff",
				append(attrs, "reason", "not_found", "backoff", delay, "err", err)...)
		case ResultError:
			w.log.Warn("failover request failed; released, retried after a backoff",
				append(attrs, "reason", "error", "failures", b.failures, "backoff", delay, "err", err)...)
		}
	}
	w.mu.Unlock()
	if result == ResultAccepted || result == ResultLoadBalancerAccepted {
		return
	}
	if err := w.releaseOrRetry(context.Background(), []string{c.AmphoraID}); err != nil {
		w.log.Error("could not release the claim on an amphora; retried every health check", append(attrs, "err", err)...)
	}
}

// HeardFrom tells the watcher that heartbeats of these amphorae were
// committed: a dry run's hold on them ends, and a new stale episode
// counts again.
func (w *Watcher) HeardFrom(amphoraIDs []string) {
	if w.dryRunHeld.Load() == 0 {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, id := range amphoraIDs {
		delete(w.dryRun, id)
	}
	w.dryRunHeld.Store(int64(len(w.dryRun)))
}

func (w *Watcher) retryReleases(ctx context.Context) {
	w.mu.Lock()
	ids := make([]string, 0, len(w.release))
	for id := range w.release {
		ids = append(ids, id)
	}
	w.mu.Unlock()
	if len(ids) == 0 {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, w.cfg.DBTimeout)
	defer cancel()
	if err := w.cfg.Store.Unclaim(rctx, ids); err != nil {
		w.m.unclaimFailures.Inc()
		return
	}
	w.mu.Lock()
	for _, id := range ids {
		delete(w.release, id)
	}
	w.mu.Unlock()
	w.log.Info("released claims whose release had failed", "count", len(ids))
}
