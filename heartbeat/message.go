package heartbeat

import (
	"strings"
	"time"
)

// Message is one decoded heartbeat, for every message version.
//
// Collections keep the datagram's JSON order. Within one JSON object a
// repeated key keeps its first position and its last value, as Python's
// dict does when json.loads builds it.
type Message struct {
	// AmphoraID is "id".
	AmphoraID string
	// AmphoraIDLoneSurrogate tells that "id" held a lone UTF-16 surrogate
	// escape, which AmphoraID carries as U+FFFD. Python keeps the
	// surrogate, and Octavia's database driver then fails to encode the
	// id: that heartbeat's statistics are never written.
	AmphoraIDLoneSurrogate bool
	// IDProblem says how "id" differs from a string; Octavia's two paths
	// react differently (see IDProblem). AmphoraID is "" unless it is a
	// string.
	IDProblem IDProblem
	// Seq is "seq"; the controller never reads it.
	Seq    int64
	HasSeq bool
	// Version is "ver", 0 when absent. HasVersion tells "ver": 0 from no
	// "ver" at all, which Octavia's versionless-UDP rule depends on; it is
	// true for any "ver" key, null included.
	//
	// Octavia only ever compares "ver" with 2 and 3, so Version keeps what
	// those comparisons need: a non-integer number is rounded down, an
	// integer beyond int64 is clamped, true and false are 1 and 0 (as in
	// Python). VersionNotComparable is set for null, a string, an array or
	// an object, which Python refuses to compare with an integer.
	// VersionNaN is set for NaN, which compares false with everything:
	// such a message has neither per-listener nor top-level pools.
	Version              int64
	HasVersion           bool
	VersionNotComparable bool
	VersionNaN           bool
	// Listeners is "listeners" when it is an object.
	Listeners []Listener
	// ListenersAbsent tells that there is no "listeners" key, and
	// ListenersOdd describes a "listeners" that is not an object.
	ListenersAbsent bool
	ListenersOdd    NonObject
	// Pools is the top-level "pools" of version 2 and later, keyed
	// "<pool_id>:<listener_id>", or by the bare pool id for LVS listeners.
	// It is nil before version 2, where pools sit under each listener.
	Pools []Pool
	// PoolsAbsent tells that a version 2 or later message has no "pools"
	// key, PoolsNotObject that its "pools" is not an object.
	PoolsAbsent    bool
	PoolsNotObject bool
	// Timestamp is "ts", the sender's Unix time in seconds when it sealed
	// the message, and Boot is "boot", an id the sender draws at each
	// start. Our agent adds both for the replay guard (ReplayGuard);
	// Octavia's agents never send them and Octavia ignores them.
	Timestamp    int64
	HasTimestamp bool
	Boot         string
	HasBoot      bool
	// Irregularity is the first field, in document order, that is missing
	// or of another type than a well-formed heartbeat has; nil when there
	// is none. The message is still applied as Octavia applies it; strict
	// mode rejects it with this error.
	Irregularity *Error
	// RecvTime is when the receiver read the datagram. It is stamped by the
	// receiver, never taken from the datagram (Octavia overwrites a
	// sender-supplied "recv_time" too).
	RecvTime time.Time
}

