package pgstore

import (
	"encoding/binary"
	"slices"
	"strings"
	"unsafe"

	"github.com/octavia-vpp/health/healthdb"
)

// A cached load balancer is one immutable string, its blob, so that the
// cache holds one allocation per load balancer (about 20 bytes a member
// with UUID ids) rather than a Go value per row and string. Expanding a
// blob gives the batch its own healthdb.LoadBalancer whose ids are
// substrings of the blob, or of one string per expansion for the ids kept
// as UUIDs: no id is allocated by itself.
//
// The blob is, in order (n: unsigned varint; str: n bytes; id: see
// appendID; code: see codeTable):
//
//	str  load balancer id (first, so that the map key is a substring)
//	n    total members, for one backing array on expansion
//	n    ids kept as UUIDs, for one string on expansion
//	byte flags: enabled
//	code provisioning status, code operating status
//	n    listeners + 1 (0: nil slice)
//	     each: id, code operating status, code protocol, byte flags (enabled, default pool has an enabled member)
//	n    pools + 1 (0: nil slice)
//	     each: id, code operating status, n members + 1 (0: nil slice)
//	           each member: id, code operating status
//
// Every field of healthdb.LoadBalancer is kept exactly, nil slices apart
// from empty ones, ids and statuses of any length and content.

// codeTable interns the status and protocol strings of one cache as small
// integers. A code is written as n+1 for the table's n-th string, or 0
// followed by the string itself once the table is full, so that an odd
// value is still kept exactly and the table stays small.
type codeTable struct {
	codes map[string]uint64
	names []string
}

// maxCodes bounds a cache's table: Octavia's statuses and protocols are
// about twenty strings.
const maxCodes = 128

func (t *codeTable) append(b []byte, s string) []byte {
	c, ok := t.codes[s]
	if !ok && len(t.names) < maxCodes {
		if t.codes == nil {
			t.codes = map[string]uint64{}
		}
		s = strings.Clone(s)
		c, ok = uint64(len(t.names)), true
		t.names = append(t.names, s)
		t.codes[s] = c
	}
	if ok {
		return binary.AppendUvarint(b, c+1)
	}
	return appendString(append(b, 0), s)
}

// isUUID reports whether s is a UUID in the form Octavia writes ids in:
// lower-case hex, dashed 8-4-4-4-12.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if c != '-' {
				return false
			}
		case '0' <= c && c <= '9' || 'a' <= c && c <= 'f':
		default:
			return false
		}
	}
	return true
}

func unhex(c byte) byte {
	if c <= '9' {
		return c - '0'
	}
	return c - 'a' + 10
}

// appendID writes a row id: a UUID as 1 and its 16 bytes, anything else
// as its length times two and its bytes.
func appendID(b []byte, s string) []byte {
	if !isUUID(s) {
		return append(binary.AppendUvarint(b, uint64(len(s))<<1), s...)
	}
	b = append(b, 1)
	for i := 0; i < len(s); i += 2 {
		if s[i] == '-' {
			i++
		}
		b = append(b, unhex(s[i])<<4|unhex(s[i+1]))
	}
	return b
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

func appendCount[T any](b []byte, s []T) []byte {
	if s == nil {
		return append(b, 0)
	}
	return binary.AppendUvarint(b, uint64(len(s))+1)
}

func flags(bits ...bool) byte {
	var f byte
	for i, b := range bits {
		if b {
			f |= 1 << i
		}
	}
	return f
}

// compact encodes lb as a blob, interning its strings in t.
func (t *codeTable) compact(lb *healthdb.LoadBalancer) string {
	members, uuids, size := 0, 0, len(lb.ID)+24
	countID := func(id string) {
		if isUUID(id) {
			uuids++
			size += 17
		} else {
			size += len(id) + 2
		}
	}
	for _, l := range lb.Listeners {
		countID(l.ID)
		size += 6
	}
	for _, p := range lb.Pools {
		members += len(p.Members)
		countID(p.ID)
		size += 6
		for _, m := range p.Members {
			countID(m.ID)
			size++
		}
	}
	b := make([]byte, 0, size)
	b = appendString(b, lb.ID)
	b = binary.AppendUvarint(b, uint64(members))
	b = binary.AppendUvarint(b, uint64(uuids))
	b = append(b, flags(lb.Enabled))
	b = t.append(b, lb.ProvisioningStatus)
	b = t.append(b, lb.OperatingStatus)
	b = appendCount(b, lb.Listeners)
	for _, l := range lb.Listeners {
		b = appendID(b, l.ID)
		b = t.append(b, l.OperatingStatus)
		b = t.append(b, l.Protocol)
		b = append(b, flags(l.Enabled, l.DefaultPoolHasEnabledMember))
	}
	b = appendCount(b, lb.Pools)
	for _, p := range lb.Pools {
		b = appendID(b, p.ID)
		b = t.append(b, p.OperatingStatus)
		b = appendCount(b, p.Members)
		for _, m := range p.Members {
			b = appendID(b, m.ID)
			b = t.append(b, m.OperatingStatus)
		}
	}
	return string(b)
}

// blobReader reads a blob back. Blobs are only ever made by compact, so a
// malformed one is a bug: it panics rather than guessing.
type blobReader struct {
	s string
	i int
	t *codeTable
	// uuids holds the expansion's UUID ids, written once each; its
	// capacity is exact, so it never moves.
	uuids []byte
}

func (r *blobReader) uvarint() uint64 {
	var v uint64
	for shift := 0; ; shift += 7 {
		c := r.s[r.i]
		r.i++
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return v
		}
	}
}

