package healthdb

import (
	"time"

	"github.com/octavia-vpp/health/heartbeat"
)

// Octavia's status strings, as stored in the operating_status columns.
const (
	StatusOnline    = "ONLINE"
	StatusOffline   = "OFFLINE"
	StatusDegraded  = "DEGRADED"
	StatusError     = "ERROR"
	StatusDraining  = "DRAINING"
	StatusNoMonitor = "NO_MONITOR"
)

// ProtocolUDP is the listener protocol the versionless-UDP rule looks for.
const ProtocolUDP = "UDP"

// Topology is what the status procedure reads about one amphora: the
// amphora row and, when the amphora is live and attached to a live load
// balancer, that load balancer's graph (Octavia's get_lb_for_health_update).
type Topology struct {
	AmphoraID string
	// AmphoraExists is true when an amphora row exists in any status,
	// DELETED included.
	AmphoraExists bool
	// ComputeID is amphora.compute_id ("" for NULL); a zombie's compute
	// instance is deleted by it.
	ComputeID string
	// LB is nil when the amphora is DELETED, has no load balancer, or its
	// load balancer is DELETED: then the amphora is a zombie (or unknown).
	LB *LoadBalancer
}

// LoadBalancer is a live load balancer with its listeners and pools.
type LoadBalancer struct {
	ID                 string
	Enabled            bool
	ProvisioningStatus string
	OperatingStatus    string
	// Listeners in the order they are processed. Octavia takes SQL row
	// order, which is whatever plan the database picks; we take listener id
	// order so that a pre-V2 pool shared by two listeners and reported
	// differently under each always resolves the same way.
	Listeners []Listener
	// Pools are all pools of the load balancer, in pool id order.
	Pools []Pool
}

// Listener is one listener row.
type Listener struct {
	ID              string
	OperatingStatus string
	Protocol        string
	Enabled         bool
	// DefaultPoolHasEnabledMember is what the versionless-UDP rule asks of a
	// UDP listener: it has a default pool with at least one enabled member.
	DefaultPoolHasEnabledMember bool
}

// Pool is one pool row with its members (in member id order).
type Pool struct {
	ID              string
	OperatingStatus string
	Members         []Member
}

// Member is one member row.
type Member struct {
	ID              string
	OperatingStatus string
}

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

// AbortReason is where Octavia's procedure raises part-way through a
// heartbeat. The updates it made before that point stand; the rest of that
// heartbeat's updates (the load balancer's status among them) are not made.
type AbortReason uint8

const (
	AbortNone AbortReason = iota
	// AbortIDMissing, AbortIDNotString, AbortListenersMissing: before
	// anything is written (HealthSkipAborted).
	AbortIDMissing
	AbortIDNotString
	AbortListenersMissing
	// AbortListenersNotObject: "listeners" is not an object. Python cannot
	// take the length of null, a number or a boolean (before the health
	// write); of an array or a string it can, and then fails on indexing
	// it by the first database listener it appears to contain.
	AbortListenersNotObject
	// AbortListenerNotObject: a reported listener's value is not an object.
	AbortListenerNotObject
	// AbortVersionNotComparable: "ver" is null, a string, an array or an
	// object, which Python cannot compare with 2.
	AbortVersionNotComparable
	// AbortListenerPoolsMissing: a pre-version-2 listener has no "pools"
	// (Rocky agents send that for a UDP listener).
	AbortListenerPoolsMissing
	// AbortPoolsMissing: a version 2 or later message has no "pools".
	AbortPoolsMissing
	// AbortPoolsNotObject: a "pools" (top-level or a listener's) that is
	// not an object.
	AbortPoolsNotObject
	// AbortPoolNotObject: a reported pool of the load balancer is not an
	// object.
	AbortPoolNotObject
	// AbortMembersMissing, AbortMembersNotObject: a reported pool of the
	// load balancer without "members", or with "members" not an object
	// (for an array or a string, only once a database member appears in
	// it; for anything else, at the pool's first database member).
	AbortMembersMissing
	AbortMembersNotObject
	// AbortMemberStatusNotString: a database member's reported status is
	// not a string.
	AbortMemberStatusNotString
	abortReasonCount
)

