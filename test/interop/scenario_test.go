//go:build interop

package interop

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/octavia-vpp/health/heartbeat"
)

// A scenario is a topology, inserted identically into two databases, and a
// sequence of datagrams fed in order to Octavia and to us.
type scenario struct {
	seed      uint64
	key       string
	lbs       []*genLB
	spares    []string // amphorae without a load balancer
	deleted   []string // DELETED amphorae
	health    []healthSeed
	stats     []statsSeed
	datagrams [][]byte
	texts     []string // each datagram's JSON text; "" for a corrupted one
}

type genLB struct {
	id, prov, op, topology string
	enabled                bool
	amps                   []string
	listeners              []*genListener
	pools                  []*genPool
}

type genListener struct {
	id, protocol, op, defaultPool string
	enabled                       bool
	port                          int
}

type genPool struct {
	id, op    string
	members   []*genMember
	listeners []string // listeners whose default pool this is
}

type genMember struct {
	id, op  string
	enabled bool
}

type healthSeed struct {
	amphora string
	busy    bool
}

type statsSeed struct {
	listener, amphora string
	v                 [5]int64
}

var (
	operatingStatuses = []string{"ONLINE", "OFFLINE", "DEGRADED", "ERROR", "NO_MONITOR", "DRAINING"}
	listenerProtocols = []string{"HTTP", "HTTPS", "TCP", "TERMINATED_HTTPS", "UDP", "SCTP", "PROMETHEUS"}
	memberReports     = []string{"UP", "UP 1/3", "DOWN", "DOWN 1/2", "DRAIN", "MAINT", "MAINT (via p/s)",
		"no check", "RESTARTING", "NOLB", "DRAINING", "ERROR", "up", ""}
)

type gen struct {
	r *rand.Rand
	n int
}

// id is a UUID-shaped id, unique within the scenario.
func (g *gen) id() string {
	g.n++
	return fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", g.r.Uint32(), g.n&0xffff, g.r.IntN(0x1000), g.r.IntN(0x1000), g.r.Uint64()&0xffffffffffff)
}

func (g *gen) pick(xs []string) string { return xs[g.r.IntN(len(xs))] }

// chance is true with probability p.
func (g *gen) chance(p float64) bool { return g.r.Float64() < p }

// newScenario builds a scenario of nLB load balancers from a seed.
func newScenario(seed uint64, nLB int) *scenario {
	// The second PCG word is fixed, so that the seed alone gives the
	// scenario.
	g := &gen{r: rand.New(rand.NewPCG(seed, 0x1fe7e90))}
	s := &scenario{seed: seed, key: fmt.Sprintf("key-%d-ß", seed%1000)}
	for range nLB {
		s.lbs = append(s.lbs, g.loadBalancer())
	}
	for range 1 + g.r.IntN(4) {
		s.spares = append(s.spares, g.id())
		s.deleted = append(s.deleted, g.id())
	}
	// Some amphorae already have health rows, some of them busy (a
	// failover in progress): the update must keep busy as it is.
	for _, lb := range s.lbs {
		for _, a := range lb.amps {
			if g.chance(0.3) {
				s.health = append(s.health, healthSeed{a, g.chance(0.3)})
			}
		}
		for _, l := range lb.listeners {
			if g.chance(0.2) {
				v := [5]int64{g.r.Int64N(1000), g.r.Int64N(1000), g.r.Int64N(10), g.r.Int64N(1000), g.r.Int64N(10)}
				if g.chance(0.2) { // close enough to the bigint limit for deltas to overflow it
					v[g.r.IntN(2)] = math.MaxInt64 - g.r.Int64N(1<<19)
				}
				s.stats = append(s.stats, statsSeed{l.id, lb.amps[0], v})
			}
		}
	}
	s.heartbeats(g)
	return s
}

