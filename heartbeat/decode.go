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
	// A message decodeFast takes has no irregularity, so strict mode
	// accepts it as it is.
	if msg, ok := decodeFast(text); ok {
		return msg, nil
	}
	return decodeGeneral(text, strict)
}

// decodeGeneral is decodeText for every text: it parses into a node tree,
// then maps the tree onto Message, recording irregularities.
func decodeGeneral(text string, strict bool) (*Message, error) {
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
	d.scratch.release()
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
	// scratch lends the duplicate-key checks of long collections their
	// maps, one per level, since a listener's pools are checked while the
	// listeners still are.
	scratch *keyIndexes
	// members holds the members of the pools decoded so far, with room
	// for more (see memberSpace).
	members []Member
}

// keyIndexes are reused across messages: indexing a long collection then
// costs no allocation.
type keyIndexes struct {
	listeners, pools, members map[string]int
}

var keyIndexPool = sync.Pool{New: func() any { return new(keyIndexes) }}

// maxPooledIndex keeps one huge message from pinning its index.
const maxPooledIndex = 4096

func (d *messageDecoder) indexes() *keyIndexes {
	if d.scratch == nil {
		d.scratch = keyIndexPool.Get().(*keyIndexes)
	}
	return d.scratch
}

func (d *messageDecoder) listenersIndex() *map[string]int { return &d.indexes().listeners }
func (d *messageDecoder) poolsIndex() *map[string]int     { return &d.indexes().pools }
func (d *messageDecoder) membersIndex() *map[string]int   { return &d.indexes().members }

func (k *keyIndexes) release() {
	if k == nil {
		return
	}
	// Emptied now, so that no key keeps this message's text alive.
	for _, m := range []*map[string]int{&k.listeners, &k.pools, &k.members} {
		if len(*m) > maxPooledIndex {
			*m = nil
		} else if len(*m) > 0 {
			clear(*m)
		}
	}
	keyIndexPool.Put(k)
}

// odd records an irregularity; only the first is kept.
func (d *messageDecoder) odd(e *Error) {
	if d.first == nil {
		d.first = e
	}
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