var abortReasonNames = [abortReasonCount]string{
	AbortNone:                  "none",
	AbortIDMissing:             "id_missing",
	AbortIDNotString:           "id_not_string",
	AbortListenersMissing:      "listeners_missing",
	AbortListenersNotObject:    "listeners_not_object",
	AbortListenerNotObject:     "listener_not_object",
	AbortVersionNotComparable:  "ver_not_comparable",
	AbortListenerPoolsMissing:  "listener_pools_missing",
	AbortPoolsMissing:          "pools_missing",
	AbortPoolsNotObject:        "pools_not_object",
	AbortPoolNotObject:         "pool_not_object",
	AbortMembersMissing:        "members_missing",
	AbortMembersNotObject:      "members_not_object",
	AbortMemberStatusNotString: "member_status_not_string",
}

// String returns the stable label used in logs and metrics.
func (r AbortReason) String() string {
	if r < abortReasonCount {
		return abortReasonNames[r]
	}
	return "unknown"
}

// AbortReasons lists every reason but AbortNone, so that metrics can be
// created for each label up front.
func AbortReasons() []AbortReason {
	out := make([]AbortReason, 0, abortReasonCount-1)
	for r := AbortIDMissing; r < abortReasonCount; r++ {
		out = append(out, r)
	}
	return out
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

func (d *Decision) abort(r AbortReason, where string) {
	d.Abort, d.AbortedAt = r, where
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

// statusPass carries the state of steps 6 to 10 of the procedure.
type statusPass struct {
	d                *Decision
	lb               *LoadBalancer
	lbStatus         string
	processed        map[string]bool
	potentialOffline map[string]string
}

func (p *statusPass) change(list *[]StatusChange, id, from, to string) {
	if to != "" && !equalStatus(from, to) {
		*list = append(*list, StatusChange{ID: id, From: from, To: to})
	}
}

// listeners runs step 7; it reports false when Octavia would abort.
func (p *statusPass) listeners(msg *heartbeat.Message) bool {
	reported := make(map[string]*heartbeat.Listener, len(msg.Listeners))
	for i := range msg.Listeners {
		reported[msg.Listeners[i].ID] = &msg.Listeners[i]
	}
	odd := &msg.ListenersOdd
	for i := range p.lb.Listeners {
		l := &p.lb.Listeners[i]
		r, ok := reported[l.ID]
		if odd.Kind != heartbeat.KindNormal {
			// An array or a string (anything else failed the count):
			// Python's "in" may find the id, and indexing then fails.
			if found, _ := odd.Contains(l.ID); found {
				p.d.abort(AbortListenersNotObject, `"listeners" is `+odd.Kind.String()+" holding listener "+l.ID)
				return false
			}
		}
		if !ok {
			status := StatusOffline
			if l.Enabled && p.lb.ProvisioningStatus == "ACTIVE" {
				status = StatusError
			}
			p.change(&p.d.Listeners, l.ID, l.OperatingStatus, status)
			continue
		}
		if r.NotObject {
			p.d.abort(AbortListenerNotObject, "listener "+l.ID+" is not an object")
			return false
		}
		var status string
		switch r.Status { // an absent or non-string status is unknown: no change
		case "OPEN":
			status = StatusOnline
		case "FULL":
			status = StatusDegraded
			if p.lbStatus == StatusOnline {
				p.lbStatus = StatusDegraded
			}
		}
		p.change(&p.d.Listeners, l.ID, l.OperatingStatus, status)
		if r.Empty { // {} is false to Python: its pools are not looked at
			continue
		}
		if msg.VersionNotComparable {
			p.d.abort(AbortVersionNotComparable, `"ver" cannot be compared with 2`)
			return false
		}
		if msg.PoolsPerListener() {
			if !r.HasPools {
				p.d.abort(AbortListenerPoolsMissing, "listener "+l.ID+" reported no pools")
				return false
			}
			if r.PoolsNotObject {
				p.d.abort(AbortPoolsNotObject, "the pools of listener "+l.ID+" are not an object")
				return false
			}
			if !p.pools(heartbeat.NormalizePools(r.Pools)) {
				return false
			}
		}
	}
	return true
}

// pools runs pool processing for every database pool not yet processed;
// it reports false when Octavia would abort.
func (p *statusPass) pools(reported []heartbeat.Pool) bool {
	byID := make(map[string]*heartbeat.Pool, len(reported))
	for i := range reported {
		byID[reported[i].Key] = &reported[i]
	}
	if p.processed == nil {
		p.processed = make(map[string]bool, len(p.lb.Pools))
	}
	for i := range p.lb.Pools {
		pool := &p.lb.Pools[i]
		if p.processed[pool.ID] {
			continue
		}
		r, ok := byID[pool.ID]
		if !ok {
			p.potentialOffline[pool.ID] = pool.OperatingStatus
			continue
		}
		p.processed[pool.ID] = true
		if !p.pool(pool, r) {
			return false
		}
	}
	return true
}

// pool is Octavia's _process_pool_status for a reported pool; it reports
// false when Octavia would abort.
func (p *statusPass) pool(pool *Pool, r *heartbeat.Pool) bool {
	if r.NotObject {
		p.d.abort(AbortPoolNotObject, "pool "+pool.ID+" is not an object")
		return false
	}
	var status string
	switch r.Status { // an absent or non-string status is unknown
	case "UP":
		status = StatusOnline
	case "DOWN":
		status = StatusError
		p.lbStatus = StatusError
	}
	if r.MembersAbsent {
		p.d.abort(AbortMembersMissing, "pool "+pool.ID+" reported no members")
		return false
	}
	members := make(map[string]*heartbeat.Member, len(r.Members))
	for i := range r.Members {
		members[r.Members[i].ID] = &r.Members[i] // a repeated member id: the last one wins
	}
	odd := &r.MembersOdd
	for i := range pool.Members {
		m := &pool.Members[i]
		reported, ok := members[m.ID]
		if odd.Kind != heartbeat.KindNormal {
			found, sized := odd.Contains(m.ID)
			if !sized || found {
				p.d.abort(AbortMembersNotObject, "the members of pool "+pool.ID+" are "+odd.Kind.String())
				return false
			}
		}
		if ok && reported.StatusOdd != heartbeat.KindNormal {
			p.d.abort(AbortMemberStatusNotString, "member "+m.ID+" status is "+reported.StatusOdd.String())
			return false
		}
		var to string
		switch {
		case !ok:
			if m.OperatingStatus != StatusNoMonitor {
				to = StatusOffline
			}
		case hasPrefix(reported.Status, "UP"):
			to = StatusOnline
		case hasPrefix(reported.Status, "DOWN"):
			to = StatusError
			if status == StatusOnline {
				status = StatusDegraded
				if p.lbStatus == StatusOnline {
					p.lbStatus = StatusDegraded
				}
			}
		case reported.Status == "DRAIN":
			to = StatusDraining
		case reported.Status == "MAINT":
			to = StatusOffline
		case reported.Status == "no check":
			to = StatusNoMonitor
		}
		p.change(&p.d.Members, m.ID, m.OperatingStatus, to)
	}
	p.change(&p.d.Pools, pool.ID, pool.OperatingStatus, status)
	return true
}

func hasPrefix(s, prefix string) bool { return len(s) >= len(prefix) && s[:len(prefix)] == prefix }

// equalStatus is Octavia's "changed?" test, which ignores case.
func equalStatus(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
