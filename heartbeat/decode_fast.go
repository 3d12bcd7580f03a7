package heartbeat

import (
	"hash/maphash"
	"math/bits"
	"sync"
)

// decodeFast decodes, in one pass over the text and without a node tree,
// the messages amphorae actually send: version 2 or later, every string
// plain ASCII without escapes, every field of the type a well-formed
// heartbeat has, no unknown or repeated key, no listener "pools". Such a
// message has no irregularity, and decodeFast gives exactly the Message
// the general decoder (parseJSON + messageDecoder) gives for it. For
// anything else, including any text that is not JSON, it reports false
// and the caller runs the general decoder, which gives the precise
// rejection or records each irregularity; FuzzDecodeFast checks the two
// against each other.
//
// Text it accepts is ASCII, hence valid UTF-8: the caller may skip that
// check when it succeeds.
func decodeFast(text string) (*Message, bool) {
	if len(text) > maxJSONText { // spans are int32 offsets
		return nil, false
	}
	d := fastDecoders.Get().(*fastDecoder)
	msg, ok := d.message(text)
	d.release()
	return msg, ok
}

// fastDecoder is the state of one decodeFast, reused across messages.
type fastDecoder struct {
	text string
	pos  int
	// last is the string str read last.
	last span
	// The message's listeners and pools are gathered straight into the
	// message's own allocation (messageBlock), or into slices of their
	// own beyond two of each; members are gathered here, as offsets into
	// the text, and copied into an allocation of their exact size:
	// gathering them then stores no pointers, which a running garbage
	// collector would have to trace one by one.
	listeners []Listener
	pools     []Pool
	members   []memberSpan
	// poolEnds[i] is where pool i's members end in members.
	poolEnds []int
	// Keys seen in the object being read, to find repeated ones.
	listenerIDs, poolKeys, memberIDs keySet
}

// span is a string of the text, by offsets.
type span struct{ start, end int32 }

type memberSpan struct{ id, status span }

var fastDecoders = sync.Pool{New: func() any { return new(fastDecoder) }}

// maxPooledFast keeps one huge message from pinning the scratch arrays.
const maxPooledFast = 4096

func (d *fastDecoder) release() {
	// Emptied now, so that no string keeps this message's text alive.
	// The listeners and pools are the message's, not the decoder's.
	d.text = ""
	d.listeners, d.pools = nil, nil
	d.members, d.poolEnds = d.members[:0], d.poolEnds[:0]
	d.listenerIDs.reset()
	d.poolKeys.reset()
	d.memberIDs.reset()
	if cap(d.members) > maxPooledFast {
		return
	}
	fastDecoders.Put(d)
}

// messageBlock holds a message with room for its listeners and pools, in
// one allocation for the usual few of each.
type messageBlock struct {
	msg       Message
	listeners [2]Listener
	pools     [2]Pool
}

func (d *fastDecoder) message(text string) (*Message, bool) {
	d.text, d.pos = text, 0
	// Allocated first, so that listeners and pools are written where they
	// stay, not copied there (a copy of values holding strings goes
	// through write barriers); a message the fast path gives up on
	// leaves it to the garbage collector.
	b := new(messageBlock)
	d.listeners, d.pools = b.listeners[:0], b.pools[:0]
	var (
		id, boot                              string
		seq, ver, ts                          int64
		hasID, hasSeq, hasVer, hasTS, hasBoot bool
		hasListeners, hasPools                bool
	)
	d.space()
	if !d.open('{') {
		return nil, false
	}
	for {
		key, ok := d.key()
		if !ok {
			return nil, false
		}
		// Each field at most once: a repeated key is resolved by the
		// general decoder.
		switch key {
		case "id":
			ok = !hasID
			hasID = true
			if ok {
				id, ok = d.str()
			}
		case "seq":
			ok = !hasSeq
			hasSeq = true
			if ok {
				seq, ok = d.integer()
			}
		case "ver":
			ok = !hasVer
			hasVer = true
			if ok {
				ver, ok = d.integer()
			}
		case "listeners":
			ok = !hasListeners && d.listenerList()
			hasListeners = true
		case "pools":
			ok = !hasPools && d.poolList()
			hasPools = true
		case "ts":
			ok = !hasTS
			hasTS = true
			if ok {
				ts, ok = d.integer()
			}
		case "boot":
			ok = !hasBoot
			hasBoot = true
			if ok {
				boot, ok = d.str()
			}
		default:
			ok = false
		}
		if !ok {
			return nil, false
		}
		more, ok := d.next('}')
		if !ok {
			return nil, false
		}
		if !more {
			break
		}
	}
	d.space()
	if d.pos != len(d.text) || !hasID || !hasVer || ver < 2 || !hasListeners || !hasPools {
		return nil, false
	}

	msg := &b.msg
	msg.AmphoraID = id
	msg.Seq, msg.HasSeq = seq, hasSeq
	msg.Version, msg.HasVersion = ver, true
	msg.Timestamp, msg.HasTimestamp = ts, hasTS
	msg.Boot, msg.HasBoot = boot, hasBoot
	msg.Listeners = d.listeners[:len(d.listeners):len(d.listeners)]
	msg.Pools = d.pools[:len(d.pools):len(d.pools)]
	members := make([]Member, len(d.members))
	for i, m := range d.members {
		// Field by field: the slice is fresh, hence zero, and a whole
		// Member assigned here would be zeroed again first (StatusOdd is
		// not set), through the write barrier while the collector runs.
		members[i].ID = text[m.id.start:m.id.end]
		members[i].Status = text[m.status.start:m.status.end]
	}
	from := 0
	for i, end := range d.poolEnds {
		msg.Pools[i].Members = members[from:end:end]
		from = end
	}
	return msg, true
}

