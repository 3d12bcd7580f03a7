package agent

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"time"

	"github.com/octavia-vpp/health/vpp"
)

func (a *Agent) refreshMarks() {
	marks, err := a.spool.List(a.now())
	if err != nil {
		a.log.Warn("marks spool", "reason", err.Error())
	}
	a.mu.Lock()
	a.marks = marks
	a.mu.Unlock()
}

// listenerPlan is the plan of one enabled listener.
type listenerPlan struct {
	l       *Listener
	pool    *Pool // nil without an enabled default pool
	plan    PoolPlan
	vips    []vpp.VIP
	state   ListenerState
	hasPool bool
}

// planMode says what memory planInto uses and what it fills in.
type planMode uint8

const (
	// planFresh: plans of their own, VIPs with their backends.
	planFresh planMode = iota
	// planHeartbeat: out's memory reused, VIPs without backends (a
	// heartbeat reads only their keys).
	planHeartbeat
	// planSync: out's memory reused, VIPs' backends in a.syncBackends,
	// valid until the next planSync (a.mu held throughout).
	planSync
)

// planLocked computes every enabled listener's plan. a.mu is held.
func (a *Agent) planLocked() []listenerPlan {
	return a.planInto(nil, planFresh)
}

// planInto computes the plans. Except with planFresh, it reuses the
// member plans and VIP slices of out, which the caller no longer needs:
// a heartbeat or a reconcile tick of 1,000 members then allocates none of
// them. a.mu is held.
func (a *Agent) planInto(out []listenerPlan, mode planMode) []listenerPlan {
	reuse := mode != planFresh
	if mode == planSync {
		a.syncBackends = a.syncBackends[:0]
	}
	if a.lb == nil {
		return out[:0]
	}
	now := a.now()
	out = out[:0]
	for i := range a.lb.Listeners {
		l := &a.lb.Listeners[i]
		if !l.IsEnabled() {
			continue
		}
		lp := listenerPlan{l: l}
		var members []MemberPlan
		if reuse && len(out) < cap(out) {
			prev := out[:len(out)+1][len(out)]
			members, lp.vips = prev.plan.Members[:0], prev.vips[:0]
		}
		var pool *Pool
		if l.DefaultPoolID != "" {
			pool = a.lb.Pool(l.DefaultPoolID)
		}
		if pool != nil {
			lp.pool, lp.hasPool = pool, pool.IsEnabled()
			monitored := pool.HealthMonitor.IsEnabled()
			// PlanPool keeps nothing of its input: one scratch slice
			// serves every pool and every plan (a.mu is held).
			ins := a.planInputs[:0]
			for j := range pool.Members {
				m := &pool.Members[j]
				in := MemberInput{
					ID: m.ID, Addr: m.Addr(), Weight: MapWeight(m.OctaviaWeight()), Backup: m.Backup,
					Enabled: m.IsEnabled(), Monitored: monitored,
					Mark: EffectiveMark(a.marks, m.ID, l.ID, now),
				}
				if ms := a.members[m.ID]; ms != nil {
					in.Health = ms.health
				} else if monitored {
					in.Health = NewHealth(pool.HealthMonitor.Rise(), pool.HealthMonitor.Fall())
				}
				ins = append(ins, in)
			}
			lp.plan = planPoolInto(members, monitored, pool.IsEnabled(), ins)
			a.planInputs = ins[:0]
		} else {
			lp.plan = planPoolInto(members, false, false, nil)
		}
		lp.state = ListenerStateOf(lp.hasPool, lp.plan)
		proto, _ := VPPProtocol(l.Protocol)
		sticky := pool != nil && pool.SessionPersistence != nil && pool.SessionPersistence.Type == "SOURCE_IP"
		for _, addr := range a.lb.VIPs() {
			v := vpp.VIP{Key: vpp.VIPKey{Prefix: netip.PrefixFrom(addr, addr.BitLen()), Protocol: proto, Port: uint16(l.ProtocolPort)}}
			switch mode {
			case planFresh:
				v.Encap, v.SrcIPSticky, v.Backends = a.cfg.VPP.Encap, sticky, lp.plan.Backends()
			case planSync:
				start := len(a.syncBackends)
				a.syncBackends = lp.plan.appendBackends(a.syncBackends)
				v.Encap, v.SrcIPSticky = a.cfg.VPP.Encap, sticky
				if len(a.syncBackends) > start {
					// Capped: an append to one VIP's backends must not
					// run into the next one's.
					v.Backends = a.syncBackends[start:len(a.syncBackends):len(a.syncBackends)]
				}
			}
			lp.vips = append(lp.vips, v)
		}
		out = append(out, lp)
	}
	return out
}

