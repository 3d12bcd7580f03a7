package heartbeat

import (
	"math"
	"strconv"
	"sync"
	"unicode/utf8"
)

// DecodeMessage parses the inflated JSON text of a heartbeat into the
// shape Octavia's code sees.
//
// Any JSON object is accepted: a field that is missing, null or of another
// type is recorded in the Message (see the Kind, NotObject, ...Odd and
// IDProblem fields) so that the status procedure and the statistics can do
// exactly what Octavia 11 does with it, which is often to apply the message
// in part (docs/deviations.md). The first such irregularity is kept in
// Message.Irregularity; DecodeMessageStrict rejects the message with it.
// Unknown fields are ignored.
func DecodeMessage(text []byte) (*Message, error) {
	if !utf8.Valid(text) {
		return nil, reject(ReasonNotUTF8, "text is not valid UTF-8")
	}
	return decodeText(string(text), false)
}

// DecodeMessageStrict is DecodeMessage for the opt-in strict mode
// ([health_manager] strict_heartbeats): a message with any irregularity is
// rejected whole as ReasonMalformed, naming the field.
func DecodeMessageStrict(text []byte) (*Message, error) {
	if !utf8.Valid(text) {
		return nil, reject(ReasonNotUTF8, "text is not valid UTF-8")
	}
	return decodeText(string(text), true)
}

var nodePool = sync.Pool{New: func() any { s := make([]node, 0, 256); return &s }}

// maxPooledNodes keeps one huge message from pinning its node array.
const maxPooledNodes = 1 << 14

func decodeText(text string, strict bool) (*Message, error) {
	nodesPtr := nodePool.Get().(*[]node)
	nodes, perr := parseJSON(text, *nodesPtr)
	defer func() {
		if cap(nodes) <= maxPooledNodes {
			*nodesPtr = nodes[:0]
			nodePool.Put(nodesPtr)
		}
	}()
	if perr != nil {
		return nil, perr
	}
	if nodes[0].kind != kindObject {
		return nil, reject(ReasonNotObject, "top-level JSON value is "+nodes[0].kind.String())
	}
	d := messageDecoder{text: text, nodes: nodes}
	msg := d.message()
	if strict && msg.Irregularity != nil {
		return nil, msg.Irregularity
	}
	return msg, nil
}

// messageDecoder maps a parsed node tree onto Message. It builds no field
// paths while it works: when it rejects a message it derives the path of the
// offending node from the tree.
type messageDecoder struct {
	text  string
	nodes []node
	// first is the first irregularity met, in document order.
	first *Error
}

// odd records an irregularity; only the first is kept.
func (d *messageDecoder) odd(e *Error) {
	if d.first == nil {
		d.first = e
	}
}

// kindOf maps a node to the Kind recorded for an odd field.
func (d *messageDecoder) kindOf(i int32) Kind {
	if i < 0 {
		return KindAbsent
	}
	switch d.nodes[i].kind {
	case kindObject:
		return KindObject
	case kindArray:
		return KindArray
	case kindString:
		return KindString
	case kindNumber:
		return KindNumber
	case kindTrue, kindFalse:
		return KindBool
	}
	return KindNull
}

// truthy is Python's truth value of a JSON value.
func (d *messageDecoder) truthy(i int32) bool {
	n := &d.nodes[i]
	switch n.kind {
	case kindObject, kindArray:
		return n.count > 0
	case kindString:
		return n.end > n.start
	case kindNumber:
		f, err := strconv.ParseFloat(d.text[n.start:n.end], 64)
		return err != nil || f != 0 // a literal beyond float64 is not zero
	case kindTrue:
		return true
	}
	return false
}

// nonObject describes a value that should have been an object.
func (d *messageDecoder) nonObject(i int32) NonObject {
	v := NonObject{Kind: d.kindOf(i)}
	switch v.Kind {
	case KindArray:
		v.Len = int(d.nodes[i].count)
		child := i + 1
		for k := int32(0); k < d.nodes[i].count; k++ {
			if d.nodes[child].kind == kindString {
				v.Strings = append(v.Strings, d.str(child))
			}
			child = d.nodes[child].next
		}
	case KindString:
		v.Text = d.str(i)
		v.Len = utf8.RuneCountInString(v.Text)
	}
	return v
}

// str returns a string node's value, sharing the text when it has no escapes.
func (d *messageDecoder) str(i int32) string {
	n := &d.nodes[i]
	if !n.escaped {
		return d.text[n.start:n.end]
	}
	return unescapeJSON(d.text[n.start:n.end])
}

