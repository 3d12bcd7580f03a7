package heartbeat

import (
	"strconv"
	"sync"
	"unicode/utf8"
)

// DecodeMessage parses and validates the inflated JSON text of a heartbeat.
//
// A message that Octavia would start to apply and then abort on part-way
// (no "id", "listeners" not an object, a member status that is not a
// string, a counter that is not an integer, ...) is rejected whole as
// ReasonMalformed with the field named, instead of being half applied.
// Unknown fields are ignored.
func DecodeMessage(text []byte) (*Message, error) {
	if !utf8.Valid(text) {
		return nil, reject(ReasonNotUTF8, "text is not valid UTF-8")
	}
	return decodeText(string(text))
}

var nodePool = sync.Pool{New: func() any { s := make([]node, 0, 256); return &s }}

// maxPooledNodes keeps one huge message from pinning its node array.
const maxPooledNodes = 1 << 14

func decodeText(text string) (*Message, error) {
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
	msg, err := d.message()
	if err != nil {
		return nil, err
	}
	return msg, nil
}

// messageDecoder maps a parsed node tree onto Message. It builds no field
// paths while it works: when it rejects a message it derives the path of the
// offending node from the tree.
type messageDecoder struct {
	text  string
	nodes []node
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

func (d *messageDecoder) object(i int32) *Error {
	if d.nodes[i].kind != kindObject {
		return d.wrongType(i, "an object")
	}
	return nil
}

var (
	topFields      = []string{"id", "seq", "ver", "listeners", "pools", "ts", "boot"}
	listenerFields = []string{"status", "stats", "pools"}
	statsFields    = []string{"tx", "rx", "conns", "totconns", "ereq"}
	poolFields     = []string{"status", "members"}
)

func (d *messageDecoder) message() (*Message, *Error) {
	var top [7]int32
	d.fields(0, topFields, top[:])
	idNode, seqNode, verNode, listenersNode, poolsNode := top[0], top[1], top[2], top[3], top[4]
	tsNode, bootNode := top[5], top[6]

	msg := &Message{}
	var err *Error
	if idNode < 0 {
		return nil, d.missing(0, "id")
	}
	if msg.AmphoraID, err = d.stringValue(idNode); err != nil {
		return nil, err
	}
	msg.AmphoraIDLoneSurrogate = d.lone(idNode)
	if seqNode >= 0 {
		if msg.Seq, err = d.int64Value(seqNode); err != nil {
			return nil, err
		}
		msg.HasSeq = true
	}
	if verNode >= 0 {
		if msg.Version, err = d.int64Value(verNode); err != nil {
			return nil, err
		}
		msg.HasVersion = true
	}
	d.replayFields(msg, tsNode, bootNode)
	perListener := msg.PoolsPerListener()

	if listenersNode < 0 {
		return nil, d.missing(0, "listeners")
	}
	if msg.Listeners, err = d.listeners(listenersNode, perListener); err != nil {
		return nil, err
	}
	if !perListener {
		if poolsNode < 0 {
			e := d.missing(0, "pools")
			e.Detail = "missing (required from version 2 on)"
			return nil, e
		}
		if msg.Pools, err = d.pools(poolsNode); err != nil {
			return nil, err
		}
		if msg.Pools == nil {
			msg.Pools = []Pool{}
		}
	}
	return msg, nil
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

func (d *messageDecoder) listeners(obj int32, perListener bool) ([]Listener, *Error) {
	if err := d.object(obj); err != nil {
		return nil, err
	}
	n := d.nodes[obj].count
	out := make([]Listener, 0, n)
	var index map[string]int
	var lf [3]int32
	child := obj + 1
	for k := int32(0); k < n; k++ {
		keyNode, val := child, child+1
		child = d.nodes[val].next
		l := Listener{ID: d.str(keyNode), IDLoneSurrogate: d.lone(keyNode)}
		if err := d.object(val); err != nil {
			return nil, err
		}
		d.fields(val, listenerFields, lf[:])
		statusNode, statsNode, poolsNode := lf[0], lf[1], lf[2]
		var err *Error
		if statusNode < 0 {
			return nil, d.missing(val, "status")
		}
		if l.Status, err = d.stringValue(statusNode); err != nil {
			return nil, err
		}
		if statsNode >= 0 {
			l.HasStats = true
			if l.Stats, err = d.stats(statsNode); err != nil {
				return nil, err
			}
		}
		if perListener && poolsNode >= 0 {
			l.HasPools = true
			if l.Pools, err = d.pools(poolsNode); err != nil {
				return nil, err
			}
			if l.Pools == nil {
				l.Pools = []Pool{}
			}
		}
		if i := findKey(out, l.ID, &index, func(x *Listener) string { return x.ID }); i >= 0 {
			out[i] = l
			continue
		}
		out = append(out, l)
	}
	return out, nil
}

func (d *messageDecoder) stats(obj int32) (Stats, *Error) {
	var s Stats
	if err := d.object(obj); err != nil {
		return s, err
	}
	var sf [5]int32
	d.fields(obj, statsFields, sf[:])
	targets := [5]*int64{&s.TX, &s.RX, &s.Conns, &s.TotConns, &s.EReq}
	for i, name := range statsFields {
		if sf[i] < 0 {
			return s, d.missing(obj, name)
		}
		v, err := d.int64Value(sf[i])
		if err != nil {
			return s, err
		}
		*targets[i] = v
	}
	return s, nil
}

func (d *messageDecoder) pools(obj int32) ([]Pool, *Error) {
	if err := d.object(obj); err != nil {
		return nil, err
	}
	n := d.nodes[obj].count
	if n == 0 {
		return nil, nil
	}
	out := make([]Pool, 0, n)
	var index map[string]int
	var pf [2]int32
	child := obj + 1
	for k := int32(0); k < n; k++ {
		keyNode, val := child, child+1
		child = d.nodes[val].next
		p := Pool{Key: d.str(keyNode)}
		if err := d.object(val); err != nil {
			return nil, err
		}
		d.fields(val, poolFields, pf[:])
		var err *Error
		if pf[0] < 0 {
			return nil, d.missing(val, "status")
		}
		if p.Status, err = d.stringValue(pf[0]); err != nil {
			return nil, err
		}
		if pf[1] < 0 {
			return nil, d.missing(val, "members")
		}
		if p.Members, err = d.members(pf[1]); err != nil {
			return nil, err
		}
		if i := findKey(out, p.Key, &index, func(x *Pool) string { return x.Key }); i >= 0 {
			out[i] = p
			continue
		}
		out = append(out, p)
	}
	return out, nil
}

func (d *messageDecoder) members(obj int32) ([]Member, *Error) {
	if err := d.object(obj); err != nil {
		return nil, err
	}
	n := d.nodes[obj].count
	out := make([]Member, 0, n)
	var index map[string]int
	child := obj + 1
	for k := int32(0); k < n; k++ {
		keyNode, val := child, child+1
		child = d.nodes[val].next
		if d.nodes[val].kind != kindString {
			return nil, d.wrongType(val, "a string")
		}
		m := Member{ID: d.str(keyNode), Status: d.str(val)}
		if i := findKey(out, m.ID, &index, func(x *Member) string { return x.ID }); i >= 0 {
			out[i] = m
			continue
		}
		out = append(out, m)
	}
	return out, nil
}