// sync reconciles VPP with the plan. full re-syncs every released VIP and
// removes VIPs VPP has that the description does not.
func (a *Agent) sync(ctx context.Context, full bool) {
	a.mu.Lock()
	a.syncPlans = a.planInto(a.syncPlans, planSync)
	plans := a.syncPlans
	a.syncGen++
	elapsed := a.now().Sub(a.start)
	var todo []vpp.VIP
	desired := map[vpp.VIPKey]bool{}
	allReleased := a.lb != nil
	for _, lp := range plans {
		if prev, ok := a.listenerStates[lp.l.ID]; (!ok && lp.state != ListenerUnknown) || (ok && prev != lp.state) {
			a.m.listenerTransitions.WithLabelValues(lp.state.String()).Inc()
			a.log.Info("listener state", "listener_id", lp.l.ID, "from", prev.String(), "to", lp.state.String())
		}
		a.listenerStates[lp.l.ID] = lp.state
		for _, v := range lp.vips {
			nv, err := a.validatedLocked(v)
			if err != nil {
				a.log.Error("vip not valid", "listener_id", lp.l.ID, "vip", v.Key.String(), "reason", err.Error())
				continue
			}
			desired[nv.Key] = true
			if !a.released[nv.Key] {
				if !a.warmup.Release(elapsed, lp.plan.AllKnown) {
					allReleased = false
					continue
				}
				a.released[nv.Key] = true
				a.log.Info("vip released from warm-up", "listener_id", lp.l.ID, "vip", nv.Key.String(),
					"elapsed", elapsed.Round(time.Millisecond), "all_known", lp.plan.AllKnown)
			}
			if old, ok := a.pushed[nv.Key]; full || !ok || !vipEqual(old, nv) {
				todo = append(todo, nv)
			}
		}
	}
	if len(a.validated) > len(desired) {
		for k, e := range a.validated {
			if e.gen != a.syncGen {
				delete(a.validated, k)
			}
		}
	}
	var remove []vpp.VIPKey
	for k := range a.pushed {
		if !desired[k] {
			remove = append(remove, k)
		}
	}
	// Warm-up ends once every VIP is released and then pushed, below.
	// Without any valid description it ends at the maximum delay
	// (heartbeats then go out empty, so Octavia sees the count mismatch
	// rather than a silent amphora).
	warmingUp := !a.warm && (allReleased || elapsed >= a.warmup.MaxDelay)
	// Orphans are only removed with a valid description in hand: an agent
	// started with a broken file must not wipe what VPP is serving.
	removeOrphans := a.warm && a.lb != nil
	a.mu.Unlock()

	slices.SortFunc(todo, func(x, y vpp.VIP) int { return x.Key.Compare(y.Key) })
	for _, v := range todo {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		res, err := a.dp.SyncVIP(cctx, v)
		cancel()
		if err != nil {
			a.m.syncs.WithLabelValues("error").Inc()
			a.mu.Lock()
			repeated := a.syncErrs[v.Key] == err.Error()
			a.syncErrs[v.Key] = err.Error()
			a.mu.Unlock()
			if !repeated {
				a.log.Warn("vip sync failed", "vip", v.Key.String(), "reason", err.Error())
			}
			if !errors.Is(err, vpp.ErrNotConnected) {
				continue // retried on the next tick
			}
			// remembered by the layer, pushed on reconnect
		} else {
			a.m.syncs.WithLabelValues("ok").Inc()
			a.mu.Lock()
			delete(a.syncErrs, v.Key)
			a.mu.Unlock()
		}
		if res.Changed() {
			a.log.Info("vip reconciled", "vip", v.Key.String(), "added", res.Added, "removed", res.Removed,
				"reweighted", res.Reweighted, "created", res.Created, "recreated", res.Recreated)
		}
		a.mu.Lock()
		a.pushed[v.Key] = v
		a.mu.Unlock()
	}
	if warmingUp {
		a.mu.Lock()
		a.warm = allPushed(desired, a.pushed)
		a.mu.Unlock()
	}
	if full && removeOrphans {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		actual, err := a.dp.VIPs(cctx)
		cancel()
		if err == nil {
			for _, st := range actual {
				if !desired[st.Key] && !slices.Contains(remove, st.Key) {
					remove = append(remove, st.Key)
				}
			}
		}
	}
	for _, k := range remove {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := a.dp.RemoveVIP(cctx, k)
		cancel()
		if err != nil && !errors.Is(err, vpp.ErrNotFound) {
			a.log.Warn("vip removal failed", "vip", k.String(), "reason", err.Error())
			if !errors.Is(err, vpp.ErrNotConnected) {
				continue
			}
		}
		a.log.Info("vip removed", "vip", k.String())
		a.mu.Lock()
		delete(a.pushed, k)
		a.mu.Unlock()
	}
}

// validatedVIP is a VIP as planned (its backends a copy of its own) and
// as validated, from the last reconcile that planned it.
type validatedVIP struct {
	planned, valid vpp.VIP
	gen            uint64
}

// validatedLocked returns v validated (vpp.VIP.Validate, which copies and
// sorts the backends), from the last reconcile's result when v is planned
// as it was then: a reconcile tick of an unchanged description of 1,000
// members then neither copies nor sorts them. v's backends may be
// scratch. a.mu is held.
func (a *Agent) validatedLocked(v vpp.VIP) (vpp.VIP, error) {
	if e, ok := a.validated[v.Key]; ok && vipEqual(e.planned, v) {
		e.gen = a.syncGen
		a.validated[v.Key] = e
		return e.valid, nil
	}
	nv, err := v.Validate()
	if err != nil {
		delete(a.validated, v.Key)
		return nv, err
	}
	v.Backends = slices.Clone(v.Backends)
	if a.validated == nil {
		a.validated = map[vpp.VIPKey]validatedVIP{}
	}
	a.validated[v.Key] = validatedVIP{planned: v, valid: nv, gen: a.syncGen}
	return nv, nil
}

func vipEqual(a, b vpp.VIP) bool {
	return a.Key == b.Key && a.Encap == b.Encap && a.SrcIPSticky == b.SrcIPSticky &&
		a.FlowTableLength == b.FlowTableLength && slices.Equal(a.Backends, b.Backends)
}

// allPushed reports whether VPP has been given every desired VIP (or the
// dataplane layer holds it for VPP's reconnection).
func allPushed(desired map[vpp.VIPKey]bool, pushed map[vpp.VIPKey]vpp.VIP) bool {
	for k := range desired {
		if _, ok := pushed[k]; !ok {
			return false
		}
	}
	return true
}