func (g *gen) loadBalancer() *genLB {
	lb := &genLB{id: g.id(), op: g.pick(operatingStatuses), enabled: g.chance(0.85)}
	switch x := g.r.Float64(); {
	case x < 0.7:
		lb.prov = "ACTIVE"
	case x < 0.85:
		lb.prov = g.pick([]string{"PENDING_CREATE", "PENDING_UPDATE", "PENDING_DELETE"})
	case x < 0.93:
		lb.prov = "ERROR"
	default:
		lb.prov = "DELETED"
	}
	lb.topology = "SINGLE"
	lb.amps = []string{g.id()}
	if g.chance(0.4) {
		lb.topology = "ACTIVE_STANDBY"
		lb.amps = append(lb.amps, g.id())
	}
	for range g.r.IntN(4) {
		p := &genPool{id: g.id(), op: g.pick(operatingStatuses)}
		for range g.r.IntN(5) {
			p.members = append(p.members, &genMember{id: g.id(), op: g.pick(operatingStatuses), enabled: g.chance(0.8)})
		}
		lb.pools = append(lb.pools, p)
	}
	for i := range g.r.IntN(5) {
		l := &genListener{id: g.id(), protocol: g.pick(listenerProtocols), op: g.pick(operatingStatuses),
			enabled: g.chance(0.8), port: 1000 + i}
		if len(lb.pools) > 0 && g.chance(0.75) {
			// Listeners often share a pool; others have none.
			p := lb.pools[g.r.IntN(len(lb.pools))]
			l.defaultPool = p.id
			p.listeners = append(p.listeners, l.id)
		}
		lb.listeners = append(lb.listeners, l)
	}
	return lb
}

// heartbeats generates rounds of heartbeats from every amphora, known or
// not, in a random order, with a few corrupted datagrams among them.
func (s *scenario) heartbeats(g *gen) {
	type sender struct {
		amp string
		lb  *genLB
	}
	var senders []sender
	for _, lb := range s.lbs {
		for _, a := range lb.amps {
			senders = append(senders, sender{a, lb})
		}
	}
	for _, a := range s.spares {
		senders = append(senders, sender{a, nil})
	}
	for _, a := range s.deleted {
		senders = append(senders, sender{a, nil})
	}
	for range 3 {
		senders = append(senders, sender{g.id(), nil}) // unknown to the database
	}
	// Ids no database row can have: empty (stats_db files such rows under
	// the listener id), longer than the varchar(36) columns, holding NUL
	// or non-ASCII characters.
	senders = append(senders, sender{"", nil}, sender{g.id() + "-0123", nil}, sender{"amp\x00" + g.id()[:8], nil}, sender{"ämp-€-" + g.id()[:8], nil})
	kr, err := heartbeat.NewKeyring(heartbeat.KeyringConfig{Keys: []string{s.key}})
	if err != nil {
		panic(err)
	}
	other, _ := heartbeat.NewKeyring(heartbeat.KeyringConfig{Keys: []string{s.key + "!"}})
	for range 4 {
		g.r.Shuffle(len(senders), func(i, j int) { senders[i], senders[j] = senders[j], senders[i] })
		for _, snd := range senders {
			m := g.message(snd.amp, snd.lb)
			text := g.textEdits(m, string(m.AppendJSON(nil)))
			if g.chance(0.01) {
				s.datagrams = append(s.datagrams, other.Seal([]byte(text)))
				s.texts = append(s.texts, "")
				continue
			}
			s.datagrams = append(s.datagrams, kr.Seal([]byte(text)))
			s.texts = append(s.texts, text)
		}
	}
}