// lone tells whether a string node held a lone surrogate escape, which
// str turned into U+FFFD.
func (d *messageDecoder) lone(i int32) bool {
	n := &d.nodes[i]
	return n.escaped && hasLoneSurrogate(d.text[n.start:n.end])
}

// keyIs compares a key node with a field name, honouring escapes
// ("\u0069d" is "id" to Python too).
func (d *messageDecoder) keyIs(i int32, name string) bool {
	n := &d.nodes[i]
	if !n.escaped {
		return d.text[n.start:n.end] == name
	}
	return unescapeJSON(d.text[n.start:n.end]) == name
}

// fields finds the last occurrence of each wanted field among an object's
// members, so a repeated key resolves as Python's dict resolves it. Absent
// fields are -1.
func (d *messageDecoder) fields(obj int32, names []string, found []int32) {
	for i := range found {
		found[i] = -1
	}
	child := obj + 1
	for k := int32(0); k < d.nodes[obj].count; k++ {
		key, val := child, child+1
		for f, name := range names {
			if d.keyIs(key, name) {
				found[f] = val
				break
			}
		}
		child = d.nodes[val].next
	}
}

// pathTo renders where node target sits, such as `listeners["<id>"].stats`.
// Members of "listeners", "pools" and "members" are map entries, shown in
// brackets; everything else is a named field.
func (d *messageDecoder) pathTo(target int32) string {
	var b []byte
	obj, inMap := int32(0), false
	for obj != target && d.nodes[obj].kind == kindObject {
		child, next := obj+1, int32(0)
		descended := false
		for k := int32(0); k < d.nodes[obj].count; k, child = k+1, next {
			key, val := child, child+1
			next = d.nodes[val].next
			if target < val || target >= next {
				continue
			}
			name := d.str(key)
			if inMap {
				b = append(b, '[')
				b = strconv.AppendQuote(b, name)
				b = append(b, ']')
			} else {
				if len(b) > 0 {
					b = append(b, '.')
				}
				b = append(b, name...)
			}
			inMap = !inMap && (name == "listeners" || name == "pools" || name == "members")
			obj, descended = val, true
			break
		}
		if !descended {
			break
		}
	}
	return string(b)
}

func (d *messageDecoder) missing(obj int32, name string) *Error {
	path := d.pathTo(obj)
	if path != "" {
		path += "."
	}
	return malformed(path+name, "missing")
}

func (d *messageDecoder) wrongType(i int32, want string) *Error {
	return malformed(d.pathTo(i), "must be "+want+", not "+d.describe(i))
}

func (d *messageDecoder) describe(i int32) string {
	n := &d.nodes[i]
	if n.kind == kindNumber && !n.integer {
		return "a non-integer number"
	}
	return n.kind.String()
}

func (d *messageDecoder) int64Value(i int32) (int64, *Error) {
	n := &d.nodes[i]
	if n.kind != kindNumber || !n.integer {
		return 0, d.wrongType(i, "an integer")
	}
	v, err := strconv.ParseInt(d.text[n.start:n.end], 10, 64)
	if err != nil {
		return 0, malformed(d.pathTo(i), "integer "+d.text[n.start:n.end]+" is outside the signed 64-bit range")
	}
	return v, nil
}

func (d *messageDecoder) stringValue(i int32) (string, *Error) {
	if d.nodes[i].kind != kindString {
		return "", d.wrongType(i, "a string")
	}
	return d.str(i), nil
}

var (
	topFields      = []string{"id", "seq", "ver", "listeners", "pools", "ts", "boot"}
	listenerFields = []string{"status", "stats", "pools"}
	statsFields    = []string{"tx", "rx", "conns", "totconns", "ereq"}
	poolFields     = []string{"status", "members"}
)

