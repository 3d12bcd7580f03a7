//go:build interop

package interop

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
)

// The differential fuzzer's input: valid heartbeats mutated at every level.
// Each message is a unit of its own: it comes from one amphora and touches
// only its own load balancer (plus a neighbour whose ids it may borrow), so
// that every differing row names the message that caused it. See README.md.

// A fuzzUnit is one mutated message and the topology it is applied to. It
// is also the format of a regression case (testdata/difffuzz/).
type fuzzUnit struct {
	Classes   []string `json:"classes"`
	Origin    string   `json:"origin,omitempty"`
	Signature string   `json:"signature,omitempty"`
	// Open, on a kept case, names a known difference not fixed yet: the
	// case is replayed and reported, but does not fail the run until it
	// agrees with Octavia, when the mark must go.
	Open      string       `json:"open,omitempty"`
	LB        *caseLB      `json:"lb,omitempty"`
	Neighbour *caseLB      `json:"neighbour,omitempty"`
	Spare     string       `json:"spare,omitempty"` // a READY amphora without a load balancer
	Health    []caseHealth `json:"health,omitempty"`
	Stats     []caseStats  `json:"stats,omitempty"`
	Message   string       `json:"message"`
}

type caseLB struct {
	ID        string         `json:"id"`
	Prov      string         `json:"prov"`
	Op        string         `json:"op"`
	Topology  string         `json:"topology"`
	Enabled   bool           `json:"enabled"`
	Amps      []string       `json:"amps"`
	Listeners []caseListener `json:"listeners,omitempty"`
	Pools     []casePool     `json:"pools,omitempty"`
}

type caseListener struct {
	ID, Protocol, Op, DefaultPool string
	Enabled                       bool
	Port                          int
}

type casePool struct {
	ID, Op    string
	Members   []caseMember `json:",omitempty"`
	Listeners []string     `json:",omitempty"`
}

type caseMember struct {
	ID, Op  string
	Enabled bool
}

type caseHealth struct {
	Amphora string
	Busy    bool
}

type caseStats struct {
	Listener, Amphora string
	V                 [5]int64
}

func toCase(lb *genLB) *caseLB {
	if lb == nil {
		return nil
	}
	c := &caseLB{ID: lb.id, Prov: lb.prov, Op: lb.op, Topology: lb.topology, Enabled: lb.enabled, Amps: lb.amps}
	for _, l := range lb.listeners {
		c.Listeners = append(c.Listeners, caseListener{l.id, l.protocol, l.op, l.defaultPool, l.enabled, l.port})
	}
	for _, p := range lb.pools {
		cp := casePool{ID: p.id, Op: p.op, Listeners: p.listeners}
		for _, m := range p.members {
			cp.Members = append(cp.Members, caseMember{m.id, m.op, m.enabled})
		}
		c.Pools = append(c.Pools, cp)
	}
	return c
}

func fromCase(c *caseLB) *genLB {
	if c == nil {
		return nil
	}
	lb := &genLB{id: c.ID, prov: c.Prov, op: c.Op, topology: c.Topology, enabled: c.Enabled, amps: c.Amps}
	for _, l := range c.Listeners {
		lb.listeners = append(lb.listeners, &genListener{id: l.ID, protocol: l.Protocol, op: l.Op, defaultPool: l.DefaultPool, enabled: l.Enabled, port: l.Port})
	}
	for _, p := range c.Pools {
		gp := &genPool{id: p.ID, op: p.Op, listeners: p.Listeners}
		for _, m := range p.Members {
			gp.members = append(gp.members, &genMember{id: m.ID, op: m.Op, enabled: m.Enabled})
		}
		lb.pools = append(lb.pools, gp)
	}
	return lb
}

