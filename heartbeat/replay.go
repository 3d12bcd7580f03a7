package heartbeat

import (
	"hash/maphash"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ReplayGuard rejects replayed heartbeats of senders that stamp them with
// "ts" and "boot" (our agent does; Octavia's agents do not, and their
// messages pass unchecked). With a window of S seconds a stamped message is
// accepted only when
//
//   - "ts" lies within ±S seconds of the receiver's clock, and
//   - ("boot", "seq") is newer than the last message this guard accepted
//     for the amphora: the same boot with a greater seq, or a boot it has
//     not seen for that amphora yet (a restarted agent counts its seq from
//     0 again under a fresh boot). A boot that was replaced by a later one
//     stays refused, so a captured message of the previous run cannot
//     reset the sequence.
//
// The guard remembers one entry per amphora and forgets an amphora not
// heard from for 2×S: by then every message it accepted from it is outside
// the window, so the window alone refuses their replays (the same holds
// after a restart, when it remembers nothing). Memory is bounded by the
// entry limit; when it is reached, the amphora heard from least recently
// is forgotten first.
//
// A ReplayGuard is safe for concurrent use by the receiver's workers.
type ReplayGuard struct {
	window     atomic.Int64 // nanoseconds; 0 disables the guard
	seed       maphash.Seed
	shards     [replayShards]replayShard
	maxEntries int // per shard
}

// replayShards spreads the amphorae over several locks so the workers
// rarely wait for each other.
const replayShards = 16

// DefaultReplayEntries bounds the amphorae a guard remembers.
const DefaultReplayEntries = 1 << 18

// maxBootLen bounds a remembered "boot"; our agent sends 32 hex digits.
const maxBootLen = 64

// retiredBoots is how many replaced boots an entry keeps refusing.
const retiredBoots = 4

type replayShard struct {
	mu        sync.Mutex
	entries   map[string]*replayEntry
	lastSweep time.Time
}

type replayEntry struct {
	boot    string
	seq     int64
	retired [retiredBoots]string // most recent first
	seen    time.Time            // receiver's clock, for eviction
}

// NewReplayGuard returns a guard with the given window (0 disables it)
// that remembers at most maxEntries amphorae (DefaultReplayEntries when
// maxEntries <= 0).
func NewReplayGuard(window time.Duration, maxEntries int) *ReplayGuard {
	if maxEntries <= 0 {
		maxEntries = DefaultReplayEntries
	}
	g := &ReplayGuard{seed: maphash.MakeSeed(), maxEntries: max(maxEntries/replayShards, 1)}
	for i := range g.shards {
		g.shards[i].entries = map[string]*replayEntry{}
	}
	g.SetWindow(window)
	return g
}

// SetWindow changes the window (a reload). Turning the guard off forgets
// every amphora; turning it on starts from nothing, which the window
// covers.
func (g *ReplayGuard) SetWindow(window time.Duration) {
	window = max(window, 0)
	if old := g.window.Swap(int64(window)); old != 0 && window == 0 {
		for i := range g.shards {
			s := &g.shards[i]
			s.mu.Lock()
			clear(s.entries)
			s.mu.Unlock()
		}
	}
}

// Window returns the current window; 0 means off.
func (g *ReplayGuard) Window() time.Duration { return time.Duration(g.window.Load()) }

// Check accepts or rejects a message received at now (the receiver's
// clock). It returns nil to accept it, and then records it as the
// amphora's latest; a rejection is an *Error with one of the replay
// reasons and changes nothing.
func (g *ReplayGuard) Check(m *Message, now time.Time) error {
	window := time.Duration(g.window.Load())
	if window <= 0 {
		return nil
	}
	if !m.HasTimestamp && !m.HasBoot {
		return nil // a stock Octavia message: nothing to check it by
	}
	if err := replayFieldsError(m); err != nil {
		err.Detail = "amphora " + strconv.Quote(m.AmphoraID) + ": " + err.Detail
		return err
	}
	// Both sides count whole seconds: the sender truncates "ts", the
	// receiver's clock is truncated alike.
	span := int64((window + time.Second - 1) / time.Second)
	if nowSec := now.Unix(); m.Timestamp < nowSec-span || m.Timestamp > nowSec+span {
		return &Error{Reason: ReasonReplayWindow,
			Detail: "amphora " + strconv.Quote(m.AmphoraID) + ": ts " + strconv.FormatInt(m.Timestamp, 10) + " is outside ±" + strconv.FormatInt(span, 10) +
				"s of the receiver's clock (" + strconv.FormatInt(nowSec, 10) + ")"}
	}
	shard := &g.shards[maphash.String(g.seed, m.AmphoraID)%replayShards]
	shard.mu.Lock()
	defer shard.mu.Unlock()
	if e := shard.entries[m.AmphoraID]; e != nil {
		if err := e.newer(m); err != nil {
			err.Detail = "amphora " + strconv.Quote(m.AmphoraID) + ": " + err.Detail
			return err
		}
		e.accept(m, now)
		return nil
	}
	g.makeRoom(shard, now, 2*window)
	e := &replayEntry{}
	e.accept(m, now)
	// The decoded id may share the whole message's text; the entry must
	// not keep that alive.
	shard.entries[strings.Clone(m.AmphoraID)] = e
	return nil
}

func replayFieldsError(m *Message) *Error {
	switch {
	case !m.HasTimestamp || !m.HasBoot || !m.HasSeq:
		return &Error{Reason: ReasonReplayFields, Detail: `"ts", "boot" and "seq" go together`}
	case m.Boot == "" || len(m.Boot) > maxBootLen:
		return &Error{Reason: ReasonReplayFields,
			Detail: "boot must be 1 to " + strconv.Itoa(maxBootLen) + " bytes, not " + strconv.Itoa(len(m.Boot))}
	}
	return nil
}

// newer tells whether m follows the entry's last accepted message.
func (e *replayEntry) newer(m *Message) *Error {
	if m.Boot == e.boot {
		if m.Seq > e.seq {
			return nil
		}
		return &Error{Reason: ReasonReplayNotNewer,
			Detail: "seq " + strconv.FormatInt(m.Seq, 10) + " is not after seq " + strconv.FormatInt(e.seq, 10) + " of the same boot"}
	}
	for _, b := range e.retired {
		if b == m.Boot {
			return &Error{Reason: ReasonReplayNotNewer, Detail: "boot " + strconv.Quote(m.Boot) + " was replaced by a later one"}
		}
	}
	return nil
}

func (e *replayEntry) accept(m *Message, now time.Time) {
	if e.boot != "" && e.boot != m.Boot {
		copy(e.retired[1:], e.retired[:])
		e.retired[0] = e.boot
	}
	if e.boot != m.Boot {
		e.boot = strings.Clone(m.Boot)
	}
	e.seq, e.seen = m.Seq, now
}

// makeRoom forgets the amphorae idle for longer than idle, at most once
// per idle period so that the scan is amortised over many messages, and
// when the shard is still full, the one heard from least recently.
func (g *ReplayGuard) makeRoom(s *replayShard, now time.Time, idle time.Duration) {
	full := len(s.entries) >= g.maxEntries
	if !full && now.Sub(s.lastSweep) < idle {
		return
	}
	s.lastSweep = now
	var oldestID string
	var oldest time.Time
	found := false
	for id, e := range s.entries {
		if now.Sub(e.seen) > idle {
			delete(s.entries, id)
			continue
		}
		if !found || e.seen.Before(oldest) {
			oldestID, oldest, found = id, e.seen, true
		}
	}
	if found && len(s.entries) >= g.maxEntries {
		delete(s.entries, oldestID)
	}
}

// Len returns how many amphorae the guard remembers.
func (g *ReplayGuard) Len() int {
	n := 0
	for i := range g.shards {
		s := &g.shards[i]
		s.mu.Lock()
		n += len(s.entries)
		s.mu.Unlock()
	}
	return n
}
