package healthdb

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Defaults of the zombie-delete worker.
const (
	// DefaultZombieQueue is how many compute deletes may wait.
	DefaultZombieQueue = 128
	// DefaultZombieWorkers is how many deletes run at once.
	DefaultZombieWorkers = 2
	// DefaultZombieRepeat is how long the outcome of deleting one compute
	// id is re-used before it is deleted again: a zombie keeps sending
	// heartbeats until Nova has removed it.
	DefaultZombieRepeat = time.Minute
	// zombieWriteTimeout bounds the health write owed after a failed
	// delete.
	zombieWriteTimeout = 10 * time.Second
)

// Results of zombie compute deletes (the "result" label of
// octavia_hm_zombie_compute_deletes_total).
const (
	ZombieDeleted     = "deleted"
	ZombieFailed      = "failed"
	ZombieNoComputeID = "skipped_no_compute_id"
	ZombieQueueFull   = "queue_full"
)

// zombieReaper deletes the compute instances of zombie amphorae off the
// heartbeat path. A heartbeat batch only records the zombie and goes on;
// a bounded set of workers calls the compute driver.
//
// Octavia's rule, for each zombie heartbeat, is: delete the VM; if that
// succeeds, stop; if it fails, go on with the amphora expecting no
// listeners (usually a health write). Here:
//
//   - a delete whose outcome is known (it finished less than the repeat
//     interval ago) gives that outcome at once, in the batch;
//   - otherwise the delete is queued, the batch writes nothing for the
//     heartbeat, and when the delete fails the health write the heartbeat
//     would then have made is applied (if the heartbeat is still younger
//     than heartbeat_interval, Octavia's check for a heartbeat processed
//     too late, which Octavia also makes after its delete). When it
//     succeeds nothing is written, as in Octavia.
//
// The rows are Octavia's; only the moment of a fall-through write moves,
// to when the delete ends, which is when Octavia writes it too.
type zombieReaper struct {
	deleter  ComputeDeleter
	store    UpdaterStore
	interval time.Duration // heartbeat_interval
	repeat   time.Duration
	queueCap int
	workers  int
	// inline deletes in the caller's goroutine: for replay, which applies
	// one heartbeat at a time offline and reports each delete's outcome.
	inline bool
	now    func() time.Time
	log    *slog.Logger
	m      *UpdaterMetrics

	ctx    context.Context
	cancel context.CancelFunc

	mu        sync.Mutex
	idle      *sync.Cond // signalled when a worker ends
	entries   map[string]*zombieEntry
	queue     []string // compute ids
	running   int
	closed    bool
	lastPrune time.Time
}

type zombieEntry struct {
	pending   bool
	amphoraID string    // the amphora that asked first, for the log
	at        time.Time // when the delete finished
	err       error
	// owed: amphora id -> receive time of its newest heartbeat that is
	// written if the delete fails.
	owed map[string]time.Time
}

func newZombieReaper(cfg UpdaterConfig, log *slog.Logger) *zombieReaper {
	r := &zombieReaper{
		deleter: cfg.Deleter, store: cfg.Store, interval: cfg.Rules.HeartbeatInterval,
		repeat: cfg.ZombieRepeat, queueCap: cfg.ZombieQueue, workers: cfg.ZombieWorkers, inline: cfg.InlineZombieDeletes,
		now: cfg.Now, log: log, m: cfg.Metrics, entries: map[string]*zombieEntry{},
	}
	if r.repeat <= 0 {
		r.repeat = DefaultZombieRepeat
	}
	if r.queueCap <= 0 {
		r.queueCap = DefaultZombieQueue
	}
	if r.workers <= 0 {
		r.workers = DefaultZombieWorkers
	}
	r.idle = sync.NewCond(&r.mu)
	r.ctx, r.cancel = context.WithCancel(context.Background())
	return r
}

