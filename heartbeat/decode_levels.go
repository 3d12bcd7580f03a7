package heartbeat

import (
	"math"
	"strconv"
)

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
		if i := findKey(out, l.ID, &index, d.listenersIndex, func(x *Listener) string { return x.ID }); i >= 0 {
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
			l.Stats, l.StatsUnwritable, l.StatsUnwritableMySQL = d.stats(statsNode)
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
// Octavia's stats_db cannot store on PostgreSQL (see
// Listener.StatsUnwritable), unwritableMySQL the first one it cannot store
// on MySQL, where a boolean goes in as 0 or 1. A non-integer number is
// rounded half away from zero, as both databases do when Octavia stores
// it into a bigint column; a boolean reads as 0 or 1.
func (d *messageDecoder) stats(obj int32) (s Stats, unwritable, unwritableMySQL string) {
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
			if unwritableMySQL == "" {
				unwritableMySQL = unwritable
			}
			continue
		}
		v, err := d.int64Value(sf[i])
		if err != nil {
			d.odd(err)
			var ok bool
			if v, ok = d.roundedCounter(sf[i]); !ok {
				why := err.Field + ": " + err.Detail
				if unwritable == "" {
					unwritable = why
				}
				switch d.nodes[sf[i]].kind {
				case kindTrue:
					v = 1
				case kindFalse:
				default:
					if unwritableMySQL == "" {
						unwritableMySQL = why
					}
				}
			}
		}
		*targets[i] = v
	}
	return s, unwritable, unwritableMySQL
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
				p.Members = d.memberList(pf[1])
			}
		}
		if i := findKey(out, p.Key, &index, d.poolsIndex, func(x *Pool) string { return x.Key }); i >= 0 {
			out[i] = p
			continue
		}
		out = append(out, p)
	}
	return out
}

func (d *messageDecoder) memberList(obj int32) []Member {
	n := d.nodes[obj].count
	out := d.memberSpace(obj, n)
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
		if i := findKey(out, m.ID, &index, d.membersIndex, func(x *Member) string { return x.ID }); i >= 0 {
			out[i] = m
			continue
		}
		out = append(out, m)
	}
	d.members = d.members[:len(d.members)+len(out)]
	return out
}

// memberSpace returns an empty slice with room for the n members of the
// object at node obj, cut from an array that the following pools of the
// message share: one allocation for a message's members rather than one
// per pool. Every member takes two nodes, so the nodes left bound the
// members left; the array is at most four times this pool's members.
func (d *messageDecoder) memberSpace(obj, n int32) []Member {
	if n == 0 {
		return []Member{} // "members": {} is there, and empty, not absent
	}
	if int32(cap(d.members)-len(d.members)) < n {
		left := (int32(len(d.nodes)) - obj) / 2
		d.members = make([]Member, 0, max(n, min(left, 4*n)))
	}
	at := len(d.members)
	return d.members[at : at : at+int(n)]
}
