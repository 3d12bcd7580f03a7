package agent

import (
	"context"
	"os"
)

// Reload re-reads the LB description now (SIGHUP). An invalid file keeps
// the running one and is returned as the error.
func (a *Agent) Reload(ctx context.Context) error {
	ch := make(chan error, 1)
	select {
	case a.reload <- ch:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (a *Agent) lbFileChanged() bool {
	fi, err := os.Stat(a.cfg.VPP.LBConfigFile)
	if err != nil {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return fi.ModTime() != a.lbStamp.mod || fi.Size() != a.lbStamp.size
}

// loadLB reads and applies the LB description. An invalid file keeps the
// running description.
func (a *Agent) loadLB(explicit bool) error {
	path := a.cfg.VPP.LBConfigFile
	fi, statErr := os.Stat(path)
	lb, err := LoadLB(path, a.cfg.VPP.Encap)
	a.mu.Lock()
	if statErr == nil {
		a.lbStamp = fileStamp{mod: fi.ModTime(), size: fi.Size()}
	}
	a.mu.Unlock()
	if err != nil {
		a.m.reloads.WithLabelValues("invalid").Inc()
		a.mu.Lock()
		running := a.lb != nil
		a.mu.Unlock()
		a.log.Error("lb description rejected", "path", path, "reason", err.Error(), "keeping_running", running)
		a.sensor.ConfigRejected(err.Error())
		return err
	}
	a.m.reloads.WithLabelValues("ok").Inc()
	a.applyLB(lb)
	a.sensor.ConfigLoaded()
	a.log.Info("lb description loaded", "path", path, "loadbalancer_id", lb.ID,
		"listeners", len(lb.Listeners), "pools", len(lb.Pools), "explicit", explicit)
	return nil
}

// applyLB installs a description: probers of unchanged members keep
// running (and their state); new, changed or re-enabled ones start over
// at rise-1.
func (a *Agent) applyLB(lb *LB) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.lb = lb
	keep := map[string]bool{}
	for i := range lb.Pools {
		pl := &lb.Pools[i]
		hm := pl.HealthMonitor
		if !pl.IsEnabled() || !hm.IsEnabled() {
			continue
		}
		for j := range pl.Members {
			m := &pl.Members[j]
			if !m.IsEnabled() {
				continue
			}
			spec, iv := SpecFor(hm, m), hm.Intervals()
			if old := a.members[m.ID]; old != nil {
				if old.spec == spec && old.iv == iv && old.health.Rise == max(hm.Rise(), 1) && old.health.Fall == max(hm.Fall(), 1) {
					keep[m.ID] = true
					continue
				}
				old.cancel()
			}
			ms := &memberState{spec: spec, iv: iv, health: NewHealth(hm.Rise(), hm.Fall())}
			ctx := a.runCtx
			if ctx == nil {
				ctx = context.Background()
			}
			a.members[m.ID] = ms
			keep[m.ID] = true
			a.startProber(ctx, m.ID, ms) // sets ms.cancel
		}
	}
	for id, ms := range a.members {
		if !keep[id] {
			ms.cancel()
			delete(a.members, id)
		}
	}
}
