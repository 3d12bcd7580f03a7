package healthdb

import (
	"time"

	"github.com/octavia-vpp/health/heartbeat"
)

// HealthOutcome says whether the heartbeat refreshes amphora_health, or why
// not.
type HealthOutcome uint8

const (
	// HealthWrite: the amphora_health row is upserted.
	HealthWrite HealthOutcome = iota
	// HealthSkipCountMismatch: the heartbeat reports a different number of
	// listeners than the database expects; statuses are still processed.
	HealthSkipCountMismatch
	// HealthSkipLate: the heartbeat waited heartbeat_interval or longer
	// before processing; nothing at all is written.
	HealthSkipLate
	// HealthSkipZombie: the amphora should not exist; its compute instance
	// is deleted instead (see Decision.DeleteComputeID).
	HealthSkipZombie
	// HealthSkipUnknown: no amphora row exists at all; nothing is written.
	HealthSkipUnknown
	// HealthSkipAborted: Octavia's procedure fails before the amphora_health
	// write (no "id", an "id" that is not a string, no "listeners", or a
	// "listeners" whose length Python cannot take); nothing is written.
	// Decision.Abort says why.
	HealthSkipAborted
	healthOutcomeCount
)

func (o HealthOutcome) String() string {
	switch o {
	case HealthWrite:
		return "written"
	case HealthSkipCountMismatch:
		return "listener_count_mismatch"
	case HealthSkipLate:
		return "too_late"
	case HealthSkipZombie:
		return "zombie"
	case HealthSkipUnknown:
		return "unknown_amphora"
	case HealthSkipAborted:
		return "aborted"
	}
	return "unknown"
}

// StatusChange is one operating_status update.
type StatusChange struct {
	ID   string
	From string
	To   string
}

// Decision is what one heartbeat does to the database.
type Decision struct {
	Health HealthOutcome
	// ExpectedListeners and ReportedListeners are the two sides of the
	// listener-count gate (Expected is -1 when the gate was not applied).
	ExpectedListeners, ReportedListeners int
	// Delay is how long the heartbeat waited before this decision.
	Delay time.Duration

	// DeleteComputeID is set for a zombie: delete this compute instance.
	// Octavia then stops; only if the delete fails does it go on, treating
	// the amphora as expecting no listeners. HealthIfDeleteFails is the
	// health outcome in that case (written when the heartbeat reports no
	// listeners and is not late; aborted when "listeners" is missing or
	// has no length, Abort then telling why).
	DeleteComputeID     string
	HealthIfDeleteFails HealthOutcome

	// The operating_status changes, each written only because it differs
	// (case-insensitively) from the database value, in the order Octavia
	// makes them.
	Listeners    []StatusChange
	Pools        []StatusChange
	Members      []StatusChange
	LoadBalancer *StatusChange

	// Abort is set when Octavia would raise part-way through the heartbeat
	// (see AbortReason), and AbortedAt then says where, for the log. The
	// health outcome and the changes above are those made before that
	// point, as they stand in Octavia.
	Abort     AbortReason
	AbortedAt string
}

// Rules carries the configuration the procedure depends on.
type Rules struct {
	// HeartbeatInterval is [health_manager] heartbeat_interval: a heartbeat
	// processed this long or longer after it was received is dropped.
	HeartbeatInterval time.Duration
}