// textEdits changes the JSON text in ways our Message cannot express.
// It sometimes repeats a listener or a member with another value before
// the real one (Python's dict keeps the first position and the last value;
// so must we), and puts lone surrogate escapes into ids.
func (g *gen) textEdits(m *heartbeat.Message, text string) string {
	if len(m.Listeners) > 0 && g.chance(0.03) {
		id := quoteJSON(m.Listeners[0].ID)
		text = strings.Replace(text, `"listeners": {`+id+`: `, `"listeners": {`+id+`: {"status": "FULL"}, `+id+`: `, 1)
	}
	// A lone surrogate escape in a listener or amphora id: Python keeps
	// it and Octavia's database driver cannot encode it, we carry U+FFFD.
	if g.chance(0.03) {
		text = strings.Replace(text, `"listeners": {`, `"listeners": {"lone-\ud800-`+fmt.Sprint(g.r.IntN(100))+`": {"status": "OPEN", "stats": {"tx": 1, "rx": 2, "conns": 3, "totconns": 4, "ereq": 5}}, `, 1)
	}
	if g.chance(0.01) {
		text = strings.Replace(text, `{"id": "`, `{"id": "\udc01`, 1)
	}
	pools := m.Pools
	if m.PoolsPerListener() && len(m.Listeners) > 0 {
		pools = m.Listeners[0].Pools
	}
	if len(pools) > 0 && len(pools[0].Members) > 0 && g.chance(0.05) {
		id := quoteJSON(pools[0].Members[0].ID)
		text = strings.Replace(text, `"members": {`+id+`: `, `"members": {`+id+`: "DOWN", `+id+`: `, 1)
	}
	return text
}