func (d *messageDecoder) message() *Message {
	var top [7]int32
	d.fields(0, topFields, top[:])
	idNode, seqNode, verNode, listenersNode, poolsNode := top[0], top[1], top[2], top[3], top[4]
	tsNode, bootNode := top[5], top[6]

	msg := &Message{}
	switch {
	case idNode < 0:
		msg.IDProblem = IDAbsent
		d.odd(d.missing(0, "id"))
	case d.nodes[idNode].kind == kindString:
		msg.AmphoraID = d.str(idNode)
		msg.AmphoraIDLoneSurrogate = d.lone(idNode)
	case d.nodes[idNode].kind == kindNull:
		msg.IDProblem = IDNull
		d.odd(d.wrongType(idNode, "a string"))
	default:
		msg.IDProblem = IDFalsy
		if d.truthy(idNode) {
			msg.IDProblem = IDTruthy
		}
		d.odd(d.wrongType(idNode, "a string"))
	}
	if seqNode >= 0 {
		if v, err := d.int64Value(seqNode); err != nil {
			d.odd(err)
		} else {
			msg.Seq, msg.HasSeq = v, true
		}
	}
	if verNode >= 0 {
		msg.HasVersion = true
		d.version(msg, verNode)
	}
	d.replayFields(msg, tsNode, bootNode)
	perListener := msg.PoolsPerListener()

	switch {
	case listenersNode < 0:
		msg.ListenersAbsent = true
		d.odd(d.missing(0, "listeners"))
	case d.nodes[listenersNode].kind != kindObject:
		msg.ListenersOdd = d.nonObject(listenersNode)
		d.odd(d.wrongType(listenersNode, "an object"))
	default:
		msg.Listeners = d.listeners(listenersNode, perListener)
	}
	if msg.PoolsTopLevel() {
		switch {
		case poolsNode < 0:
			msg.PoolsAbsent = true
			e := d.missing(0, "pools")
			e.Detail = "missing (required from version 2 on)"
			d.odd(e)
		case d.nodes[poolsNode].kind != kindObject:
			msg.PoolsNotObject = true
			d.odd(d.wrongType(poolsNode, "an object"))
		default:
			msg.Pools = d.pools(poolsNode)
		}
		if msg.Pools == nil && !msg.PoolsAbsent && !msg.PoolsNotObject {
			msg.Pools = []Pool{}
		}
	}
	msg.Irregularity = d.first
	return msg
}

// version reads "ver" as far as Octavia's comparisons with 2 and 3 need
// it (see Message.Version).
func (d *messageDecoder) version(msg *Message, i int32) {
	n := &d.nodes[i]
	switch n.kind {
	case kindTrue:
		msg.Version = 1
	case kindFalse:
		msg.Version = 0
	case kindNumber:
		lit := d.text[n.start:n.end]
		if n.integer {
			v, err := strconv.ParseInt(lit, 10, 64)
			if err != nil { // beyond int64: only the sign matters
				v = math.MaxInt64
				if lit[0] == '-' {
					v = math.MinInt64
				}
			}
			msg.Version = v
			if err != nil {
				d.odd(malformed(d.pathTo(i), "integer "+lit+" is outside the signed 64-bit range"))
			}
			return
		}
		f, _ := strconv.ParseFloat(lit, 64) // ±Inf beyond float64, as in Python
		switch f = math.Floor(f); {
		case math.IsNaN(f):
			msg.VersionNaN = true
		case f >= math.MaxInt64:
			msg.Version = math.MaxInt64
		case f <= math.MinInt64:
			msg.Version = math.MinInt64
		default:
			msg.Version = int64(f)
		}
	default:
		msg.VersionNotComparable = true
	}
	if _, err := d.int64Value(i); err != nil {
		d.odd(err)
	}
}

// replayFields reads "ts" and "boot" without ever rejecting: Octavia
// ignores both, so one of the wrong type is ignored here too, as if it
// were absent. (Only a key holder can send such a message, and one without
// the fields is accepted anyway.)
func (d *messageDecoder) replayFields(msg *Message, tsNode, bootNode int32) {
	if tsNode >= 0 {
		if v, err := d.int64Value(tsNode); err == nil {
			msg.Timestamp, msg.HasTimestamp = v, true
		}
	}
	if bootNode >= 0 {
		if v, err := d.stringValue(bootNode); err == nil {
			msg.Boot, msg.HasBoot = v, true
		}
	}
}

// statusOf reads a "status" field: its value when it is a string, else the
// kind Octavia logs as an unknown status.
func (d *messageDecoder) statusOf(obj, node int32) (string, Kind) {
	if node < 0 {
		d.odd(d.missing(obj, "status"))
		return "", KindAbsent
	}
	if d.nodes[node].kind != kindString {
		d.odd(d.wrongType(node, "a string"))
		return "", d.kindOf(node)
	}
	return d.str(node), KindNormal
}

func (d *messageDecoder) listeners(obj int32, perListener bool) []Listener {
	n := d.nodes[obj].count
	out := make([]Listener, 0, n)
	var index map[string]int
	var lf [3]int32
	child := obj + 1
	for k := int32(0); k < n; k++ {
		keyNode, val := child, child+1
		child = d.nodes[val].next
		l := Listener{ID: d.str(keyNode), IDLoneSurrogate: d.lone(keyNode)}
		d.listener(&l, val, perListener, lf[:])
		if i := findKey(out, l.ID, &index, func(x *Listener) string { return x.ID }); i >= 0 {
			out[i] = l
			continue
		}
		out = append(out, l)
	}
	return out
}