// Listener is one entry of "listeners".
type Listener struct {
	ID string
	// IDLoneSurrogate tells that the key held a lone UTF-16 surrogate
	// escape, which ID carries as U+FFFD; Octavia cannot write statistics
	// for such a listener (see Message.AmphoraIDLoneSurrogate).
	IDLoneSurrogate bool
	// NotObject tells that the listener's value is not an object (Octavia's
	// status and stats paths both fail on it), Empty that it is {} (which
	// Python finds false: Octavia then skips the listener's pools).
	NotObject bool
	Empty     bool
	// Status is "status" when it is a string: OPEN, FULL, STOP, DOWN, ...
	// StatusOdd is the kind of a "status" that is absent or not a string;
	// Octavia logs it as an unknown status.
	Status    string
	StatusOdd Kind
	Stats     Stats
	// HasStats tells whether the listener carried "stats" as an object.
	// Octavia's health procedure never reads them, so a listener without
	// them is valid; its stats path, though, drops the statistics of the
	// whole message then.
	HasStats bool
	// StatsUnwritable names the first counter that Octavia's stats_db
	// cannot store (absent, null, a string, a boolean, an array, an object,
	// or beyond int64), with why. Octavia's write of this listener's row
	// fails, and with it the rest of the message's statistics.
	StatsUnwritable string
	// StatsUnwritableMySQL is StatsUnwritable on MySQL/MariaDB: there a
	// boolean counter is stored as 0 or 1 (PyMySQL renders it so) and
	// Stats holds that value; everything else is refused as on
	// PostgreSQL.
	StatsUnwritableMySQL string
	// Pools holds the listener's pools before version 2.
	Pools []Pool
	// HasPools tells whether a pre-version-2 listener carried a "pools" key
	// at all: Rocky agents leave it out for a UDP listener whose pool state
	// they could not read, and Octavia's status procedure reacts to that.
	// PoolsNotObject tells that it is there but not an object.
	HasPools       bool
	PoolsNotObject bool
}

// Stats is a listener's "stats". From version 3 on, RX, TX, TotConns and
// EReq are deltas since the previous heartbeat; Conns is always a gauge.
type Stats struct {
	TX       int64 // bytes sent ("tx")
	RX       int64 // bytes received ("rx")
	Conns    int64 // current connections ("conns")
	TotConns int64 // connections ("totconns")
	EReq     int64 // request errors ("ereq")
}

// Pool is one entry of a "pools" object.
type Pool struct {
	// Key is the key as sent; ID() normalises it to a pool id.
	Key string
	// NotObject tells that the pool's value is not an object.
	NotObject bool
	// Status is "status" when it is a string (UP, DOWN, ...); StatusOdd is
	// the kind of one that is absent or not a string.
	Status    string
	StatusOdd Kind
	// Members is "members" when it is an object. MembersAbsent tells there
	// is no "members" key, MembersOdd describes one that is not an object.
	Members       []Member
	MembersAbsent bool
	MembersOdd    NonObject
}

// Member is one entry of a pool's "members".
type Member struct {
	ID string
	// Status is the member's status when it is a string: UP, UP 1/3, DOWN,
	// DRAIN, MAINT, no check, ... StatusOdd is the kind of one that is not.
	Status    string
	StatusOdd Kind
}

// IDProblem says what is wrong with a heartbeat's "id".
type IDProblem uint8

const (
	// IDString: "id" is a string (possibly empty).
	IDString IDProblem = iota
	// IDAbsent: no "id" key. Octavia's status path fails before reading
	// anything; its stats path files the statistics under the listener id,
	// as it does for an empty id.
	IDAbsent
	// IDNull: null. The status path finds no amphora row and writes
	// nothing; the stats path behaves as for IDAbsent.
	IDNull
	// IDFalsy: false, 0, an empty array or object. The status path writes
	// nothing (the database driver fails on it); the stats path behaves as
	// for IDAbsent.
	IDFalsy
	// IDTruthy: any other non-string. The status path writes nothing; the
	// stats path fails on the first listener's row, writing none.
	IDTruthy
)

// Kind is the JSON type of a value, for the fields Octavia tolerates in
// odd shapes. The zero value, KindNormal, is the type the field should have.
type Kind uint8

const (
	KindNormal Kind = iota
	KindAbsent
	KindNull
	KindBool
	KindNumber
	KindString
	KindArray
	KindObject
)

func (k Kind) String() string {
	switch k {
	case KindNormal:
		return "normal"
	case KindAbsent:
		return "absent"
	case KindNull:
		return "null"
	case KindBool:
		return "a boolean"
	case KindNumber:
		return "a number"
	case KindString:
		return "a string"
	case KindArray:
		return "an array"
	case KindObject:
		return "an object"
	}
	return "unknown"
}

// NonObject describes a value that should be an object (a dict to Octavia)
// but is not. Octavia's code takes its len() and tests "key in value", which
// Python answers for a string (substring) and an array (equal element) and
// refuses for anything else; any indexing by key then fails.
type NonObject struct {
	// Kind is KindNormal when the value is an object (or absent).
	Kind Kind
	// Strings are an array's string elements; Text is a string's value.
	Strings []string
	Text    string
	// Len is Python's len(): an array's elements, a string's code points.
	Len int
}