// quoteJSON renders an ASCII id as the encoder does.
func quoteJSON(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func (g *gen) stats() heartbeat.Stats {
	s := heartbeat.Stats{TX: g.r.Int64N(1 << 20), RX: g.r.Int64N(1 << 20), Conns: g.r.Int64N(100), TotConns: g.r.Int64N(1000), EReq: g.r.Int64N(10)}
	switch {
	case g.chance(0.04): // a counter reset seen as a negative value
		*[]*int64{&s.TX, &s.RX, &s.Conns, &s.TotConns, &s.EReq}[g.r.IntN(5)] = -g.r.Int64N(1 << 21)
	case g.chance(0.01): // beyond the integer column of active_connections
		s.Conns = 1<<31 + g.r.Int64N(10)
	}
	return s
}

// message is one heartbeat from amphora amp; lb is nil for amphorae whose
// heartbeats Octavia treats as zombies or unknown.
func (g *gen) message(amp string, lb *genLB) *heartbeat.Message {
	m := &heartbeat.Message{AmphoraID: amp, HasSeq: true, Seq: g.r.Int64N(1000), Listeners: []heartbeat.Listener{}}
	switch x := g.r.Float64(); {
	case x < 0.15: // no "ver": a Rocky agent
	case x < 0.18:
		m.Version, m.HasVersion = 0, true
	case x < 0.2: // versions no agent sends, accepted by both
		m.Version, m.HasVersion = []int64{-1, 4}[g.r.IntN(2)], true
	case x < 0.35:
		m.Version, m.HasVersion = 1, true
	case x < 0.55:
		m.Version, m.HasVersion = 2, true
	default:
		m.Version, m.HasVersion = 3, true
	}
	var listeners []*genListener
	var pools []*genPool
	if lb != nil {
		listeners, pools = lb.listeners, lb.pools
	}
	reported := map[string]bool{}
	for _, l := range listeners {
		p := 0.9
		if !l.enabled {
			p = 0.1
		}
		if !g.chance(p) {
			continue
		}
		reported[l.id] = true
		m.Listeners = append(m.Listeners, g.listener(l.id))
	}
	if g.chance(0.08) || (lb == nil && g.chance(0.5)) {
		m.Listeners = append(m.Listeners, g.listener(g.id()))
	}
	if g.chance(0.02) { // a listener id too long for listener_statistics
		m.Listeners = append(m.Listeners, g.listener(g.id()+"-long"))
	}
	if !m.PoolsPerListener() {
		m.Pools = []heartbeat.Pool{}
		for _, p := range pools {
			keys := []string{p.id}
			if len(p.listeners) > 0 {
				keys = keys[:0]
				for _, l := range p.listeners {
					keys = append(keys, p.id+":"+l)
				}
			}
			for _, k := range keys {
				if g.chance(0.85) {
					m.Pools = append(m.Pools, g.pool(k, p))
				}
			}
			if g.chance(0.03) {
				m.Pools = append(m.Pools, g.pool(p.id+":x:"+g.id(), p))
			}
			if g.chance(0.03) { // "P:" normalises to P
				m.Pools = append(m.Pools, g.pool(p.id+":", p))
			}
		}
		if g.chance(0.05) {
			m.Pools = append(m.Pools, g.pool(g.id(), &genPool{}))
		}
		if g.chance(0.02) { // ":" normalises to "", which is no pool
			m.Pools = append(m.Pools, g.pool(":", &genPool{}))
		}
		return m
	}
	// Before version 2, pools sit under each listener, keyed by the bare
	// pool id (or pool:listener; the key is normalised either way). A pool
	// shared by two listeners is reported identically under both: input
	// where they differ is excluded, see README.md.
	byListener := map[string][]heartbeat.Pool{}
	for _, p := range pools {
		if !g.chance(0.85) {
			continue
		}
		rp := g.pool(p.id, p)
		owners := p.listeners
		if len(owners) == 0 && len(m.Listeners) > 0 {
			owners = []string{m.Listeners[g.r.IntN(len(m.Listeners))].ID}
		}
		for _, l := range owners {
			if g.chance(0.2) {
				rp.Key = p.id + ":" + l
			}
			byListener[l] = append(byListener[l], rp)
			rp.Key = p.id
		}
	}
	for i := range m.Listeners {
		l := &m.Listeners[i]
		l.HasPools = true
		l.Pools = append([]heartbeat.Pool{}, byListener[l.ID]...)
	}
	// A Rocky UDP listener whose pool state could not be read has no
	// "pools" at all. Octavia then stops part-way through the listeners,
	// in SQL row order; only a load balancer with one listener makes that
	// order irrelevant (see README.md).
	if len(listeners) == 1 && len(m.Listeners) == 1 && g.chance(0.2) {
		m.Listeners[0].HasPools, m.Listeners[0].Pools = false, nil
	}
	return m
}

func (g *gen) listener(id string) heartbeat.Listener {
	l := heartbeat.Listener{ID: id, Status: "OPEN"}
	switch x := g.r.Float64(); {
	case x < 0.1:
		l.Status = "FULL"
	case x < 0.15:
		l.Status = "STOP"
	case x < 0.2:
		l.Status = "DOWN"
	case x < 0.22:
		l.Status = "open"
	}
	if g.chance(0.97) {
		l.HasStats, l.Stats = true, g.stats()
	}
	return l
}

func (g *gen) pool(key string, p *genPool) heartbeat.Pool {
	rp := heartbeat.Pool{Key: key, Status: "UP", Members: []heartbeat.Member{}}
	switch x := g.r.Float64(); {
	case x < 0.15:
		rp.Status = "DOWN"
	case x < 0.2:
		rp.Status = g.pick([]string{"NOLB", "MAINT", "up"})
	}
	for _, mem := range p.members {
		if g.chance(0.9) {
			rp.Members = append(rp.Members, heartbeat.Member{ID: mem.id, Status: g.pick(memberReports)})
		}
	}
	if g.chance(0.05) {
		rp.Members = append(rp.Members, heartbeat.Member{ID: g.id(), Status: "UP"})
	}
	return rp
}

// insert writes the topology into a database of either schema. Every NOT
// NULL column without a server default in either schema is given.
func (s *scenario) insert(ctx context.Context, url string) error {
	if isMySQL(url) {
		return s.insertMySQL(ctx, url)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	b := &pgx.Batch{}
	s.statements(func(sql string, args ...any) { b.Queue(sql, args...) })
	return conn.SendBatch(ctx, b).Close()
}

// statements hands the topology's INSERTs, with PostgreSQL's numbered
// placeholders ($1, $2, ... in order), to queue.
func (s *scenario) statements(queue func(sql string, args ...any)) {
	b := struct{ Queue func(string, ...any) }{queue}
	port := 0
	for _, lb := range s.lbs {
		b.Queue(`INSERT INTO load_balancer (id, provisioning_status, operating_status, enabled, topology) VALUES ($1, $2, $3, $4, $5)`,
			lb.id, lb.prov, lb.op, lb.enabled, lb.topology)
		for i, a := range lb.amps {
			role, status := "STANDALONE", "ALLOCATED"
			if lb.topology == "ACTIVE_STANDBY" {
				role = []string{"MASTER", "BACKUP"}[i]
			}
			switch {
			case lb.prov == "DELETED" && a[len(a)-1]%2 == 0:
				status = "DELETED" // else a live amphora of a deleted load balancer
			case a[len(a)-1] == 'f':
				status = "ERROR"
			case a[len(a)-1] == 'e':
				status = "PENDING_DELETE"
			}
			b.Queue(`INSERT INTO amphora (id, compute_id, status, load_balancer_id, role, cert_busy) VALUES ($1, $2, $3, $4, $5, false)`,
				a, "compute-"+a[:8], status, lb.id, role)
		}
		for _, p := range lb.pools {
			b.Queue(`INSERT INTO pool (id, load_balancer_id, protocol, lb_algorithm, operating_status, enabled, provisioning_status, tls_enabled)
				VALUES ($1, $2, 'HTTP', 'ROUND_ROBIN', $3, true, 'ACTIVE', false)`, p.id, lb.id, p.op)
			for _, m := range p.members {
				port++
				b.Queue(`INSERT INTO member (id, pool_id, ip_address, protocol_port, operating_status, enabled, provisioning_status, backup)
					VALUES ($1, $2, '192.0.2.1', $3, $4, $5, 'ACTIVE', false)`, m.id, p.id, port, m.op, m.enabled)
			}
		}
		for _, l := range lb.listeners {
			var def *string
			if l.defaultPool != "" {
				def = &l.defaultPool
			}
			b.Queue(`INSERT INTO listener (id, load_balancer_id, protocol, protocol_port, provisioning_status, operating_status, enabled, default_pool_id, client_authentication)
				VALUES ($1, $2, $3, $4, 'ACTIVE', $5, $6, $7, 'NONE')`, l.id, lb.id, l.protocol, l.port, l.op, l.enabled, def)
		}
	}
	for _, a := range s.spares {
		b.Queue(`INSERT INTO amphora (id, compute_id, status, cert_busy) VALUES ($1, $2, 'READY', false)`, a, "compute-"+a[:8])
	}
	for i, a := range s.deleted {
		var lb *string
		if i%2 == 0 && len(s.lbs) > 0 {
			lb = &s.lbs[0].id
		}
		b.Queue(`INSERT INTO amphora (id, compute_id, status, load_balancer_id, cert_busy) VALUES ($1, $2, 'DELETED', $3, false)`, a, "compute-"+a[:8], lb)
	}
	for _, h := range s.health {
		b.Queue(`INSERT INTO amphora_health (amphora_id, last_update, busy) VALUES ($1, '2020-01-01', $2)`, h.amphora, h.busy)
	}
	for _, st := range s.stats {
		b.Queue(`INSERT INTO listener_statistics (listener_id, amphora_id, bytes_in, bytes_out, active_connections, total_connections, request_errors)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, st.listener, st.amphora, st.v[0], st.v[1], st.v[2], st.v[3], st.v[4])
	}
}

// replayLines renders datagrams as replay's input.
func replayLines(datagrams [][]byte) []byte {
	var b strings.Builder
	for _, d := range datagrams {
		line, _ := json.Marshal(map[string]string{"b64": base64.StdEncoding.EncodeToString(d), "srcaddr": "127.0.0.1"})
		b.Write(line)
		b.WriteByte('\n')
	}
	return []byte(b.String())
}
