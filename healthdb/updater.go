package healthdb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/octavia-vpp/health/heartbeat"
)

// ComputeDeleter deletes the compute instance of a zombie amphora, as
// Octavia's health manager does when a heartbeat arrives from an amphora
// that should not exist.
type ComputeDeleter interface {
	DeleteCompute(ctx context.Context, computeID string) error
}

// Default batching: a batch closes at this many messages or this long
// after its first message, whichever comes first.
const (
	DefaultBatchSize  = 512
	DefaultBatchDelay = 20 * time.Millisecond
)

// UpdaterConfig configures an Updater.
type UpdaterConfig struct {
	// Store is the database: a *pgstore.Store (PostgreSQL), or any
	// UpdaterStore.
	Store UpdaterStore
	// Deleter deletes zombies' compute instances. It is called by the
	// zombie-delete workers, never by a heartbeat batch (unless
	// InlineZombieDeletes).
	Deleter ComputeDeleter
	Rules   Rules
	// ZombieQueue and ZombieWorkers bound the zombie-delete worker: deletes
	// waiting, and deletes running at once (defaults DefaultZombieQueue
	// and DefaultZombieWorkers). ZombieRepeat is how long one compute id's
	// delete outcome is re-used before it is deleted again (default
	// DefaultZombieRepeat).
	ZombieQueue, ZombieWorkers int
	ZombieRepeat               time.Duration
	// InlineZombieDeletes runs each zombie's delete inside the batch that
	// found it, as Octavia does, holding the batch up: only for replay,
	// which applies one heartbeat at a time offline.
	InlineZombieDeletes bool
	// BatchSize and BatchDelay bound a batch (defaults DefaultBatchSize and
	// DefaultBatchDelay).
	BatchSize  int
	BatchDelay time.Duration
	// TopologyCache, when positive, keeps topologies between batches for at
	// most this long, checking each load balancer's versions before each
	// use ([health_manager] topology_cache_seconds; 0 reads every batch's
	// topologies afresh).
	TopologyCache time.Duration
	// TopologyCacheMaxBytes bounds the topology cache's memory
	// ([health_manager] topology_cache_max_mb; 0: no bound): when full, it
	// admits no more load balancers, which are then read every batch.
	TopologyCacheMaxBytes int64
	// BatchStarted, when set, is told when Run begins applying a batch,
	// with the receive time of its oldest heartbeat (the self-health
	// observer's HealthBatchStarted).
	BatchStarted func(oldestReceived time.Time)
	// Now is the clock; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
	// Metrics may be nil.
	Metrics *UpdaterMetrics
}

// Updater applies heartbeats to the database in batches. Within a batch,
// messages are applied in arrival order to an in-memory copy of the
// topology, so that each sees what the ones before it wrote, and only the
// net changes are written, in one transaction. The result equals applying
// the messages one at a time.
type Updater struct {
	cfg     UpdaterConfig
	log     *slog.Logger
	cache   TopologyCache // nil unless cfg.TopologyCache > 0 and the store can cache
	zombies *zombieReaper
	// scratch keeps a batch's working maps for the next batch: made anew
	// each time, they were most of the updater's own allocations
	// (docs/performance.md).
	scratch sync.Pool
}