// Decide runs Octavia 11's UpdateHealthDb.update_health for one heartbeat
// against one amphora's topology, at time now, and returns what it would
// write. It does no I/O.
//
// The message may have any shape the decoder keeps (see heartbeat.Message):
// where Octavia's code would raise, Decide stops at the same point, keeping
// what Octavia wrote before it. Listeners, pools and members are visited
// in the topology's order (id order, see LoadBalancer.Listeners), which is
// the only thing that decides how far a part-way heartbeat gets.
func Decide(topo *Topology, msg *heartbeat.Message, now time.Time, rules Rules) Decision {
	d := Decision{ReportedListeners: len(msg.Listeners), ExpectedListeners: -1, Delay: now.Sub(msg.RecvTime)}
	switch msg.IDProblem {
	case heartbeat.IDString:
	case heartbeat.IDAbsent:
		d.Health = HealthSkipAborted
		d.abort(AbortIDMissing, `no "id"`)
		return d
	case heartbeat.IDNull:
		// The lookup by a NULL id finds no amphora; no exception.
		d.Health = HealthSkipUnknown
		return d
	default:
		// The database driver fails on any other non-string.
		d.Health = HealthSkipAborted
		d.abort(AbortIDNotString, `"id" is not a string`)
		return d
	}
	lb := topo.LB
	if lb == nil {
		if !topo.AmphoraExists {
			d.Health = HealthSkipUnknown
			return d
		}
		d.Health = HealthSkipZombie
		d.DeleteComputeID = topo.ComputeID
		d.ExpectedListeners = 0
		if !d.listenerCount(msg) {
			d.HealthIfDeleteFails = HealthSkipAborted
			return d
		}
		d.HealthIfDeleteFails = countGate(&d, 0, false, rules)
		return d
	}

	ignoreCount := !lb.Enabled || containsPending(lb.ProvisioningStatus)
	expected := 0
	if !ignoreCount {
		for i := range lb.Listeners {
			if lb.Listeners[i].Enabled {
				expected++
			}
		}
		if !msg.HasVersion {
			expected -= versionlessUDPListeners(lb.Listeners)
		}
		d.ExpectedListeners = expected
	}
	if !d.listenerCount(msg) {
		d.Health = HealthSkipAborted
		return d
	}
	d.Health = countGate(&d, expected, ignoreCount, rules)
	if d.Health == HealthSkipLate {
		return d
	}

	p := statusPass{d: &d, lb: lb, lbStatus: StatusOnline, potentialOffline: map[string]string{}}
	if !lb.Enabled {
		p.lbStatus = StatusOffline
	}
	if !p.listeners(msg) {
		return d
	}
	if msg.VersionNotComparable {
		d.abort(AbortVersionNotComparable, `"ver" cannot be compared with 2`)
		return d
	}
	if msg.PoolsTopLevel() {
		switch {
		case msg.PoolsAbsent:
			d.abort(AbortPoolsMissing, `no "pools" from version 2 on`)
			return d
		case msg.PoolsNotObject:
			d.abort(AbortPoolsNotObject, `"pools" is not an object`)
			return d
		}
		if !p.pools(heartbeat.NormalizePools(msg.Pools)) {
			return d
		}
	}
	for i := range lb.Pools {
		pool := &lb.Pools[i]
		if dbStatus, ok := p.potentialOffline[pool.ID]; ok && !p.processed[pool.ID] {
			p.change(&d.Pools, pool.ID, dbStatus, StatusOffline)
		}
	}
	if !equalStatus(lb.OperatingStatus, p.lbStatus) {
		d.LoadBalancer = &StatusChange{ID: lb.ID, From: lb.OperatingStatus, To: p.lbStatus}
	}
	return d
}

// listenerCount reads "listeners" and takes its length as Octavia does,
// setting ReportedListeners; it reports false, with the abort recorded,
// where Octavia raises.
func (d *Decision) listenerCount(msg *heartbeat.Message) bool {
	switch {
	case msg.ListenersAbsent:
		d.abort(AbortListenersMissing, `no "listeners"`)
		return false
	case msg.ListenersOdd.Kind == heartbeat.KindNormal:
		d.ReportedListeners = len(msg.Listeners)
		return true
	case msg.ListenersOdd.Sized():
		d.ReportedListeners = msg.ListenersOdd.Len
		return true
	}
	d.abort(AbortListenersNotObject, `"listeners" is `+msg.ListenersOdd.Kind.String())
	return false
}

// countGate is the listener-count gate with its processing-delay check,
// which Octavia applies only when the count matches (or is ignored).
func countGate(d *Decision, expected int, ignoreCount bool, rules Rules) HealthOutcome {
	if d.ReportedListeners != expected && !ignoreCount {
		return HealthSkipCountMismatch
	}
	if d.Delay >= rules.HeartbeatInterval {
		return HealthSkipLate
	}
	return HealthWrite
}

func containsPending(s string) bool {
	const pending = "PENDING"
	for i := 0; i+len(pending) <= len(s); i++ {
		if s[i:i+len(pending)] == pending {
			return true
		}
	}
	return false
}

// versionlessUDPListeners counts the UDP listeners, enabled or not, that a
// Rocky agent would leave out because their default pool has no enabled
// member. Octavia subtracts them from the expected count even when they
// are disabled and were never counted.
func versionlessUDPListeners(listeners []Listener) int {
	n := 0
	for i := range listeners {
		if listeners[i].Protocol == ProtocolUDP && !listeners[i].DefaultPoolHasEnabledMember {
			n++
		}
	}
	return n
}
