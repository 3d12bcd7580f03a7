package agent

import (
	"net/netip"
	"time"

	"github.com/octavia-vpp/health/vpp"
)

// MapWeight maps an Octavia member weight (0-256) onto VPP's 0-100:
// ceil(w*100/256), so 0 stays 0 (drain), every non-zero weight stays
// non-zero (1 and 2 become 1) and 256 becomes 100. Values outside the range
// are clamped.
func MapWeight(octavia int) uint8 {
	octavia = min(max(octavia, 0), 256)
	return uint8((octavia*100 + 255) / 256)
}

// MarkKind is an operator mark.
type MarkKind uint8

// Mark kinds. A maintenance mark wins over a drain mark.
const (
	MarkNone  MarkKind = iota
	MarkDrain          // weight 0, flows kept, reported DRAIN
	MarkMaint          // removed with flush, reported MAINT
)

func (k MarkKind) String() string {
	switch k {
	case MarkDrain:
		return "drain"
	case MarkMaint:
		return "maint"
	}
	return "none"
}

// Member strings that are not produced by the rise/fall machine.
const (
	StatusDrain   = "DRAIN"
	StatusMaint   = "MAINT"
	StatusNoCheck = "no check"
	StatusUp      = "UP"
	StatusDown    = "DOWN"
)

// MemberInput is what the planner knows about one member of a pool.
type MemberInput struct {
	ID     string
	Addr   netip.Addr
	Weight uint8 // configured weight, already mapped to 0-100
	Backup bool
	// Enabled is the member's admin state.
	Enabled bool
	// Monitored is true when the pool has an enabled health monitor; then
	// Health holds the member's machine.
	Monitored bool
	Health    Health
	Mark      MarkKind
}

// MemberPlan is the outcome for one member.
type MemberPlan struct {
	ID string
	// InVPP is false for members removed from the VIP (disabled,
	// maintenance); removal flushes their flows.
	InVPP   bool
	Backend vpp.Backend
	// Status is the member string for the heartbeat.
	Status string
	// Known is false while a monitored member has no probe result yet.
	Known bool
}

// PoolPlan is the outcome for one pool.
type PoolPlan struct {
	Members []MemberPlan
	// Status is the pool string for the heartbeat: UP when at least one
	// member can take new flows or the pool has no monitor, else DOWN.
	Status string
	// AllKnown reports whether every member that needs a probe result has
	// one (the warm-up condition).
	AllKnown bool
	// Serving counts members with a non-zero effective weight.
	Serving int
}

// usable reports whether a member would take new flows if it were not a
// backup: enabled, unmarked, healthy (or unmonitored) and with weight.
func (m MemberInput) usable() bool {
	return m.Enabled && m.Mark == MarkNone && m.Weight > 0 && (!m.Monitored || m.Health.Up())
}

// PlanPool decides every member's VPP backend and status string. It is the
// single truth table from (admin state, mark, health, backup) to (weight,
// flush, string):
//
//   - disabled or maintenance-marked: removed from VPP (flush), "MAINT";
//   - drain-marked: weight 0 without flush, "DRAIN" (or the health string
//     while the member is down);
//   - down: weight 0 with flush (rise/fall already debounced flaps);
//   - never probed: weight 0 without flush;
//   - up (or unmonitored) with configured weight 0: weight 0, "DRAIN";
//   - up (or unmonitored): the configured weight, except that a backup
//     member gets weight 0 (no flush) while any non-backup member is usable.
//
// A pool without members is DOWN when monitored and UP otherwise.
func PlanPool(monitored, enabled bool, members []MemberInput) PoolPlan {
	return planPoolInto(nil, monitored, enabled, members)
}

// planPoolInto is PlanPool with the member plans appended to dst[:0].
func planPoolInto(dst []MemberPlan, monitored, enabled bool, members []MemberInput) PoolPlan {
	primaryUp := false
	for _, m := range members {
		if !m.Backup && enabled && m.usable() {
			primaryUp = true
		}
	}
	if dst == nil {
		dst = make([]MemberPlan, 0, len(members))
	}
	p := PoolPlan{Members: dst[:0], AllKnown: true}
	for _, m := range members {
		mp := MemberPlan{ID: m.ID, Backend: vpp.Backend{Addr: m.Addr}, Known: true}
		health := StatusNoCheck
		up := true
		if m.Monitored {
			health, up = m.Health.Status(), m.Health.Up()
			mp.Known = m.Health.Probed
		}
		switch {
		case !enabled || !m.Enabled || m.Mark == MarkMaint:
			mp.Status = StatusMaint
			mp.Known = true
		case !mp.Known:
			mp.InVPP = true
			mp.Status = health
		case !up:
			mp.InVPP = true
			mp.Backend.Flush = true
			mp.Status = health
		case m.Mark == MarkDrain || m.Weight == 0:
			mp.InVPP = true
			mp.Status = StatusDrain
		case m.Backup && primaryUp:
			mp.InVPP = true
			mp.Status = health
		default:
			mp.InVPP = true
			mp.Backend.Weight = m.Weight
			mp.Status = health
		}
		if !mp.Known {
			p.AllKnown = false
		}
		if mp.Backend.Weight > 0 {
			p.Serving++
		}
		p.Members = append(p.Members, mp)
	}
	p.Status = StatusDown
	if p.Serving > 0 || (!monitored && enabled) {
		p.Status = StatusUp
	}
	return p
}

// Backends returns the VPP backends of a plan (members removed from VPP are
// left out, which makes SyncVIP remove them with a flush).
func (p PoolPlan) Backends() []vpp.Backend {
	n := 0
	for _, m := range p.Members {
		if m.InVPP {
			n++
		}
	}
	if n == 0 {
		return nil
	}
	return p.appendBackends(make([]vpp.Backend, 0, n))
}

// appendBackends appends the backends of the members in VPP to dst.
func (p PoolPlan) appendBackends(dst []vpp.Backend) []vpp.Backend {
	for _, m := range p.Members {
		if m.InVPP {
			dst = append(dst, m.Backend)
		}
	}
	return dst
}

// ListenerState is a listener's aggregate state.
type ListenerState uint8

// Listener states, as vpp-maglev's frontend state: up when at least one
// member takes new flows, unknown while no member has a result yet, down
// otherwise.
const (
	ListenerUnknown ListenerState = iota
	ListenerUp
	ListenerDown
)

func (s ListenerState) String() string {
	switch s {
	case ListenerUp:
		return "up"
	case ListenerDown:
		return "down"
	}
	return "unknown"
}

// ListenerStateOf derives a listener's state from its pool plan. hasPool
// is false for a listener without a (enabled) default pool, which is down.
func ListenerStateOf(hasPool bool, p PoolPlan) ListenerState {
	if !hasPool {
		return ListenerDown
	}
	if p.Serving > 0 {
		return ListenerUp
	}
	for _, m := range p.Members {
		if m.Known {
			return ListenerDown
		}
	}
	if len(p.Members) == 0 {
		return ListenerDown
	}
	return ListenerUnknown
}

// Warmup decides when a VIP's weights may first be written after start.
type Warmup struct {
	// MinDelay: nothing is written before it (default 5s).
	MinDelay time.Duration
	// MaxDelay: everything is written after it, probe results or not
	// (default 30s).
	MaxDelay time.Duration
}

// Release reports whether a VIP may be written elapsed after start, given
// whether every member of it has a first probe result.
func (w Warmup) Release(elapsed time.Duration, allKnown bool) bool {
	if elapsed < w.MinDelay {
		return false
	}
	return allKnown || elapsed >= w.MaxDelay
}
