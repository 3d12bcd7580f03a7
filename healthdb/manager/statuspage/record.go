package statuspage

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/octavia-vpp/health/healthdb"
	"github.com/octavia-vpp/health/healthdb/failover"
)

// Ring sizes: what the page can show of the process's recent history.
const (
	MaxTransitions = 200
	MaxFailovers   = 100
)

// TransitionEvent is a status change this process wrote.
type TransitionEvent struct {
	At time.Time `json:"at"`
	healthdb.Transition
}

// Failover outcomes as the page shows them.
const (
	FailoverAccepted  = "accepted"
	FailoverDryRun    = "dry_run"
	FailoverImmutable = "immutable"
	FailoverNotFound  = "not_found"
	FailoverCancelled = "cancelled"
	FailoverError     = "error"
)

// FailoverEvent is one failover request this process made.
type FailoverEvent struct {
	At        time.Time `json:"at"`
	AmphoraID string    `json:"amphora_id"`
	Result    string    `json:"result"`
	// Error is the driver's error for results other than accepted and
	// dry_run.
	Error string `json:"error,omitempty"`
}

// ring keeps the last cap items, oldest first.
type ring[T any] struct {
	mu    sync.Mutex
	items []T
	next  int
	full  bool
	total int64
}

func newRing[T any](capacity int) *ring[T] { return &ring[T]{items: make([]T, capacity)} }

func (r *ring[T]) add(v T) {
	r.mu.Lock()
	r.items[r.next] = v
	r.next = (r.next + 1) % len(r.items)
	r.full = r.full || r.next == 0
	r.total++
	r.mu.Unlock()
}

// newestFirst copies the items, newest first, and the number ever added.
func (r *ring[T]) newestFirst() ([]T, int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.next
	if r.full {
		n = len(r.items)
	}
	out := make([]T, 0, n)
	for i := 1; i <= n; i++ {
		out = append(out, r.items[(r.next-i+len(r.items))%len(r.items)])
	}
	return out, r.total
}

// RecordBatch remembers the transitions an applied batch wrote; it is meant
// to be called from the updater's done callback.
func (p *Page) RecordBatch(res healthdb.BatchResult, err error) {
	if err != nil || len(res.Transitions) == 0 {
		return
	}
	at := p.cfg.Now()
	// Added last to first, so that newest-first lists a batch in its own
	// order (load balancers before their members).
	for i := len(res.Transitions) - 1; i >= 0; i-- {
		p.transitions.add(TransitionEvent{At: at, Transition: res.Transitions[i]})
	}
}

// WrapDriver returns a failover driver that records every request and its
// outcome before returning it unchanged.
func (p *Page) WrapDriver(d failover.Driver) failover.Driver {
	return recordingDriver{next: d, page: p}
}

type recordingDriver struct {
	next failover.Driver
	page *Page
}

func (r recordingDriver) Failover(ctx context.Context, amphoraID string) error {
	err := r.next.Failover(ctx, amphoraID)
	ev := FailoverEvent{At: r.page.cfg.Now(), AmphoraID: amphoraID, Result: failoverResult(ctx, err)}
	if ev.Result != FailoverAccepted && ev.Result != FailoverDryRun {
		ev.Error = truncate(err.Error(), 200)
	}
	r.page.failovers.add(ev)
	return err
}

// FailoverLoadBalancer passes the call on unrecorded: the page lists
// amphorae, and the amphora's own refused request is already listed.
func (r recordingDriver) FailoverLoadBalancer(ctx context.Context, loadBalancerID string) error {
	return r.next.FailoverLoadBalancer(ctx, loadBalancerID)
}

func failoverResult(ctx context.Context, err error) string {
	switch {
	case err == nil:
		return FailoverAccepted
	case errors.Is(err, failover.ErrDryRun):
		return FailoverDryRun
	case errors.Is(err, failover.ErrImmutable):
		return FailoverImmutable
	case errors.Is(err, failover.ErrNotFound):
		return FailoverNotFound
	case ctx.Err() != nil:
		return FailoverCancelled
	}
	return FailoverError
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
