package healthdb

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

func (d *Decision) abort(r AbortReason, where string) {
	d.Abort, d.AbortedAt = r, where
}