func (r *blobReader) byte() byte {
	c := r.s[r.i]
	r.i++
	return c
}

func (r *blobReader) string() string {
	n := int(r.uvarint())
	s := r.s[r.i : r.i+n]
	r.i += n
	return s
}

const hexDigits = "0123456789abcdef"

func (r *blobReader) id() string {
	v := r.uvarint()
	if v&1 == 0 {
		n := int(v >> 1)
		s := r.s[r.i : r.i+n]
		r.i += n
		return s
	}
	start := len(r.uuids)
	r.uuids = slices.Grow(r.uuids, 36)[:start+36]
	text := r.uuids[start : start+36 : start+36]
	raw := r.s[r.i : r.i+16]
	text[8], text[13], text[18], text[23] = '-', '-', '-', '-'
	// Written by position, not appended: every heartbeat's expansion
	// formats each member id, and a capacity check per byte showed in
	// BenchmarkExpand.
	for k, at := range uuidTextAt {
		c := raw[k]
		text[at], text[at+1] = hexDigits[c>>4], hexDigits[c&15]
	}
	r.i += 16
	// These bytes are never written again: the string may share them.
	return unsafe.String(&text[0], 36)
}

// uuidTextAt is where each of a UUID's 16 bytes goes in its text form.
var uuidTextAt = [16]uint8{0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34}

func (r *blobReader) code() string {
	c := r.uvarint()
	if c == 0 {
		return r.string()
	}
	return r.t.names[c-1]
}

// count returns a slice length and whether the slice is nil.
func (r *blobReader) count() (int, bool) {
	n := r.uvarint()
	return int(n) - 1, n == 0
}

// blobID is the load balancer id a blob starts with.
func blobID(blob string) string {
	r := blobReader{s: blob}
	return r.string()
}

// expand decodes a blob made by t.compact into a load balancer of the
// caller's own: its slices are new, its strings substrings of the blob or
// t's interned ones.
func (t *codeTable) expand(blob string) *healthdb.LoadBalancer {
	r := blobReader{s: blob, t: t}
	lb := &healthdb.LoadBalancer{ID: r.string()}
	allMembers := make([]healthdb.Member, r.uvarint())
	if n := r.uvarint(); n > 0 {
		r.uuids = make([]byte, 0, 36*n)
	}
	lb.Enabled = r.byte()&1 != 0
	lb.ProvisioningStatus = r.code()
	lb.OperatingStatus = r.code()
	if n, isNil := r.count(); !isNil {
		lb.Listeners = make([]healthdb.Listener, n)
		for i := range lb.Listeners {
			l := &lb.Listeners[i]
			l.ID = r.id()
			l.OperatingStatus = r.code()
			l.Protocol = r.code()
			f := r.byte()
			l.Enabled, l.DefaultPoolHasEnabledMember = f&1 != 0, f&2 != 0
		}
	}
	if n, isNil := r.count(); !isNil {
		lb.Pools = make([]healthdb.Pool, n)
		for i := range lb.Pools {
			p := &lb.Pools[i]
			p.ID = r.id()
			p.OperatingStatus = r.code()
			if n, isNil := r.count(); !isNil {
				// Capped: a batch that appended would not write into the
				// next pool's members.
				p.Members, allMembers = allMembers[:n:n], allMembers[n:]
				for j := range p.Members {
					p.Members[j].ID = r.id()
					p.Members[j].OperatingStatus = r.code()
				}
			}
		}
	}
	return lb
}
