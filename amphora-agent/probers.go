package agent

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"
)

func (a *Agent) runProber(ctx context.Context, id string, ms *memberState) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		timeout := ms.spec.Timeout
		if timeout <= 0 {
			timeout = 5 * time.Second
		}
		pctx, cancel := context.WithTimeout(ctx, timeout)
		err := a.probe(pctx, ms.spec)
		cancel()
		if ctx.Err() != nil {
			return
		}
		next := a.observe(id, ms, err)
		timer.Reset(Jitter(next, a.jitter, rand.Float64()))
	}
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