// listenerList reads "listeners": listener id → {"status": ..., "stats": {...}}.
func (d *fastDecoder) listenerList() bool {
	if !d.open('{') {
		return false
	}
	if d.closeEmpty('}') {
		return true
	}
	for {
		id, ok := d.key()
		if !ok || !d.listenerIDs.add(d.text, d.last) || !d.open('{') {
			return false
		}
		l := Listener{ID: id}
		hasStatus := false
		for {
			key, ok := d.key()
			if !ok {
				return false
			}
			switch {
			case key == "status" && !hasStatus:
				l.Status, hasStatus = d.str()
				if !hasStatus {
					return false
				}
			case key == "stats" && !l.HasStats:
				if l.Stats, ok = d.stats(); !ok {
					return false
				}
				l.HasStats = true
			default:
				return false
			}
			more, ok := d.next('}')
			if !ok {
				return false
			}
			if !more {
				break
			}
		}
		if !hasStatus {
			return false
		}
		d.listeners = append(d.listeners, l)
		more, ok := d.next('}')
		if !ok {
			return false
		}
		if !more {
			return true
		}
	}
}

// stats reads a listener's five counters, all integers.
func (d *fastDecoder) stats() (Stats, bool) {
	var s Stats
	if !d.open('{') {
		return s, false
	}
	var seen uint8
	for {
		key, ok := d.key()
		if !ok {
			return s, false
		}
		var target *int64
		var bit uint8
		switch key {
		case "tx":
			target, bit = &s.TX, 1
		case "rx":
			target, bit = &s.RX, 2
		case "conns":
			target, bit = &s.Conns, 4
		case "totconns":
			target, bit = &s.TotConns, 8
		case "ereq":
			target, bit = &s.EReq, 16
		default:
			return s, false
		}
		if seen&bit != 0 {
			return s, false
		}
		seen |= bit
		if *target, ok = d.integer(); !ok {
			return s, false
		}
		more, ok := d.next('}')
		if !ok {
			return s, false
		}
		if !more {
			return s, seen == 31
		}
	}
}

// poolList reads the top-level "pools": key → {"status": ..., "members": {...}}.
func (d *fastDecoder) poolList() bool {
	if !d.open('{') {
		return false
	}
	if d.closeEmpty('}') {
		return true
	}
	for {
		key, ok := d.key()
		if !ok || !d.poolKeys.add(d.text, d.last) || !d.open('{') {
			return false
		}
		p := Pool{Key: key}
		hasStatus, hasMembers := false, false
		for {
			field, ok := d.key()
			if !ok {
				return false
			}
			switch {
			case field == "status" && !hasStatus:
				if p.Status, hasStatus = d.str(); !hasStatus {
					return false
				}
			case field == "members" && !hasMembers:
				if hasMembers = d.memberList(); !hasMembers {
					return false
				}
			default:
				return false
			}
			more, ok := d.next('}')
			if !ok {
				return false
			}
			if !more {
				break
			}
		}
		if !hasStatus || !hasMembers {
			return false
		}
		d.pools = append(d.pools, p)
		d.poolEnds = append(d.poolEnds, len(d.members))
		more, ok := d.next('}')
		if !ok {
			return false
		}
		if !more {
			return true
		}
	}
}

