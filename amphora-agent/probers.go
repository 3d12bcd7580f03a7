package agent

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"
)

// startProber schedules a member's probes until ms.cancel is called or
// ctx (the agent's) ends. Between probes a member holds only a runtime
// timer, no goroutine: the timer's function runs one probe on a goroutine
// of its own and schedules the next. A goroutine parked per member would
// keep its stack (8 KB or more, grown by the dial) for as long as the
// member exists, which at 1,000 members was most of the agent's memory;
// a context of its own per member (with the parent's registry entry and
// a stop callback) was about half a kilobyte more each
// (docs/performance.md, "Amphora agent"). A probe in flight has a
// context of its own, cancelled by ms.cancel.
func (a *Agent) startProber(ctx context.Context, id string, ms *memberState) {
	p := &prober{a: a, ctx: ctx, id: id, ms: ms}
	// Created stopped, then started, so that p.timer is set before run
	// can read it.
	p.mu.Lock()
	p.timer = time.AfterFunc(time.Hour, p.run)
	p.timer.Stop()
	p.mu.Unlock()
	ms.cancel = p.stop
	// The first probes of a new description are spread over up to a
	// second (never more than the fast interval), rather than all
	// started at once: 1,000 members probed at the same instant doubled
	// the agent's peak memory. Warm-up waits for them all, a second at most.
	p.schedule(time.Duration(rand.Float64() * float64(min(ms.iv.Fast, time.Second))))
}

// prober is one member's probe schedule.
type prober struct {
	a   *Agent
	ctx context.Context // the agent's
	id  string
	ms  *memberState
	mu  sync.Mutex
	// timer runs the next probe; stopped says the member is gone;
	// inFlight cancels the probe running, nil between probes.
	timer    *time.Timer
	stopped  bool
	inFlight context.CancelFunc
}

// stop ends the member's probes, the one in flight included.
func (p *prober) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopped = true
	p.timer.Stop()
	if p.inFlight != nil {
		p.inFlight()
	}
}

// endedLocked reports whether the member's probes are over. p.mu is held.
func (p *prober) endedLocked() bool {
	return p.stopped || p.ctx.Err() != nil
}

func (p *prober) schedule(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	// Checked under p.mu: once stop has stopped the timer, nothing
	// starts it again.
	if !p.endedLocked() {
		p.timer.Reset(d)
	}
}

func (p *prober) run() {
	timeout := p.ms.spec.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	p.mu.Lock()
	if p.endedLocked() {
		p.mu.Unlock()
		return
	}
	pctx, cancel := context.WithTimeout(p.ctx, timeout)
	p.inFlight = cancel
	p.mu.Unlock()
	err := p.a.probe(pctx, p.ms.spec)
	cancel()
	p.mu.Lock()
	p.inFlight = nil
	ended := p.endedLocked()
	p.mu.Unlock()
	if ended {
		return
	}
	next := p.a.observe(p.id, p.ms, err)
	p.schedule(Jitter(next, p.a.jitter, rand.Float64()))
}

// observe applies a probe result and returns the wait before the next one.
func (a *Agent) observe(id string, ms *memberState, err error) time.Duration {
	result := "pass"
	if err != nil {
		result = "fail"
		if errors.Is(err, ErrPingPermission) {
			a.log.Error("probe cannot run", "member_id", id, "reason", err.Error())
		}
	}
	a.m.probes.WithLabelValues(ms.spec.Type, result).Inc()
	a.mu.Lock()
	if a.members[id] != ms {
		a.mu.Unlock()
		return time.Hour // replaced; the context is cancelled
	}
	before := ms.health.Status()
	var changed bool
	ms.health, changed = ms.health.Observe(err == nil)
	ms.lastErr = ""
	if err != nil {
		ms.lastErr = err.Error()
	}
	after := ms.health.Status()
	next := ms.iv.Next(ms.health)
	a.mu.Unlock()
	if changed {
		to := "down"
		if ms.health.Up() {
			to = "up"
		}
		a.m.memberTransitions.WithLabelValues(to).Inc()
		a.log.Info("member state", "member_id", id, "from", before, "to", after, "reason", ms.lastErr)
		a.Kick()
	} else if before != after {
		a.log.Debug("member check", "member_id", id, "from", before, "to", after, "reason", ms.lastErr)
	}
	return next
}
