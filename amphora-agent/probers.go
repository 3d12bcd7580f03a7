package agent

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"
)

// startProber schedules a member's probes until ctx ends. Between probes
// a member holds only a runtime timer, no goroutine: the timer's function
// runs one probe on a goroutine of its own and schedules the next. A
// goroutine parked per member would keep its stack (8 KB or more, grown
// by the dial) for as long as the member exists, which at 1,000 members
// was most of the agent's memory (docs/performance.md, "Amphora agent").
func (a *Agent) startProber(ctx context.Context, id string, ms *memberState) {
	p := &prober{a: a, ctx: ctx, id: id, ms: ms}
	// Created stopped, then started, so that p.timer is set before run
	// can read it.
	p.mu.Lock()
	p.timer = time.AfterFunc(time.Hour, p.run)
	p.timer.Stop()
	p.mu.Unlock()
	context.AfterFunc(ctx, func() {
		p.mu.Lock()
		p.timer.Stop()
		p.mu.Unlock()
	})
	// The first probes of a new description are spread over up to a
	// second (never more than the fast interval), rather than all
	// started at once: 1,000 members probed at the same instant doubled
	// the agent's peak memory. Warm-up waits for them all, a second at most.
	p.schedule(time.Duration(rand.Float64() * float64(min(ms.iv.Fast, time.Second))))
}

// prober is one member's probe schedule.
type prober struct {
	a     *Agent
	ctx   context.Context
	id    string
	ms    *memberState
	mu    sync.Mutex
	timer *time.Timer
}

func (p *prober) schedule(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	// Checked under p.mu: once the context's AfterFunc has stopped the
	// timer, nothing starts it again.
	if p.ctx.Err() == nil {
		p.timer.Reset(d)
	}
}

func (p *prober) run() {
	if p.ctx.Err() != nil {
		return
	}
	timeout := p.ms.spec.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	pctx, cancel := context.WithTimeout(p.ctx, timeout)
	err := p.a.probe(pctx, p.ms.spec)
	cancel()
	if p.ctx.Err() != nil {
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