// memberList reads a pool's "members": member id → status string.
func (d *fastDecoder) memberList() bool {
	if !d.open('{') {
		return false
	}
	d.memberIDs.reset()
	if d.closeEmpty('}') {
		return true
	}
	// The loop most of a message goes through, with the position in a
	// local: "<id>": "<status>", then ", " or the closing brace.
	text, pos := d.text, d.pos
	for {
		id, ok := plainString(text, pos)
		if !ok {
			return false
		}
		pos = skipSpace(text, int(id.end)+1)
		if pos >= len(text) || text[pos] != ':' {
			return false
		}
		pos = skipSpace(text, pos+1)
		status, ok := plainString(text, pos)
		if !ok || !d.memberIDs.add(text, id) {
			return false
		}
		d.members = append(d.members, memberSpan{id: id, status: status})
		pos = skipSpace(text, int(status.end)+1)
		if pos >= len(text) {
			return false
		}
		switch text[pos] {
		case ',':
			pos = skipSpace(text, pos+1)
		case '}':
			d.pos = pos + 1
			return true
		default:
			return false
		}
	}
}

// plainString finds the string of printable ASCII without escapes that
// starts with the quote at pos; the span excludes the quotes.
func plainString(text string, pos int) (span, bool) {
	if pos >= len(text) || text[pos] != '"' {
		return span{}, false
	}
	end := asciiRun(text, pos+1)
	if end >= len(text) || text[end] != '"' {
		return span{}, false
	}
	return span{int32(pos + 1), int32(end)}, true
}

// skipSpace returns the position of the first byte at or after pos that
// is not JSON white space.
func skipSpace(text string, pos int) int {
	for pos < len(text) && isSpace(text[pos]) {
		pos++
	}
	return pos
}

func (d *fastDecoder) space() {
	d.pos = skipSpace(d.text, d.pos)
}

// jsonSpace has bit c set for each JSON white space byte c.
const jsonSpace = 1<<' ' | 1<<'\t' | 1<<'\n' | 1<<'\r'

// isSpace reports JSON white space. Every other byte the parser expects
// after a space is above ' ', so that is one comparison; the space itself
// is one bit test more.
func isSpace(c byte) bool {
	return c <= ' ' && jsonSpace>>c&1 != 0
}

// open consumes the opening bracket c and the space after it.
func (d *fastDecoder) open(c byte) bool {
	if d.pos >= len(d.text) || d.text[d.pos] != c {
		return false
	}
	d.pos++
	d.space()
	return true
}

// closeEmpty consumes the closing bracket c of an empty object.
func (d *fastDecoder) closeEmpty(c byte) bool {
	if d.pos < len(d.text) && d.text[d.pos] == c {
		d.pos++
		return true
	}
	return false
}

// next consumes the space and the ',' after a member, with the space after
// that (more), or the closing bracket c (not more).
func (d *fastDecoder) next(c byte) (more, ok bool) {
	d.space()
	if d.pos >= len(d.text) {
		return false, false
	}
	switch d.text[d.pos] {
	case ',':
		d.pos++
		d.space()
		return true, true
	case c:
		d.pos++
		return false, true
	}
	return false, false
}

// key reads an object key, the ':' and the space around it.
func (d *fastDecoder) key() (string, bool) {
	k, ok := d.str()
	if !ok {
		return "", false
	}
	d.space()
	if d.pos >= len(d.text) || d.text[d.pos] != ':' {
		return "", false
	}
	d.pos++
	d.space()
	return k, true
}

// str reads a string of printable ASCII without escapes.
func (d *fastDecoder) str() (string, bool) {
	text := d.text
	if d.pos >= len(text) || text[d.pos] != '"' {
		return "", false
	}
	start := d.pos + 1
	end := asciiRun(text, start)
	if end >= len(text) || text[end] != '"' {
		return "", false
	}
	d.pos = end + 1
	d.last = span{int32(start), int32(end)}
	return text[start:end], true
}

// asciiRun is plainRun that stops at non-ASCII bytes too.
func asciiRun(text string, i int) int {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
	)
	for ; i+8 <= len(text); i += 8 {
		w := text[i : i+8]
		v := uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 |
			uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56
		// As in plainRun, plus v itself for bytes from 0x80 on. Since
		// those are marked anyway, the "&^ x" that plainRun needs to keep
		// them from marking a difference is left out: a byte from 0x80 on
		// is marked either way, and a byte of 0x20-0x7f other than '"'
		// and '\\' is marked by none of the differences unless a borrow
		// comes from a lower byte, which only a marked byte produces. So
		// the lowest mark, the only one used, is the same.
		quote, backslash := v^('"'*ones), v^('\\'*ones)
		marks := ((quote - ones) | (backslash - ones) | (v - 0x20*ones) | v) & highs
		if marks != 0 {
			return i + bits.TrailingZeros64(marks)>>3
		}
	}
	for i < len(text) && !stringStop[text[i]] && text[i] < 0x80 {
		i++
	}
	return i
}