// Sized tells whether Python's len() accepts the value.
func (v *NonObject) Sized() bool { return v.Kind == KindArray || v.Kind == KindString }

// Contains is Python's "key in value"; ok is false where Python raises
// TypeError (null, a boolean, a number).
func (v *NonObject) Contains(key string) (found, ok bool) {
	switch v.Kind {
	case KindArray:
		for _, s := range v.Strings {
			if s == key {
				return true, true
			}
		}
		return false, true
	case KindString:
		return strings.Contains(v.Text, key), true
	}
	return false, false
}

// StatsAreDeltas reports whether the listener stats are increments, as
// Octavia's update_stats decides it: a missing "ver" counts as 2 there.
// (With VersionNotComparable, update_stats fails before any driver runs.)
func (m *Message) StatsAreDeltas() bool {
	return m.HasVersion && !m.VersionNotComparable && !m.VersionNaN && m.Version >= 3
}

// PoolsPerListener reports whether pools sit under each listener, as
// Octavia's update_health decides it: a missing "ver" counts as 0 there.
// (With VersionNotComparable, Octavia fails at that comparison.)
func (m *Message) PoolsPerListener() bool { return !m.VersionNaN && m.Version < 2 }

// PoolsTopLevel reports whether Octavia's update_health reads the top-level
// "pools": "ver" is 2 or more. For a well-formed message it is the opposite
// of PoolsPerListener; a NaN "ver" has neither.
func (m *Message) PoolsTopLevel() bool {
	return !m.VersionNaN && !m.VersionNotComparable && m.Version >= 2
}

// ID returns the pool id Octavia derives from the key: everything before the
// last ':', or the whole key when it has none. "P:x:L" gives "P:x", which
// matches no pool; ":" gives "".
func (p *Pool) ID() string { return PoolIDFromKey(p.Key) }

// PoolIDFromKey is Pool.ID for a bare key.
func PoolIDFromKey(key string) string {
	for i := len(key) - 1; i >= 0; i-- {
		if key[i] == ':' {
			return key[:i]
		}
	}
	return key
}

// NormalizePools collapses pools whose keys normalise to the same pool id,
// keeping, as Octavia does, the value of the last one in the datagram's
// order at the position of the first. The keys of the result are pool ids.
// The input is not modified.
func NormalizePools(pools []Pool) []Pool {
	out := make([]Pool, 0, len(pools))
	var index map[string]int
	for _, p := range pools {
		id := p.ID()
		p.Key = id
		if i := findKey(out, id, &index, nil, func(q *Pool) string { return q.Key }); i >= 0 {
			out[i] = p
			continue
		}
		out = append(out, p)
	}
	return out
}

// linearScanMax is how many entries a duplicate-key check scans before it
// builds a map: real messages are small, hostile ones must not go quadratic.
const linearScanMax = 16

// findKey returns the index of the item with the given key, or -1, in which
// case the caller appends the item. It scans small slices and indexes large
// ones lazily; once indexed, a miss records the position the caller is about
// to append at.
//
// scratch, when not nil, lends an empty map to reuse for the index, and
// keeps the one made when it lends none.
func findKey[T any](items []T, key string, index *map[string]int, scratch func() *map[string]int, keyOf func(*T) string) int {
	if *index == nil {
		if len(items) < linearScanMax {
			for i := range items {
				if keyOf(&items[i]) == key {
					return i
				}
			}
			return -1
		}
		var lent *map[string]int
		if scratch != nil {
			lent = scratch()
		}
		switch {
		case lent == nil:
			*index = make(map[string]int, 2*len(items))
		case *lent == nil:
			*index = make(map[string]int, 2*len(items))
			*lent = *index
		default:
			*index = *lent
			if len(*index) > 0 { // the previous collection of this level
				clear(*index)
			}
		}
		for i := range items {
			(*index)[keyOf(&items[i])] = i
		}
	}
	if i, ok := (*index)[key]; ok {
		return i
	}
	(*index)[key] = len(items) // the caller appends it next
	return -1
}