// ids lists every id the unit owns, for telling which unit a row belongs to.
func (u *fuzzUnit) ids() []string {
	var out []string
	for _, lb := range []*caseLB{u.LB, u.Neighbour} {
		if lb == nil {
			continue
		}
		out = append(out, lb.ID)
		out = append(out, lb.Amps...)
		for _, l := range lb.Listeners {
			out = append(out, l.ID)
		}
		for _, p := range lb.Pools {
			out = append(out, p.ID)
			for _, m := range p.Members {
				out = append(out, m.ID)
			}
		}
	}
	if u.Spare != "" {
		out = append(out, u.Spare)
	}
	// Ids only the message holds: unknown amphorae and listeners.
	if root, err := parseTree(nonFinite.Replace(u.Message)); err == nil {
		if o, ok := root.(*jobj); ok {
			if id, ok := o.get("id"); ok {
				if s, ok := id.(string); ok && len(s) >= 8 {
					out = append(out, s)
				}
			}
			if ls := o.child("listeners"); ls != nil {
				for _, k := range ls.keys {
					if len(k) >= 8 {
						out = append(out, k)
					}
				}
			}
		}
	}
	return out
}

// nonFinite makes Python's number extensions JSON for parsing ids; no id
// holds these words.
var nonFinite = strings.NewReplacer("-Infinity", "0", "Infinity", "0", "NaN", "0")

// A mutation class changes one thing in a message. apply reports false
// when the message has nothing it could change (no pool to break, ...).
type mutation struct {
	name string
	// level is top, ver, listener, stats, pool or member.
	level string
	// loopAbort marks mutations that can make Octavia stop inside a loop
	// over database rows (listeners, pools, members), whose order its
	// query leaves undefined (test/interop/README.md, "Excluded input").
	// Such a unit gets a topology of at most one listener, one pool and
	// one member, where that order cannot matter.
	loopAbort bool
	apply     func(mc *mutCtx) bool
}

type mutCtx struct {
	g    *gen
	root any // the message; *jobj until a mutation replaces it
	unit *fuzzUnit
	lb   *genLB
	// neighbour lends ids of another load balancer; made on first use.
	neighbour *genLB
}

func (mc *mutCtx) msg() *jobj { o, _ := mc.root.(*jobj); return o }

func (mc *mutCtx) nb() *genLB {
	if mc.neighbour == nil {
		for {
			mc.neighbour = mc.g.loadBalancer()
			if len(mc.neighbour.listeners) > 0 && len(mc.neighbour.pools) > 0 {
				break
			}
		}
	}
	return mc.neighbour
}

// listeners returns the message's listener objects, keyed as sent.
func (mc *mutCtx) listeners() *jobj {
	if m := mc.msg(); m != nil {
		return m.child("listeners")
	}
	return nil
}