// maxFastDigits keeps integers clear of int64 overflow; longer ones go to
// the general decoder.
const maxFastDigits = 18

// integer reads a JSON number that is an integer (no fraction, no
// exponent) of at most 18 digits.
func (d *fastDecoder) integer() (int64, bool) {
	text := d.text
	i := d.pos
	neg := i < len(text) && text[i] == '-'
	if neg {
		i++
	}
	start := i
	var v int64
	for i < len(text) && text[i] >= '0' && text[i] <= '9' {
		v = v*10 + int64(text[i]-'0')
		i++
	}
	n := i - start
	if n == 0 || n > maxFastDigits || (n > 1 && text[start] == '0') {
		return 0, false
	}
	if i < len(text) && (text[i] == '.' || text[i] == 'e' || text[i] == 'E') {
		return 0, false
	}
	d.pos = i
	if neg {
		v = -v
	}
	return v, true
}

// keySet finds repeated keys in one JSON object: by comparing with each
// key so far while there are few, then through a hash table, so that a
// hostile message with many keys cannot make it quadratic.
type keySet struct {
	keys []span
	// prefixes hold each key's first eight bytes (fewer for a shorter
	// key, with its length): ids differ there, so most comparisons end
	// without reading the strings.
	prefixes []uint64
	hashes   []uint64
	// table holds key indexes + 1 by hash, 0 for empty; in use once the
	// object grows past linearScanMax keys.
	table   []int32
	indexed bool
}

var keySeed = maphash.MakeSeed()

func (s *keySet) reset() {
	s.keys = s.keys[:0]
	s.prefixes = s.prefixes[:0]
	s.hashes = s.hashes[:0]
	s.indexed = false
}

// add records the key at k in text and reports whether it was new.
func (s *keySet) add(text string, k span) bool {
	key := text[k.start:k.end]
	if !s.indexed {
		p := prefix(key)
		for i, q := range s.prefixes {
			if q == p {
				if x := s.keys[i]; text[x.start:x.end] == key {
					return false
				}
			}
		}
		s.keys = append(s.keys, k)
		s.prefixes = append(s.prefixes, p)
		if len(s.keys) > linearScanMax {
			s.hashes = s.hashes[:0]
			for _, x := range s.keys {
				s.hashes = append(s.hashes, maphash.String(keySeed, text[x.start:x.end]))
			}
			s.rebuild(4 * linearScanMax)
			s.indexed = true
		}
		return true
	}
	h := maphash.String(keySeed, key)
	mask := uint64(len(s.table) - 1)
	i := h & mask
	for s.table[i] != 0 {
		j := s.table[i] - 1
		if x := s.keys[j]; s.hashes[j] == h && text[x.start:x.end] == key {
			return false
		}
		i = (i + 1) & mask
	}
	s.table[i] = int32(len(s.keys) + 1)
	s.keys = append(s.keys, k)
	s.hashes = append(s.hashes, h)
	if 2*len(s.keys) > len(s.table) {
		s.rebuild(2 * len(s.table))
	}
	return true
}

// prefix is the first eight bytes of key, or all of a shorter key with
// its length in the top byte.
func prefix(key string) uint64 {
	if len(key) >= 8 {
		k := key[:8]
		return uint64(k[0]) | uint64(k[1])<<8 | uint64(k[2])<<16 | uint64(k[3])<<24 |
			uint64(k[4])<<32 | uint64(k[5])<<40 | uint64(k[6])<<48 | uint64(k[7])<<56
	}
	p := uint64(len(key)) << 56
	for i := 0; i < len(key); i++ {
		p |= uint64(key[i]) << (8 * i)
	}
	return p
}

// rebuild indexes every key in a table of size entries (a power of two).
func (s *keySet) rebuild(size int) {
	if cap(s.table) >= size {
		s.table = s.table[:size]
		clear(s.table)
	} else {
		s.table = make([]int32, size)
	}
	mask := uint64(size - 1)
	for j, h := range s.hashes {
		i := h & mask
		for s.table[i] != 0 {
			i = (i + 1) & mask
		}
		s.table[i] = int32(j + 1)
	}
}
