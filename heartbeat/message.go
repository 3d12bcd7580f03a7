package heartbeat

import "time"

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
	// Seq is "seq"; the controller never reads it.
	Seq    int64
	HasSeq bool
	// Version is "ver", 0 when absent. HasVersion tells "ver": 0 from no
	// "ver" at all, which Octavia's versionless-UDP rule depends on.
	Version    int64
	HasVersion bool
	// Listeners is "listeners".
	Listeners []Listener
	// Pools is the top-level "pools" of version 2 and later, keyed
	// "<pool_id>:<listener_id>", or by the bare pool id for LVS listeners.
	// It is nil before version 2, where pools sit under each listener.
	Pools []Pool
	// Timestamp is "ts", the sender's Unix time in seconds when it sealed
	// the message, and Boot is "boot", an id the sender draws at each
	// start. Our agent adds both for the replay guard (ReplayGuard);
	// Octavia's agents never send them and Octavia ignores them.
	Timestamp    int64
	HasTimestamp bool
	Boot         string
	HasBoot      bool
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
	Status          string // OPEN, FULL, STOP, DOWN, ...
	Stats           Stats
	// HasStats tells whether the listener carried "stats". Octavia's health
	// procedure never reads them, so a listener without them is valid; its
	// stats path, though, drops the statistics of the whole message then.
	HasStats bool
	// Pools holds the listener's pools before version 2.
	Pools []Pool
	// HasPools tells whether a pre-version-2 listener carried a "pools" key
	// at all: Rocky agents leave it out for a UDP listener whose pool state
	// they could not read, and Octavia's status procedure reacts to that.
	HasPools bool
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
	Key     string
	Status  string // UP, DOWN, ...
	Members []Member
}

// Member is one entry of a pool's "members".
type Member struct {
	ID     string
	Status string // UP, UP 1/3, DOWN, DRAIN, MAINT, no check, ...
}

// StatsAreDeltas reports whether the listener stats are increments, as
// Octavia's update_stats decides it: a missing "ver" counts as 2 there.
func (m *Message) StatsAreDeltas() bool { return m.HasVersion && m.Version >= 3 }

// PoolsPerListener reports whether pools sit under each listener, as
// Octavia's update_health decides it: a missing "ver" counts as 0 there.
func (m *Message) PoolsPerListener() bool { return m.Version < 2 }

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
		if i := findKey(out, id, &index, func(q *Pool) string { return q.Key }); i >= 0 {
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
func findKey[T any](items []T, key string, index *map[string]int, keyOf func(*T) string) int {
	if *index == nil {
		if len(items) < linearScanMax {
			for i := range items {
				if keyOf(&items[i]) == key {
					return i
				}
			}
			return -1
		}
		*index = make(map[string]int, 2*len(items))
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
