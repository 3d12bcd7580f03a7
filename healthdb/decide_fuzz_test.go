package healthdb

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/octavia-vpp/health/heartbeat"
)

// FuzzDecide builds a random but well-formed topology and heartbeat from the
// fuzz input and checks Decide against what Octavia's update_health makes
// checkable from the outside: the outcome of the listener-count gate, the status
// vocabulary of each object kind, that every write targets an object of the
// topology with its database value as From, and, for V2+ messages (which
// never abort), the roll-up rules of checkRollUp and independence from the order
// of the database rows. It also checks that Decide is deterministic and
// does not modify its inputs.
func FuzzDecide(f *testing.F) {
	for _, seed := range [][]byte{
		nil,
		{0},
		{1, 1, 1, 3, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2},
		[]byte("\x02\x01\x01\x00\x03\x01\x02\x00\x01\x01\x03\x00\x02\x01\x04\x01\x00\x02\x03\x01\x04\x05\x06\x07\x08\x09"),
		[]byte("heartbeat from an amphora with pools shared by two listeners"),
		[]byte{0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0xfa, 0xf9, 0xf8, 0xf7, 0xf6, 0xf5, 0xf4, 0xf3, 0xf2, 0xf1, 0xf0, 0xef, 0xee, 0xed, 0xec, 0xeb},
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		g := &choices{data: data}
		topo := g.topology()
		msg := g.message(topo)
		rules := Rules{HeartbeatInterval: 10 * time.Second}
		at := fuzzNow

		topoCopy, msgCopy := cloneTopology(topo), cloneMessage(msg)
		d := Decide(topo, msg, at, rules)
		if !reflect.DeepEqual(topo, topoCopy) || !reflect.DeepEqual(msg, msgCopy) {
			t.Fatalf("Decide modified its inputs")
		}
		if again := Decide(topoCopy, msgCopy, at, rules); !reflect.DeepEqual(d, again) {
			t.Fatalf("not deterministic:\n%+v\n%+v", d, again)
		}
		checkDecision(t, topo, msg, rules, d)
		if topo.LB != nil && !msg.PoolsPerListener() {
			checkRollUp(t, topo.LB, msg, d)
			rev := cloneTopology(topo)
			slices.Reverse(rev.LB.Listeners)
			slices.Reverse(rev.LB.Pools)
			for i := range rev.LB.Pools {
				slices.Reverse(rev.LB.Pools[i].Members)
			}
			if got := Decide(rev, msg, at, rules); !sameChanges(got, d) {
				t.Fatalf("outcome depends on database row order:\n%+v\n%+v", d, got)
			}
		}
	})
}

var fuzzNow = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

// choices draws decisions from the fuzz input; an exhausted input reads as
// zeros, so every input builds something.
type choices struct {
	data []byte
	pos  int
}

func (c *choices) intn(n int) int {
	if n <= 1 || c.pos >= len(c.data) {
		return 0
	}
	b := c.data[c.pos]
	c.pos++
	return int(b) % n
}

func (c *choices) bool() bool { return c.intn(2) == 1 }

func choose[T any](c *choices, s []T) T { return s[c.intn(len(s))] }

var (
	// Database values, including case variants (Octavia compares them
	// case-insensitively) and values no mapping produces.
	fuzzDBStatus    = []string{StatusOnline, StatusOffline, StatusDegraded, StatusError, StatusNoMonitor, StatusDraining, "online", "Error", "bogus", ""}
	fuzzProvision   = []string{"ACTIVE", "PENDING_UPDATE", "PENDING_CREATE", "ERROR", "active", "XPENDINGX"}
	fuzzProtocols   = []string{"HTTP", "TCP", ProtocolUDP, "SCTP", "udp"}
	fuzzListenerRep = []string{"OPEN", "FULL", "STOP", "DOWN", "open", ""}
	fuzzPoolRep     = []string{"UP", "DOWN", "NOLB", "up", "UP 1/2", ""}
	fuzzMemberRep   = []string{"UP", "DOWN", "UP 1/3", "DOWN 1/2", "DRAIN", "MAINT", "MAINT (via p/s)", "no check", "NO CHECK", "RESTARTING", "NOLB", "UPPER", "DOWNWARD", ""}
	// Delays around the heartbeat interval of the fuzz rules, and a
	// receive time in the future.
	fuzzDelays = []time.Duration{0, time.Second, 10*time.Second - 1, 10 * time.Second, time.Hour, -time.Second}
)