// NewUpdater checks the configuration and fills in defaults.
func NewUpdater(cfg UpdaterConfig) (*Updater, error) {
	if cfg.Store == nil || cfg.Deleter == nil {
		return nil, errors.New("healthdb: an updater needs a store and a compute deleter")
	}
	if cfg.Rules.HeartbeatInterval <= 0 {
		return nil, errors.New("healthdb: heartbeat_interval must be positive")
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.BatchDelay <= 0 {
		cfg.BatchDelay = DefaultBatchDelay
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	u := &Updater{cfg: cfg, log: log, zombies: newZombieReaper(cfg, log)}
	if c, ok := cfg.Store.(TopologyCacher); ok && cfg.TopologyCache > 0 {
		u.cache = c.NewTopologyCache(cfg.TopologyCache, cfg.TopologyCacheMaxBytes, log)
		cfg.Metrics.watchTopologyCache(u.cache)
	}
	return u, nil
}

// BatchResult says what a batch did.
type BatchResult struct {
	Messages int
	// Health counts the messages by health outcome.
	Health [healthOutcomeCount]int
	// Changes counts the status changes written, by entity ("load_balancer",
	// "listener", "pool", "member") and new status.
	Changes map[string]map[string]int
	// Aborted counts messages that Octavia's procedure would stop on
	// part-way, and Partial counts them by reason.
	Aborted int
	Partial [abortReasonCount]int
	// ComputeDeletes counts the zombie deletes the batch started (queued,
	// or run inline); ComputeDeleteFailures those whose failure the batch
	// applied (run inline, or not queued because the queue was full).
	ComputeDeletes, ComputeDeleteFailures int
	// Transitions lists the committed status changes, at most
	// MaxTransitionsPerBatch (Add does not merge them).
	Transitions []Transition
	// Amphorae lists the amphorae whose heartbeats the batch carried, set
	// once it committed (Add does not merge them).
	Amphorae []string
}

// Add accumulates another result into r.
func (r *BatchResult) Add(o BatchResult) {
	r.Messages += o.Messages
	for i := range r.Health {
		r.Health[i] += o.Health[i]
	}
	r.Aborted += o.Aborted
	for i := range r.Partial {
		r.Partial[i] += o.Partial[i]
	}
	r.ComputeDeletes += o.ComputeDeletes
	r.ComputeDeleteFailures += o.ComputeDeleteFailures
	for entity, byStatus := range o.Changes {
		for status, n := range byStatus {
			r.countChange(entity, status, n)
		}
	}
}

func (r *BatchResult) countChange(entity, status string, n int) {
	if r.Changes == nil {
		r.Changes = map[string]map[string]int{}
	}
	if r.Changes[entity] == nil {
		r.Changes[entity] = map[string]int{}
	}
	r.Changes[entity][status] += n
}

// Run reads messages until in closes or ctx ends, applying them in batches.
// A batch that fails is logged and dropped: health is re-sent every
// heartbeat_interval, and a heartbeat held longer would be dropped as late.
// When it returns, zombie deletes still queued are dropped and those
// running are cancelled and waited for.
func (u *Updater) Run(ctx context.Context, in <-chan *heartbeat.Message, done func(BatchResult, error)) {
	defer u.zombies.close()
	batch := make([]*heartbeat.Message, 0, u.cfg.BatchSize)
	for {
		batch = batch[:0]
		select {
		case <-ctx.Done():
			return
		case m, ok := <-in:
			if !ok {
				return
			}
			batch = append(batch, m)
		}
		deadline := time.NewTimer(u.cfg.BatchDelay)
	collect:
		for len(batch) < u.cfg.BatchSize {
			select {
			case m, ok := <-in:
				if !ok {
					break collect
				}
				batch = append(batch, m)
			case <-deadline.C:
				break collect
			}
		}
		deadline.Stop()
		if u.cfg.BatchStarted != nil {
			u.cfg.BatchStarted(oldestReceived(batch))
		}
		res, err := u.ApplyBatch(ctx, batch)
		if err != nil {
			u.log.Error("health batch not applied", "messages", len(batch), "err", err)
		}
		if done != nil {
			done(res, err)
		}
	}
}

func oldestReceived(msgs []*heartbeat.Message) time.Time {
	var oldest time.Time
	for _, m := range msgs {
		if oldest.IsZero() || (!m.RecvTime.IsZero() && m.RecvTime.Before(oldest)) {
			oldest = m.RecvTime
		}
	}
	return oldest
}

// ApplyBatch applies messages, in order, in one read and one write.
func (u *Updater) ApplyBatch(ctx context.Context, msgs []*heartbeat.Message) (BatchResult, error) {
	if len(msgs) == 0 {
		return BatchResult{}, nil
	}
	start := time.Now()
	res, ids, err := u.applyBatch(ctx, msgs)
	now := u.cfg.Now()
	u.cfg.Metrics.observe(&res, ids, time.Since(start), err, now)
	if err == nil {
		u.cfg.Metrics.committed(msgs, now)
		res.Amphorae = ids
	}
	return res, err
}

func (u *Updater) applyBatch(ctx context.Context, msgs []*heartbeat.Message) (BatchResult, []string, error) {
	res := BatchResult{Messages: len(msgs)}
	state, _ := u.scratch.Get().(*batchState)
	if state == nil {
		state = newBatchState()
	}
	// Cleared before it is kept, so that it holds no topology alive.
	defer func() { state.reset(); u.scratch.Put(state) }()
	ids := make([]string, 0, len(msgs))
	for _, m := range msgs {
		if !state.seen[m.AmphoraID] {
			state.seen[m.AmphoraID] = true
			ids = append(ids, m.AmphoraID)
		}
	}
	var topos map[string]*Topology
	var err error
	if u.cache != nil {
		topos, err = u.cache.Load(ctx, ids, u.cfg.Now())
	} else {
		topos, err = u.cfg.Store.LoadTopologies(ctx, ids)
	}
	if err != nil {
		return res, ids, err
	}
	now := u.cfg.Now()
	for _, m := range msgs {
		topo := topos[m.AmphoraID]
		if topo == nil {
			topo = &Topology{AmphoraID: m.AmphoraID}
		}
		d := Decide(topo, m, now, u.cfg.Rules)
		health := d.Health
		if d.Health == HealthSkipZombie {
			// Recorded and handed to the zombie-delete worker: the batch
			// never waits for the compute service.
			health = u.zombies.zombie(ctx, m.AmphoraID, &d, m.RecvTime, &res)
		}
		res.Health[health]++
		switch health {
		case HealthWrite:
			state.health = append(state.health, m.AmphoraID)
		case HealthSkipCountMismatch:
			u.log.Warn("heartbeat listener count differs from the database", "amphora_id", m.AmphoraID,
				"reported", d.ReportedListeners, "expected", d.ExpectedListeners)
		case HealthSkipLate:
			u.log.Warn("heartbeat processed too slowly, dropped", "amphora_id", m.AmphoraID, "delay", d.Delay)
		case HealthSkipUnknown:
			u.log.Warn("heartbeat from an amphora with no database row; delete its VM by hand", "amphora_id", m.AmphoraID)
		}
		// A zombie whose compute instance was deleted never reaches the
		// point where its heartbeat could fail.
		if d.Abort != AbortNone && health != HealthSkipZombie {
			res.Aborted++
			res.Partial[d.Abort]++
			u.log.Warn("heartbeat applied only in part, as Octavia applies it", "amphora_id", m.AmphoraID,
				"health", health.String(), "reason", d.Abort.String(), "where", d.AbortedAt)
		}
		if topo.LB != nil {
			state.apply(topo.LB, &d)
		}
	}
	writes := state.writes()
	for _, e := range [...]struct {
		entity  string
		changes map[string]string
	}{{"load_balancer", writes.LoadBalancers}, {"listener", writes.Listeners}, {"pool", writes.Pools}, {"member", writes.Members}} {
		for _, status := range e.changes {
			res.countChange(e.entity, status, 1)
		}
	}
	if err := u.cfg.Store.Apply(ctx, writes); err != nil {
		return res, ids, fmt.Errorf("write batch of %d heartbeats: %w", len(msgs), err)
	}
	res.Transitions = state.transitions(MaxTransitionsPerBatch)
	return res, ids, nil
}

// batchState tracks, per entity, the status the database holds and the
// status the batch has reached, and updates the shared in-memory topology
// so later messages of the batch see earlier ones' changes.
type batchState struct {
	seen                            map[string]bool // the batch's amphorae
	health                          []string
	lbs, listeners, pools, members  map[string]*tracked
	listenerIdx, poolIdx, memberIdx map[string]*string // id -> the in-memory status field
	indexedLBs                      map[*LoadBalancer]bool
}

type tracked struct{ original, current string }

// newBatchState makes an empty state. The updater keeps states between
// batches (reset), so the indexes keep the size the largest batches grew
// them to instead of growing by rehashing every batch, which was a tenth
// of a batch's CPU time.
func newBatchState() *batchState {
	return &batchState{
		seen: map[string]bool{},
		lbs:  map[string]*tracked{}, listeners: map[string]*tracked{}, pools: map[string]*tracked{}, members: map[string]*tracked{},
		listenerIdx: map[string]*string{}, poolIdx: map[string]*string{}, memberIdx: map[string]*string{},
		indexedLBs: map[*LoadBalancer]bool{},
	}
}

// reset empties the state for another batch, keeping the maps' space.
// health is handed to the store with the writes, so it is let go.
func (s *batchState) reset() {
	clear(s.seen)
	s.health = nil
	clear(s.lbs)
	clear(s.listeners)
	clear(s.pools)
	clear(s.members)
	clear(s.listenerIdx)
	clear(s.poolIdx)
	clear(s.memberIdx)
	clear(s.indexedLBs)
}

func (s *batchState) index(lb *LoadBalancer) {
	if s.indexedLBs[lb] {
		return
	}
	s.indexedLBs[lb] = true
	for i := range lb.Listeners {
		s.listenerIdx[lb.Listeners[i].ID] = &lb.Listeners[i].OperatingStatus
	}
	for i := range lb.Pools {
		p := &lb.Pools[i]
		s.poolIdx[p.ID] = &p.OperatingStatus
		for j := range p.Members {
			s.memberIdx[p.Members[j].ID] = &p.Members[j].OperatingStatus
		}
	}
}

func (s *batchState) apply(lb *LoadBalancer, d *Decision) {
	if d.LoadBalancer != nil {
		record(s.lbs, &lb.OperatingStatus, d.LoadBalancer)
	}
	// A decision lists only changes, and a steady heartbeat has none, so
	// the load balancer's ids are indexed only once one of them changes:
	// indexing every member of every heartbeat's load balancer cost more
	// than deciding its statuses.
	if len(d.Listeners) == 0 && len(d.Pools) == 0 && len(d.Members) == 0 {
		return
	}
	s.index(lb)
	for i := range d.Listeners {
		record(s.listeners, s.listenerIdx[d.Listeners[i].ID], &d.Listeners[i])
	}
	for i := range d.Pools {
		record(s.pools, s.poolIdx[d.Pools[i].ID], &d.Pools[i])
	}
	for i := range d.Members {
		record(s.members, s.memberIdx[d.Members[i].ID], &d.Members[i])
	}
}

func record(m map[string]*tracked, field *string, c *StatusChange) {
	t := m[c.ID]
	if t == nil {
		t = &tracked{original: c.From}
		m[c.ID] = t
	}
	t.current = c.To
	*field = c.To
}

// writes returns the net changes: entities whose status ended where it
// started are not written.
func (s *batchState) writes() *Writes {
	net := func(m map[string]*tracked) map[string]string {
		out := make(map[string]string, len(m))
		for id, t := range m {
			if !equalStatus(t.original, t.current) {
				out[id] = t.current
			}
		}
		return out
	}
	return &Writes{
		Health:        s.health,
		LoadBalancers: net(s.lbs),
		Listeners:     net(s.listeners),
		Pools:         net(s.pools),
		Members:       net(s.members),
	}
}