// pickEntry picks an entry of o whose value is an object.
func (mc *mutCtx) pickEntry(o *jobj) (string, *jobj) {
	if o == nil {
		return "", nil
	}
	var idx []int
	for i, v := range o.vals {
		if _, ok := v.(*jobj); ok {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return "", nil
	}
	i := idx[mc.g.r.IntN(len(idx))]
	return o.keys[i], o.vals[i].(*jobj)
}

// poolContainers are the message's "pools" objects: the top-level one and
// those under listeners.
func (mc *mutCtx) poolContainers() []*jobj {
	var out []*jobj
	m := mc.msg()
	if m == nil {
		return nil
	}
	if p := m.child("pools"); p != nil && len(p.keys) > 0 {
		out = append(out, p)
	}
	if ls := m.child("listeners"); ls != nil {
		for _, v := range ls.vals {
			if l, ok := v.(*jobj); ok {
				if p := l.child("pools"); p != nil && len(p.keys) > 0 {
					out = append(out, p)
				}
			}
		}
	}
	return out
}

func (mc *mutCtx) pickPool() (*jobj, string, *jobj) {
	cs := mc.poolContainers()
	if len(cs) == 0 {
		return nil, "", nil
	}
	c := cs[mc.g.r.IntN(len(cs))]
	k, p := mc.pickEntry(c)
	return c, k, p
}

func (mc *mutCtx) pickMembers() *jobj {
	var all []*jobj
	for _, c := range mc.poolContainers() {
		for _, v := range c.vals {
			if p, ok := v.(*jobj); ok {
				if m := p.child("members"); m != nil && len(m.keys) > 0 {
					all = append(all, m)
				}
			}
		}
	}
	if len(all) == 0 {
		return nil
	}
	return all[mc.g.r.IntN(len(all))]
}

func (mc *mutCtx) pickStats() *jobj {
	var all []*jobj
	if ls := mc.listeners(); ls != nil {
		for _, v := range ls.vals {
			if l, ok := v.(*jobj); ok {
				if s := l.child("stats"); s != nil {
					all = append(all, s)
				}
			}
		}
	}
	if len(all) == 0 {
		return nil
	}
	return all[mc.g.r.IntN(len(all))]
}

// Values of every JSON type, for "wrongly typed".
func (mc *mutCtx) anyValue(exclude ...string) any {
	for {
		var v any
		kind := ""
		switch mc.g.r.IntN(9) {
		case 0:
			v, kind = nil, "null"
		case 1:
			v, kind = mc.g.r.IntN(2) == 0, "bool"
		case 2:
			v, kind = jnum(fmt.Sprint(mc.g.r.IntN(5))), "int"
		case 3:
			v, kind = jnum(mc.g.pick([]string{"1.5", "2.0", "0.0", "-3.25", "1e3"})), "float"
		case 4:
			v, kind = mc.g.pick([]string{"x", "", "1", "UP", "OPEN"}), "string"
		case 5:
			v, kind = []any{}, "list"
		case 6:
			v, kind = []any{jnum("1"), "a"}, "list"
		case 7:
			v, kind = &jobj{}, "object"
		default:
			v, kind = &jobj{keys: []string{"k"}, vals: []any{"v"}}, "object"
		}
		if !slices.Contains(exclude, kind) {
			return v
		}
	}
}

func listenerBody(g *gen) *jobj {
	return &jobj{keys: []string{"status", "stats"}, vals: []any{"OPEN", &jobj{
		keys: []string{"tx", "rx", "conns", "totconns", "ereq"},
		vals: []any{jnum(fmt.Sprint(g.r.IntN(1000))), jnum(fmt.Sprint(g.r.IntN(1000))), jnum("1"), jnum("2"), jnum("0")}}}}
}

func poolBody(members ...string) *jobj {
	m := &jobj{}
	for _, id := range members {
		m.set(id, "UP")
	}
	return &jobj{keys: []string{"status", "members"}, vals: []any{"UP", m}}
}

// field mutations: missing, null, wrongly typed.
func topField(name string, kinds ...string) []mutation {
	return []mutation{
		{name: name + ".missing", level: levelOf(name), apply: func(mc *mutCtx) bool {
			m := mc.msg()
			if m == nil || m.index(name) < 0 {
				return false
			}
			m.del(name)
			return true
		}},
		{name: name + ".null", level: levelOf(name), apply: func(mc *mutCtx) bool {
			m := mc.msg()
			if m == nil {
				return false
			}
			m.set(name, nil)
			return true
		}},
		{name: name + ".wrong-type", level: levelOf(name), apply: func(mc *mutCtx) bool {
			m := mc.msg()
			if m == nil {
				return false
			}
			m.set(name, mc.anyValue(append(kinds, "null")...))
			return true
		}},
	}
}

func levelOf(field string) string {
	if field == "ver" {
		return "ver"
	}
	return "top"
}

var mutations = buildMutations()

func buildMutations() []mutation {
	var ms []mutation
	add := func(m ...mutation) { ms = append(ms, m...) }

	// The message as a whole.
	add(mutation{name: "message.not-object", level: "top", apply: func(mc *mutCtx) bool {
		mc.root = mc.anyValue("object")
		return true
	}})
	add(mutation{name: "message.unknown-field", level: "top", apply: func(mc *mutCtx) bool {
		m := mc.msg()
		if m == nil {
			return false
		}
		m.set(mc.g.pick([]string{"extra", "ts", "boot", "Id", "version"}), mc.anyValue())
		return true
	}})

	// id.
	add(topField("id", "string")...)
	add(mutation{name: "id.empty", level: "top", apply: func(mc *mutCtx) bool {
		m := mc.msg()
		if m == nil {
			return false
		}
		m.set("id", "")
		return true
	}})
	add(mutation{name: "id.unknown", level: "top", apply: func(mc *mutCtx) bool {
		m := mc.msg()
		if m == nil {
			return false
		}
		m.set("id", mc.g.id())
		return true
	}})
	add(mutation{name: "id.spare-amphora", level: "top", apply: func(mc *mutCtx) bool {
		m := mc.msg()
		if m == nil {
			return false
		}
		if mc.unit.Spare == "" {
			mc.unit.Spare = mc.g.id()
		}
		m.set("id", mc.unit.Spare)
		return true
	}})
	add(mutation{name: "id.lone-surrogate", level: "top", apply: func(mc *mutCtx) bool {
		m := mc.msg()
		if m == nil {
			return false
		}
		// Python keeps a lone surrogate; the database driver cannot
		// encode it. Go strings cannot hold one, so the literal is raw.
		id, _ := m.get("id")
		s, ok := id.(string)
		if !ok || s == "" {
			s = mc.g.id()
		}
		m.set("id", jnum(`"\ud800`+s+`"`))
		return true
	}})
	add(mutation{name: "id.neighbour-amphora", level: "top", apply: func(mc *mutCtx) bool {
		m := mc.msg()
		if m == nil {
			return false
		}
		m.set("id", mc.nb().amps[0])
		return true
	}})

	// seq: Octavia never reads it.
	add(topField("seq", "int")...)
	add(mutation{name: "seq.huge", level: "top", apply: func(mc *mutCtx) bool {
		m := mc.msg()
		if m == nil {
			return false
		}
		m.set("seq", jnum(mc.g.pick([]string{"9223372036854775808", "-9223372036854775809", "123456789012345678901234567890", "1e400"})))
		return true
	}})

	// ver of every type.
	verMut := func(name string, values ...any) mutation {
		return mutation{name: name, level: "ver", loopAbort: true, apply: func(mc *mutCtx) bool {
			m := mc.msg()
			if m == nil {
				return false
			}
			m.set("ver", values[mc.g.r.IntN(len(values))])
			return true
		}}
	}
	for _, m := range topField("ver") {
		m.loopAbort = true
		add(m)
	}
	add(verMut("ver.string", "2", "3", "1", "0", "x", ""))
	add(verMut("ver.float", jnum("2.0"), jnum("3.0"), jnum("2.5"), jnum("1.5"), jnum("3.5"), jnum("0.5"), jnum("1e1"), jnum("-0.0")))
	add(verMut("ver.bool", true, false))
	add(verMut("ver.list", []any{}, []any{jnum("3")}))
	add(verMut("ver.object", &jobj{}, &jobj{keys: []string{"v"}, vals: []any{jnum("3")}}))
	add(verMut("ver.other-int", jnum("-1"), jnum("4"), jnum("100"), jnum("-100"), jnum("1099511627776")))
	// Python's json reads NaN and the infinities; NaN is neither < 2 nor
	// >= 2 there.
	add(verMut("ver.non-finite", jnum("NaN"), jnum("Infinity"), jnum("-Infinity")))
	add(verMut("ver.huge", jnum("9223372036854775808"), jnum("-9223372036854775809"), jnum("100000000000000000000000")))

	// recv_time: Octavia overwrites it after unwrap_envelope.
	add(mutation{name: "recv_time.sent", level: "top", apply: func(mc *mutCtx) bool {
		m := mc.msg()
		if m == nil {
			return false
		}
		m.set("recv_time", mc.anyValue())
		return true
	}})

	// listeners and pools as wholes.
	add(topField("listeners", "object")...)
	// A list holding the reported ids: Octavia finds a database listener
	// "in" it and then fails to index the list by that id, in row order.
	add(mutation{name: "listeners.list-of-same-length", level: "top", loopAbort: true, apply: func(mc *mutCtx) bool {
		ls := mc.listeners()
		if ls == nil {
			return false
		}
		a := []any{}
		for _, k := range ls.keys {
			a = append(a, k)
		}
		mc.msg().set("listeners", a)
		return true
	}})
	add(mutation{name: "listeners.string-of-same-length", level: "top", apply: func(mc *mutCtx) bool {
		ls := mc.listeners()
		if ls == nil {
			return false
		}
		mc.msg().set("listeners", strings.Repeat("x", len(ls.keys)))
		return true
	}})
	add(topField("pools", "object")...)

	// One listener.
	add(mutation{name: "listener.not-object", level: "listener", loopAbort: true, apply: func(mc *mutCtx) bool {
		ls := mc.listeners()
		k, l := mc.pickEntry(ls)
		if l == nil {
			return false
		}
		ls.set(k, mc.anyValue("object"))
		return true
	}})
	lfield := func(field string, kinds []string, values ...any) []mutation {
		out := []mutation{
			{name: "listener." + field + ".missing", level: "listener", apply: func(mc *mutCtx) bool {
				_, l := mc.pickEntry(mc.listeners())
				if l == nil || l.index(field) < 0 {
					return false
				}
				l.del(field)
				return true
			}},
			{name: "listener." + field + ".null", level: "listener", apply: func(mc *mutCtx) bool {
				_, l := mc.pickEntry(mc.listeners())
				if l == nil {
					return false
				}
				l.set(field, nil)
				return true
			}},
			{name: "listener." + field + ".wrong-type", level: "listener", apply: func(mc *mutCtx) bool {
				_, l := mc.pickEntry(mc.listeners())
				if l == nil {
					return false
				}
				l.set(field, mc.anyValue(append(kinds, "null")...))
				return true
			}},
		}
		if len(values) > 0 {
			out = append(out, mutation{name: "listener." + field + ".unknown", level: "listener", apply: func(mc *mutCtx) bool {
				_, l := mc.pickEntry(mc.listeners())
				if l == nil {
					return false
				}
				l.set(field, values[mc.g.r.IntN(len(values))])
				return true
			}})
		}
		return out
	}
	add(lfield("status", []string{"string"}, "STOP", "DOWN", "open", "", "BOGUS", "MAINT", "OPEN ", "FULL\u0000")...)
	add(lfield("stats", []string{"object"})...)
	for _, m := range lfield("pools", []string{"object"}) {
		m.loopAbort = true
		add(m)
	}
	add(mutation{name: "listener.unknown-field", level: "listener", apply: func(mc *mutCtx) bool {
		_, l := mc.pickEntry(mc.listeners())
		if l == nil {
			return false
		}
		l.set(mc.g.pick([]string{"extra", "members", "Status"}), mc.anyValue())
		return true
	}})
	add(mutation{name: "listener.unknown-id", level: "listener", apply: func(mc *mutCtx) bool {
		ls := mc.listeners()
		if ls == nil {
			return false
		}
		ls.set(mc.g.id(), listenerBody(mc.g))
		return true
	}})
	add(mutation{name: "listener.neighbour-id", level: "listener", apply: func(mc *mutCtx) bool {
		ls := mc.listeners()
		if ls == nil {
			return false
		}
		nl := mc.nb().listeners
		ls.set(nl[mc.g.r.IntN(len(nl))].id, listenerBody(mc.g))
		return true
	}})
	add(mutation{name: "listener.odd-id", level: "listener", apply: func(mc *mutCtx) bool {
		ls := mc.listeners()
		if ls == nil {
			return false
		}
		id := mc.g.id()
		ls.set(mc.g.pick([]string{"", " " + id, id[:8], id + "-too-long-for-the-column"}), listenerBody(mc.g))
		return true
	}})
	add(mutation{name: "listener.repeated-id", level: "listener", apply: func(mc *mutCtx) bool {
		ls := mc.listeners()
		k, l := mc.pickEntry(ls)
		if l == nil {
			return false
		}
		// Python's dict keeps the first position and the last value.
		ls.keys = append([]string{k}, ls.keys...)
		ls.vals = append([]any{mc.g.pick([]string{"FULL", "OPEN", "x"})}, ls.vals...)
		if mc.g.chance(0.5) {
			ls.vals[0] = listenerBody(mc.g)
		}
		return true
	}})
	add(mutation{name: "listener.dropped", level: "listener", apply: func(mc *mutCtx) bool {
		ls := mc.listeners()
		if ls == nil || len(ls.keys) == 0 {
			return false
		}
		ls.del(ls.keys[mc.g.r.IntN(len(ls.keys))])
		return true
	}})

	// Statistics and each counter.
	counters := []string{"tx", "rx", "conns", "totconns", "ereq"}
	counterMut := func(name string, change func(mc *mutCtx, s *jobj, c string)) mutation {
		return mutation{name: name, level: "stats", apply: func(mc *mutCtx) bool {
			s := mc.pickStats()
			if s == nil {
				return false
			}
			change(mc, s, counters[mc.g.r.IntN(len(counters))])
			return true
		}}
	}
	add(counterMut("stats.counter.missing", func(mc *mutCtx, s *jobj, c string) { s.del(c) }))
	add(counterMut("stats.counter.null", func(mc *mutCtx, s *jobj, c string) { s.set(c, nil) }))
	add(counterMut("stats.counter.wrong-type", func(mc *mutCtx, s *jobj, c string) {
		vals := []any{"5", "x", "", jnum("1.5"), jnum("2.0"), true, false, []any{}, &jobj{}}
		s.set(c, vals[mc.g.r.IntN(len(vals))])
	}))
	add(counterMut("stats.counter.negative", func(mc *mutCtx, s *jobj, c string) {
		s.set(c, jnum(mc.g.pick([]string{"-1", "-1000", "-9223372036854775808"})))
	}))
	add(counterMut("stats.counter.huge", func(mc *mutCtx, s *jobj, c string) {
		s.set(c, jnum(mc.g.pick([]string{"2147483648", "9223372036854775807", "9223372036854775806",
			"9223372036854775808", "18446744073709551616", "1e20", "100000000000000000000000"})))
	}))
	add(counterMut("stats.counter.non-finite", func(mc *mutCtx, s *jobj, c string) {
		s.set(c, jnum(mc.g.pick([]string{"NaN", "Infinity", "-Infinity"})))
	}))
	add(counterMut("stats.unknown-field", func(mc *mutCtx, s *jobj, c string) { s.set("bin", jnum("1")) }))

	// One pool.
	add(mutation{name: "pool.not-object", level: "pool", loopAbort: true, apply: func(mc *mutCtx) bool {
		c, k, p := mc.pickPool()
		if p == nil {
			return false
		}
		c.set(k, mc.anyValue("object"))
		return true
	}})
	pfield := func(field string, kinds []string, loopAbort bool, values ...any) []mutation {
		out := []mutation{
			{name: "pool." + field + ".missing", level: "pool", loopAbort: loopAbort, apply: func(mc *mutCtx) bool {
				_, _, p := mc.pickPool()
				if p == nil {
					return false
				}
				p.del(field)
				return true
			}},
			{name: "pool." + field + ".null", level: "pool", loopAbort: loopAbort, apply: func(mc *mutCtx) bool {
				_, _, p := mc.pickPool()
				if p == nil {
					return false
				}
				p.set(field, nil)
				return true
			}},
			{name: "pool." + field + ".wrong-type", level: "pool", loopAbort: loopAbort, apply: func(mc *mutCtx) bool {
				_, _, p := mc.pickPool()
				if p == nil {
					return false
				}
				p.set(field, mc.anyValue(append(kinds, "null")...))
				return true
			}},
		}
		if len(values) > 0 {
			out = append(out, mutation{name: "pool." + field + ".unknown", level: "pool", apply: func(mc *mutCtx) bool {
				_, _, p := mc.pickPool()
				if p == nil {
					return false
				}
				p.set(field, values[mc.g.r.IntN(len(values))])
				return true
			}})
		}
		return out
	}
	add(pfield("status", []string{"string"}, false, "NOLB", "MAINT", "up", "", "ONLINE", "DRAIN", "UP 1/2")...)
	add(pfield("members", []string{"object"}, true)...)
	add(mutation{name: "pool.unknown-field", level: "pool", apply: func(mc *mutCtx) bool {
		_, _, p := mc.pickPool()
		if p == nil {
			return false
		}
		p.set("extra", mc.anyValue())
		return true
	}})
	poolAdd := func(name string, key func(mc *mutCtx) string) mutation {
		return mutation{name: name, level: "pool", apply: func(mc *mutCtx) bool {
			cs := mc.poolContainers()
			var c *jobj
			if len(cs) > 0 {
				c = cs[mc.g.r.IntN(len(cs))]
			} else if m := mc.msg(); m != nil {
				c = m.child("pools")
			}
			if c == nil {
				return false
			}
			c.set(key(mc), poolBody(mc.g.id()))
			return true
		}}
	}
	add(poolAdd("pool.unknown-id", func(mc *mutCtx) string { return mc.g.id() }))
	add(poolAdd("pool.neighbour-id", func(mc *mutCtx) string {
		nb := mc.nb()
		return nb.pools[mc.g.r.IntN(len(nb.pools))].id + ":" + nb.listeners[0].id
	}))
	add(mutation{name: "pool.key-form", level: "pool", apply: func(mc *mutCtx) bool {
		c, k, p := mc.pickPool()
		if p == nil {
			return false
		}
		id := k
		if i := strings.LastIndexByte(k, ':'); i >= 0 {
			id = k[:i]
		}
		to := mc.g.pick([]string{id, id + ":", id + ":x:" + mc.g.id(), ":" + id, ":", "", id + "::"})
		if c.index(to) >= 0 {
			return false
		}
		c.rename(k, to)
		return true
	}})
	add(mutation{name: "pool.dropped", level: "pool", apply: func(mc *mutCtx) bool {
		c, k, p := mc.pickPool()
		if p == nil {
			return false
		}
		c.del(k)
		return true
	}})

	// One member.
	memberMut := func(name string, loopAbort bool, change func(mc *mutCtx, ms *jobj, k string)) mutation {
		return mutation{name: name, level: "member", loopAbort: loopAbort, apply: func(mc *mutCtx) bool {
			ms := mc.pickMembers()
			if ms == nil {
				return false
			}
			change(mc, ms, ms.keys[mc.g.r.IntN(len(ms.keys))])
			return true
		}}
	}
	add(memberMut("member.status.null", true, func(mc *mutCtx, ms *jobj, k string) { ms.set(k, nil) }))
	add(memberMut("member.status.wrong-type", true, func(mc *mutCtx, ms *jobj, k string) { ms.set(k, mc.anyValue("string", "null")) }))
	add(memberMut("member.status.unknown", false, func(mc *mutCtx, ms *jobj, k string) {
		ms.set(k, mc.g.pick([]string{"BOGUS", "", "ONLINE", "UPPER", "DOWNTIME", "MAINT (via x)", "DRAINING", "drain", " UP", "RESTARTING"}))
	}))
	add(memberMut("member.unknown-id", false, func(mc *mutCtx, ms *jobj, k string) { ms.set(mc.g.id(), "DOWN") }))
	add(memberMut("member.neighbour-id", false, func(mc *mutCtx, ms *jobj, k string) {
		for _, p := range mc.nb().pools {
			for _, m := range p.members {
				ms.set(m.id, "DOWN")
				return
			}
		}
		ms.set(mc.g.id(), "UP")
	}))
	add(memberMut("member.repeated-id", false, func(mc *mutCtx, ms *jobj, k string) {
		ms.keys = append([]string{k}, ms.keys...)
		ms.vals = append([]any{mc.g.pick([]string{"DOWN", "UP", "DRAIN"})}, ms.vals...)
	}))
	add(memberMut("member.dropped", false, func(mc *mutCtx, ms *jobj, k string) { ms.del(k) }))
	return ms
}

func mutationByName(name string) *mutation {
	for i := range mutations {
		if mutations[i].name == name {
			return &mutations[i]
		}
	}
	return nil
}

// narrow trims a load balancer to at most one listener, one pool and one
// member, so that Octavia's unordered loops have one element each.
func narrow(lb *genLB) {
	if len(lb.listeners) > 1 {
		lb.listeners = lb.listeners[:1]
	}
	if len(lb.pools) > 1 {
		lb.pools = lb.pools[:1]
	}
	for _, p := range lb.pools {
		if len(p.members) > 1 {
			p.members = p.members[:1]
		}
	}
	unshare(lb)
	for _, l := range lb.listeners {
		if l.defaultPool != "" && (len(lb.pools) == 0 || lb.pools[0].id != l.defaultPool) {
			l.defaultPool = ""
		}
	}
	for _, p := range lb.pools {
		var keep []string
		for _, id := range p.listeners {
			for _, l := range lb.listeners {
				if l.id == id {
					keep = append(keep, id)
				}
			}
		}
		p.listeners = keep
	}
}

// unshare gives every pool at most one listener: before version 2 a pool
// shared by two listeners and reported differently under each is resolved
// in Octavia's undefined row order (README.md, excluded input (b)).
func unshare(lb *genLB) {
	for _, p := range lb.pools {
		if len(p.listeners) > 1 {
			for _, id := range p.listeners[1:] {
				for _, l := range lb.listeners {
					if l.id == id {
						l.defaultPool = ""
					}
				}
			}
			p.listeners = p.listeners[:1]
		}
	}
}

// newFuzzUnit makes one mutated message and its topology.
func newFuzzUnit(g *gen, origin string) *fuzzUnit {
	u := &fuzzUnit{Origin: origin}
	// One to three mutation classes, chosen first: they decide the shape
	// of the topology.
	k := 1 // mostly one class, so that a mismatch names its cause
	switch x := g.r.Float64(); {
	case x > 0.9:
		k = 3
	case x > 0.65:
		k = 2
	}
	var chosen []*mutation
	loopAbort, poolLevel := false, false
	for range k {
		m := &mutations[g.r.IntN(len(mutations))]
		chosen = append(chosen, m)
		loopAbort = loopAbort || m.loopAbort
		poolLevel = poolLevel || m.level == "pool" || m.level == "member"
	}
	var lb *genLB
	amp := ""
	switch x := g.r.Float64(); {
	case x < 0.9:
		lb = g.loadBalancer()
		if loopAbort {
			narrow(lb)
		}
		if poolLevel {
			unshare(lb)
		}
		amp = lb.amps[g.r.IntN(len(lb.amps))]
	case x < 0.95:
		u.Spare = g.id()
		amp = u.Spare
	default:
		amp = g.id() // unknown to the database
	}
	for _, a := range lbAmps(lb) {
		if g.chance(0.3) {
			u.Health = append(u.Health, caseHealth{a, g.chance(0.3)})
		}
	}
	if lb != nil {
		for _, l := range lb.listeners {
			if g.chance(0.3) {
				v := [5]int64{g.r.Int64N(1000), g.r.Int64N(1000), g.r.Int64N(10), g.r.Int64N(1000), g.r.Int64N(10)}
				if g.chance(0.2) {
					v[g.r.IntN(2)] = 1<<63 - 1 - g.r.Int64N(1<<19)
				}
				u.Stats = append(u.Stats, caseStats{l.id, amp, v})
			}
		}
	}
	m := g.message(amp, lb)
	root, err := parseTree(string(m.AppendJSON(nil)))
	if err != nil {
		panic(err)
	}
	mc := &mutCtx{g: g, root: root, unit: u, lb: lb}
	for _, mut := range chosen {
		if mut.apply(mc) {
			u.Classes = append(u.Classes, mut.name)
			continue
		}
		// Nothing to change: a top-level class always applies.
		for {
			alt := &mutations[g.r.IntN(len(mutations))]
			if alt.level != "top" || (alt.loopAbort && !loopAbort) {
				continue
			}
			if alt.apply(mc) {
				u.Classes = append(u.Classes, alt.name)
				break
			}
		}
	}
	u.LB = toCase(lb)
	u.Neighbour = toCase(mc.neighbour)
	u.Message = renderTree(mc.root)
	return u
}

func lbAmps(lb *genLB) []string {
	if lb == nil {
		return nil
	}
	return lb.amps
}

// fuzzRand is a seed's generator; the second PCG word differs from the
// scenario generator's.
func fuzzRand(seed uint64) *gen { return &gen{r: rand.New(rand.NewPCG(seed, 0xd1ff))} }