func (c *choices) topology() *Topology {
	t := &Topology{AmphoraID: "amp", AmphoraExists: c.intn(8) != 0, ComputeID: choose(c, []string{"compute", ""})}
	if !t.AmphoraExists || c.intn(6) == 0 {
		return t
	}
	lb := &LoadBalancer{ID: "lb", Enabled: c.intn(4) != 0, ProvisioningStatus: choose(c, fuzzProvision),
		OperatingStatus: choose(c, fuzzDBStatus)}
	for i := range c.intn(5) {
		lb.Listeners = append(lb.Listeners, Listener{ID: fmt.Sprintf("l%d", i), OperatingStatus: choose(c, fuzzDBStatus),
			Protocol: choose(c, fuzzProtocols), Enabled: c.intn(4) != 0, DefaultPoolHasEnabledMember: c.bool()})
	}
	for i := range c.intn(5) {
		p := Pool{ID: fmt.Sprintf("p%d", i), OperatingStatus: choose(c, fuzzDBStatus)}
		for j := range c.intn(4) {
			p.Members = append(p.Members, Member{ID: fmt.Sprintf("m%d-%d", i, j), OperatingStatus: choose(c, fuzzDBStatus)})
		}
		lb.Pools = append(lb.Pools, p)
	}
	t.LB = lb
	return t
}

// message reports on the topology's objects, some unknown ones, and pool
// keys in every shape docs/heartbeat.md ("Pool keys") normalises,
// including colliding ones.
func (c *choices) message(t *Topology) *heartbeat.Message {
	m := &heartbeat.Message{AmphoraID: t.AmphoraID, Listeners: []heartbeat.Listener{}}
	switch v := c.intn(6); v {
	case 0: // no "ver"
	default:
		m.Version, m.HasVersion = int64(v-1), true
	}
	m.RecvTime = fuzzNow.Add(-choose(c, fuzzDelays))
	var listenerIDs, poolIDs []string
	members := map[string][]string{}
	if t.LB != nil {
		for _, l := range t.LB.Listeners {
			listenerIDs = append(listenerIDs, l.ID)
		}
		for _, p := range t.LB.Pools {
			poolIDs = append(poolIDs, p.ID)
			for _, mem := range p.Members {
				members[p.ID] = append(members[p.ID], mem.ID)
			}
		}
	}
	listenerIDs = append(listenerIDs, "l-unknown")
	poolIDs = append(poolIDs, "p-unknown")
	pools := func(listenerID string) []heartbeat.Pool {
		out := []heartbeat.Pool{}
		for range c.intn(5) {
			id := choose(c, poolIDs)
			key := id
			switch c.intn(5) {
			case 1:
				key = id + ":" + listenerID
			case 2:
				key = id + ":" + choose(c, listenerIDs)
			case 3:
				key = id + ":x:" + listenerID
			case 4:
				key = ":" + id
			}
			p := heartbeat.Pool{Key: key, Status: choose(c, fuzzPoolRep), Members: []heartbeat.Member{}}
			ids := append(slices.Clone(members[id]), "m-unknown")
			for range c.intn(5) {
				p.Members = append(p.Members, heartbeat.Member{ID: choose(c, ids), Status: choose(c, fuzzMemberRep)})
			}
			out = append(out, p)
		}
		return out
	}
	seen := map[string]bool{}
	for range c.intn(6) {
		id := choose(c, listenerIDs)
		if seen[id] { // a JSON object: listener ids are unique
			continue
		}
		seen[id] = true
		l := heartbeat.Listener{ID: id, Status: choose(c, fuzzListenerRep), HasStats: true}
		if m.PoolsPerListener() && c.intn(8) != 0 {
			l.HasPools, l.Pools = true, pools(id)
		}
		m.Listeners = append(m.Listeners, l)
	}
	if !m.PoolsPerListener() {
		m.Pools = pools("l0")
	}
	return m
}