// zombie decides, for one zombie heartbeat, the health outcome applied in
// its batch, and starts the delete if one is due. It never waits for the
// compute service unless the reaper is inline.
func (r *zombieReaper) zombie(ctx context.Context, amphoraID string, d *Decision, recv time.Time, res *BatchResult) HealthOutcome {
	computeID := d.DeleteComputeID
	if computeID == "" {
		// Octavia asks Nova to delete server "None", which Nova does not
		// know, and counts that as deleted: nothing is written. No call is
		// made here for it.
		r.m.zombieDelete(ZombieNoComputeID, 0)
		r.log.Info("zombie amphora has no compute id; nothing to delete", "amphora_id", amphoraID)
		return HealthSkipZombie
	}
	now := r.now()
	r.mu.Lock()
	r.prune(now)
	e := r.entries[computeID]
	if e != nil && !e.pending && now.Sub(e.at) >= r.repeat {
		delete(r.entries, computeID) // its outcome is too old to re-use
		e = nil
	}
	switch {
	case e != nil && e.pending:
		if d.HealthIfDeleteFails == HealthWrite {
			if at, ok := e.owed[amphoraID]; !ok || recv.After(at) {
				e.owed[amphoraID] = recv
			}
		}
		r.mu.Unlock()
		return HealthSkipZombie
	case e != nil:
		err := e.err
		r.mu.Unlock()
		if err != nil {
			return d.HealthIfDeleteFails
		}
		return HealthSkipZombie
	case r.inline:
		r.mu.Unlock()
		res.ComputeDeletes++
		err := r.delete(ctx, computeID, amphoraID)
		r.mu.Lock()
		r.entries[computeID] = &zombieEntry{at: r.now(), err: err}
		r.mu.Unlock()
		if err != nil {
			res.ComputeDeleteFailures++
			return d.HealthIfDeleteFails
		}
		return HealthSkipZombie
	case r.closed || len(r.queue) >= r.queueCap:
		r.mu.Unlock()
		// Not attempted: the outcome of a failed delete, and nothing is
		// remembered, so the zombie's next heartbeat tries again.
		res.ComputeDeleteFailures++
		r.m.zombieDelete(ZombieQueueFull, 0)
		r.log.Warn("zombie amphora's compute delete not queued: the queue is full", "amphora_id", amphoraID,
			"compute_id", computeID, "queue", r.queueCap)
		return d.HealthIfDeleteFails
	}
	e = &zombieEntry{pending: true, amphoraID: amphoraID, owed: map[string]time.Time{}}
	if d.HealthIfDeleteFails == HealthWrite {
		e.owed[amphoraID] = recv
	}
	r.entries[computeID] = e
	r.queue = append(r.queue, computeID)
	r.m.zombieQueued(len(r.queue))
	if r.running < r.workers {
		r.running++
		go r.work()
	}
	r.mu.Unlock()
	res.ComputeDeletes++
	return HealthSkipZombie
}

// prune forgets outcomes older than the repeat interval; r.mu is held.
func (r *zombieReaper) prune(now time.Time) {
	if now.Sub(r.lastPrune) <= r.repeat {
		return
	}
	for id, e := range r.entries {
		if !e.pending && now.Sub(e.at) >= r.repeat {
			delete(r.entries, id)
		}
	}
	r.lastPrune = now
}

// work runs queued deletes until the queue is empty.
func (r *zombieReaper) work() {
	for {
		r.mu.Lock()
		if len(r.queue) == 0 || r.closed {
			r.running--
			r.idle.Broadcast()
			r.mu.Unlock()
			return
		}
		computeID := r.queue[0]
		r.queue = r.queue[1:]
		r.m.zombieQueued(len(r.queue))
		var amphoraID string
		if e := r.entries[computeID]; e != nil {
			amphoraID = e.amphoraID
		}
		r.mu.Unlock()

		err := r.delete(r.ctx, computeID, amphoraID)
		r.mu.Lock()
		var owed map[string]time.Time
		if e := r.entries[computeID]; e != nil {
			owed = e.owed
		}
		r.entries[computeID] = &zombieEntry{at: r.now(), err: err}
		r.mu.Unlock()
		if err != nil && r.ctx.Err() == nil {
			r.fallThrough(owed)
		}
	}
}

func (r *zombieReaper) delete(ctx context.Context, computeID, amphoraID string) error {
	start := time.Now()
	err := r.deleter.DeleteCompute(ctx, computeID)
	result := ZombieDeleted
	if err != nil {
		result = ZombieFailed
		r.log.Info("zombie amphora's compute instance not deleted", "amphora_id", amphoraID, "compute_id", computeID, "err", err)
	}
	r.m.zombieDelete(result, time.Since(start))
	return err
}

// fallThrough writes the health rows owed after a failed delete, for the
// heartbeats still younger than heartbeat_interval.
func (r *zombieReaper) fallThrough(owed map[string]time.Time) {
	now := r.now()
	var ids []string
	for id, recv := range owed {
		if now.Sub(recv) < r.interval {
			ids = append(ids, id)
		} else {
			r.log.Warn("zombie heartbeat processed too slowly after its failed compute delete; dropped, as Octavia does",
				"amphora_id", id, "delay", now.Sub(recv))
		}
	}
	if len(ids) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(r.ctx, zombieWriteTimeout)
	defer cancel()
	if err := r.store.Apply(ctx, &Writes{Health: ids}); err != nil {
		r.log.Error("health of zombie amphorae whose compute delete failed not written", "amphorae", ids, "err", err)
	}
}

// wait blocks until no delete is queued or running.
func (r *zombieReaper) wait() {
	r.mu.Lock()
	for r.running > 0 {
		r.idle.Wait()
	}
	r.mu.Unlock()
}

// close drops the queued deletes, cancels those running and waits for
// them. Later zombies get the outcome of a delete that was not attempted.
func (r *zombieReaper) close() {
	r.mu.Lock()
	r.closed = true
	for _, id := range r.queue {
		delete(r.entries, id)
	}
	r.queue = nil
	r.m.zombieQueued(0)
	r.mu.Unlock()
	r.cancel()
	r.wait()
}