func (d *messageDecoder) listener(l *Listener, val int32, perListener bool, lf []int32) {
	if d.nodes[val].kind != kindObject {
		l.NotObject = true
		d.odd(d.wrongType(val, "an object"))
		return
	}
	l.Empty = d.nodes[val].count == 0
	d.fields(val, listenerFields, lf)
	statusNode, statsNode, poolsNode := lf[0], lf[1], lf[2]
	l.Status, l.StatusOdd = d.statusOf(val, statusNode)
	if statsNode >= 0 {
		if d.nodes[statsNode].kind != kindObject {
			d.odd(d.wrongType(statsNode, "an object"))
		} else {
			l.HasStats = true
			l.Stats, l.StatsUnwritable = d.stats(statsNode)
		}
	}
	if perListener && poolsNode >= 0 {
		l.HasPools = true
		if d.nodes[poolsNode].kind != kindObject {
			l.PoolsNotObject = true
			d.odd(d.wrongType(poolsNode, "an object"))
			return
		}
		if l.Pools = d.pools(poolsNode); l.Pools == nil {
			l.Pools = []Pool{}
		}
	}
}

// stats reads the five counters. unwritable names the first one that
// Octavia's stats_db cannot store (see Listener.StatsUnwritable). A
// non-integer number is rounded half away from zero, as PostgreSQL does
// when Octavia stores it into a bigint column.
func (d *messageDecoder) stats(obj int32) (s Stats, unwritable string) {
	var sf [5]int32
	d.fields(obj, statsFields, sf[:])
	targets := [5]*int64{&s.TX, &s.RX, &s.Conns, &s.TotConns, &s.EReq}
	for i, name := range statsFields {
		if sf[i] < 0 {
			e := d.missing(obj, name)
			d.odd(e)
			if unwritable == "" {
				unwritable = e.Field + ": " + e.Detail
			}
			continue
		}
		v, err := d.int64Value(sf[i])
		if err != nil {
			d.odd(err)
			var ok bool
			if v, ok = d.roundedCounter(sf[i]); !ok && unwritable == "" {
				unwritable = err.Field + ": " + err.Detail
			}
		}
		*targets[i] = v
	}
	return s, unwritable
}

// roundedCounter is the value PostgreSQL stores for a non-integer number,
// and false for anything it refuses (out of range, not a number).
func (d *messageDecoder) roundedCounter(i int32) (int64, bool) {
	n := &d.nodes[i]
	if n.kind != kindNumber || n.integer {
		return 0, false
	}
	f, err := strconv.ParseFloat(d.text[n.start:n.end], 64)
	if err != nil || math.IsNaN(f) || f >= math.MaxInt64 || f <= math.MinInt64 {
		return 0, false
	}
	return int64(math.Round(f)), true
}

func (d *messageDecoder) pools(obj int32) []Pool {
	n := d.nodes[obj].count
	if n == 0 {
		return nil
	}
	out := make([]Pool, 0, n)
	var index map[string]int
	var pf [2]int32
	child := obj + 1
	for k := int32(0); k < n; k++ {
		keyNode, val := child, child+1
		child = d.nodes[val].next
		p := Pool{Key: d.str(keyNode)}
		if d.nodes[val].kind != kindObject {
			p.NotObject = true
			d.odd(d.wrongType(val, "an object"))
		} else {
			d.fields(val, poolFields, pf[:])
			p.Status, p.StatusOdd = d.statusOf(val, pf[0])
			switch {
			case pf[1] < 0:
				p.MembersAbsent = true
				d.odd(d.missing(val, "members"))
			case d.nodes[pf[1]].kind != kindObject:
				p.MembersOdd = d.nonObject(pf[1])
				d.odd(d.wrongType(pf[1], "an object"))
			default:
				p.Members = d.members(pf[1])
			}
		}
		if i := findKey(out, p.Key, &index, func(x *Pool) string { return x.Key }); i >= 0 {
			out[i] = p
			continue
		}
		out = append(out, p)
	}
	return out
}

func (d *messageDecoder) members(obj int32) []Member {
	n := d.nodes[obj].count
	out := make([]Member, 0, n)
	var index map[string]int
	child := obj + 1
	for k := int32(0); k < n; k++ {
		keyNode, val := child, child+1
		child = d.nodes[val].next
		m := Member{ID: d.str(keyNode)}
		if d.nodes[val].kind != kindString {
			m.StatusOdd = d.kindOf(val)
			d.odd(d.wrongType(val, "a string"))
		} else {
			m.Status = d.str(val)
		}
		if i := findKey(out, m.ID, &index, func(x *Member) string { return x.ID }); i >= 0 {
			out[i] = m
			continue
		}
		out = append(out, m)
	}
	return out
}