func cloneTopology(t *Topology) *Topology {
	c := *t
	if t.LB != nil {
		lb := *t.LB
		lb.Listeners = slices.Clone(t.LB.Listeners)
		lb.Pools = slices.Clone(t.LB.Pools)
		for i := range lb.Pools {
			lb.Pools[i].Members = slices.Clone(lb.Pools[i].Members)
		}
		c.LB = &lb
	}
	return &c
}

func cloneMessage(m *heartbeat.Message) *heartbeat.Message {
	c := *m
	clonePools := func(ps []heartbeat.Pool) []heartbeat.Pool {
		if ps == nil {
			return nil
		}
		out := slices.Clone(ps)
		for i := range out {
			out[i].Members = slices.Clone(ps[i].Members)
		}
		return out
	}
	c.Listeners = slices.Clone(m.Listeners)
	for i := range c.Listeners {
		c.Listeners[i].Pools = clonePools(m.Listeners[i].Pools)
	}
	c.Pools = clonePools(m.Pools)
	return &c
}

func hasChanges(d Decision) bool {
	return len(d.Listeners)+len(d.Pools)+len(d.Members) > 0 || d.LoadBalancer != nil
}

// checkDecision checks the invariants that hold for every message version.
func checkDecision(t *testing.T, topo *Topology, msg *heartbeat.Message, rules Rules, d Decision) {
	t.Helper()
	delay := fuzzNow.Sub(msg.RecvTime)
	if d.Delay != delay || d.ReportedListeners != len(msg.Listeners) {
		t.Fatalf("delay %v, reported %d; want %v, %d", d.Delay, d.ReportedListeners, delay, len(msg.Listeners))
	}
	if d.AbortedAt != "" && !msg.PoolsPerListener() {
		t.Fatalf("a V%d message aborted: %s", msg.Version, d.AbortedAt)
	}
	lb := topo.LB
	if lb == nil {
		if hasChanges(d) || d.AbortedAt != "" {
			t.Fatalf("status writes for an amphora without a load balancer: %+v", d)
		}
		if !topo.AmphoraExists {
			if d.Health != HealthSkipUnknown || d.DeleteComputeID != "" {
				t.Fatalf("unknown amphora: %+v", d)
			}
			return
		}
		want := HealthWrite
		if len(msg.Listeners) != 0 {
			want = HealthSkipCountMismatch
		} else if delay >= rules.HeartbeatInterval {
			want = HealthSkipLate
		}
		if d.Health != HealthSkipZombie || d.DeleteComputeID != topo.ComputeID || d.HealthIfDeleteFails != want || d.ExpectedListeners != 0 {
			t.Fatalf("zombie: %+v; want delete %q, then %v", d, topo.ComputeID, want)
		}
		return
	}
	if d.DeleteComputeID != "" {
		t.Fatalf("compute delete for a live amphora: %+v", d)
	}

	ignore := !lb.Enabled || strings.Contains(lb.ProvisioningStatus, "PENDING")
	expected := -1
	if !ignore {
		expected = 0
		for _, l := range lb.Listeners {
			if l.Enabled {
				expected++
			}
			if !msg.HasVersion && l.Protocol == ProtocolUDP && !l.DefaultPoolHasEnabledMember {
				expected--
			}
		}
	}
	want := HealthWrite
	switch {
	case !ignore && len(msg.Listeners) != expected:
		want = HealthSkipCountMismatch
	case delay >= rules.HeartbeatInterval:
		want = HealthSkipLate
	}
	if d.Health != want || d.ExpectedListeners != expected {
		t.Fatalf("health %v, expected listeners %d; want %v, %d", d.Health, d.ExpectedListeners, want, expected)
	}
	if d.Health == HealthSkipLate && (hasChanges(d) || d.AbortedAt != "") {
		t.Fatalf("a late heartbeat writes statuses: %+v", d)
	}

	dbListeners, dbPools, dbMembers := map[string]string{}, map[string]string{}, map[string]string{}
	for _, l := range lb.Listeners {
		dbListeners[l.ID] = l.OperatingStatus
	}
	for _, p := range lb.Pools {
		dbPools[p.ID] = p.OperatingStatus
		for _, m := range p.Members {
			dbMembers[m.ID] = m.OperatingStatus
		}
	}
	checkChanges(t, "listener", d.Listeners, dbListeners, StatusOnline, StatusDegraded, StatusError, StatusOffline)
	checkChanges(t, "pool", d.Pools, dbPools, StatusOnline, StatusDegraded, StatusError, StatusOffline)
	checkChanges(t, "member", d.Members, dbMembers, StatusOnline, StatusError, StatusDraining, StatusOffline, StatusNoMonitor)
	if c := d.LoadBalancer; c != nil {
		checkChanges(t, "load balancer", []StatusChange{*c}, map[string]string{lb.ID: lb.OperatingStatus},
			StatusOnline, StatusDegraded, StatusError, StatusOffline)
		if d.AbortedAt != "" {
			t.Fatalf("load balancer written after an abort: %+v", d)
		}
	}
	if d.Health != HealthSkipLate && d.AbortedAt == "" {
		final := finalStatus(lb.OperatingStatus, d.LoadBalancer)
		allowed := []string{StatusOnline, StatusDegraded, StatusError}
		if !lb.Enabled {
			allowed = []string{StatusOffline, StatusError}
		}
		if !slices.Contains(allowed, final) {
			t.Fatalf("load balancer (enabled %v) ends %q", lb.Enabled, final)
		}
	}
}

// checkChanges checks that every change targets a known object at most
// once, starts from its database value and ends in a different status of
// the kind's vocabulary.
func checkChanges(t *testing.T, kind string, changes []StatusChange, db map[string]string, vocabulary ...string) {
	t.Helper()
	seen := map[string]bool{}
	for _, c := range changes {
		from, ok := db[c.ID]
		switch {
		case !ok:
			t.Fatalf("%s %q written but not in the topology", kind, c.ID)
		case seen[c.ID]:
			t.Fatalf("%s %q written twice", kind, c.ID)
		case c.From != from:
			t.Fatalf("%s %q: From %q, database has %q", kind, c.ID, c.From, from)
		case !slices.Contains(vocabulary, c.To):
			t.Fatalf("%s %q set to %q, not one of %v", kind, c.ID, c.To, vocabulary)
		case strings.EqualFold(c.From, c.To):
			t.Fatalf("%s %q written without a change: %q to %q", kind, c.ID, c.From, c.To)
		}
		seen[c.ID] = true
	}
}

// finalStatus is the status an object has after the decision, upper-cased.
func finalStatus(db string, c *StatusChange) string {
	if c != nil {
		return c.To
	}
	return strings.ToUpper(db)
}

func finalOf(changes []StatusChange, id, db string) string {
	for _, c := range changes {
		if c.ID == id {
			return c.To
		}
	}
	return strings.ToUpper(db)
}

// checkRollUp checks a V2+ decision against the roll-up rules of Octavia's
// UpdateHealthDb (octavia/amphorae/drivers/health/heartbeat_udp.py).
func checkRollUp(t *testing.T, lb *LoadBalancer, msg *heartbeat.Message, d Decision) {
	t.Helper()
	if d.Health == HealthSkipLate {
		return
	}
	reportedListeners := map[string]string{}
	for _, l := range msg.Listeners {
		reportedListeners[l.ID] = l.Status
	}
	anyFull := false
	for _, l := range lb.Listeners {
		want := strings.ToUpper(l.OperatingStatus)
		switch rep, ok := reportedListeners[l.ID]; {
		case !ok && l.Enabled && lb.ProvisioningStatus == "ACTIVE":
			want = StatusError
		case !ok:
			want = StatusOffline
		case rep == "OPEN":
			want = StatusOnline
		case rep == "FULL":
			want, anyFull = StatusDegraded, true
		}
		if got := finalOf(d.Listeners, l.ID, l.OperatingStatus); got != want {
			t.Fatalf("listener %s (enabled %v, reported %q) ends %s, want %s", l.ID, l.Enabled, reportedListeners[l.ID], got, want)
		}
	}

	reportedPools := map[string]heartbeat.Pool{}
	for _, p := range heartbeat.NormalizePools(msg.Pools) {
		reportedPools[p.Key] = p
	}
	anyPoolDown, anyDegraded := false, false
	for _, p := range lb.Pools {
		rep, ok := reportedPools[p.ID]
		wantPool := strings.ToUpper(p.OperatingStatus)
		if !ok {
			wantPool = StatusOffline
		}
		reportedMembers := map[string]string{}
		if ok {
			for _, m := range rep.Members {
				reportedMembers[m.ID] = m.Status
			}
		}
		memberDown := false
		for _, m := range p.Members {
			want := strings.ToUpper(m.OperatingStatus)
			status, reported := reportedMembers[m.ID]
			switch {
			case !ok:
			case !reported && m.OperatingStatus != StatusNoMonitor:
				want = StatusOffline
			case !reported:
			case strings.HasPrefix(status, "UP"):
				want = StatusOnline
			case strings.HasPrefix(status, "DOWN"):
				want, memberDown = StatusError, true
			case status == "DRAIN":
				want = StatusDraining
			case status == "MAINT":
				want = StatusOffline
			case status == "no check":
				want = StatusNoMonitor
			}
			if got := finalOf(d.Members, m.ID, m.OperatingStatus); got != want {
				t.Fatalf("member %s of pool %s (pool reported %v, member %q) ends %s, want %s", m.ID, p.ID, ok, status, got, want)
			}
		}
		switch {
		case ok && rep.Status == "UP" && memberDown:
			wantPool, anyDegraded = StatusDegraded, true
		case ok && rep.Status == "UP":
			wantPool = StatusOnline
		case ok && rep.Status == "DOWN":
			wantPool, anyPoolDown = StatusError, true
		}
		if got := finalOf(d.Pools, p.ID, p.OperatingStatus); got != wantPool {
			t.Fatalf("pool %s (reported %v %q) ends %s, want %s", p.ID, ok, rep.Status, got, wantPool)
		}
	}

	want := StatusOnline
	switch {
	case anyPoolDown:
		want = StatusError
	case !lb.Enabled:
		want = StatusOffline
	case anyFull || anyDegraded:
		want = StatusDegraded
	}
	if got := finalStatus(lb.OperatingStatus, d.LoadBalancer); got != want {
		t.Fatalf("load balancer (enabled %v) ends %s, want %s", lb.Enabled, got, want)
	}
}

// sameChanges compares two decisions with their change lists taken as sets.
func sameChanges(a, b Decision) bool {
	sorted := func(c []StatusChange) []StatusChange {
		c = slices.Clone(c)
		slices.SortFunc(c, func(x, y StatusChange) int { return strings.Compare(x.ID, y.ID) })
		return c
	}
	a.Listeners, a.Pools, a.Members = sorted(a.Listeners), sorted(a.Pools), sorted(a.Members)
	b.Listeners, b.Pools, b.Members = sorted(b.Listeners), sorted(b.Pools), sorted(b.Members)
	return reflect.DeepEqual(a, b)
}
