package agent

import (
	"bytes"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/octavia-vpp/health/vpp"
	"github.com/octavia-vpp/health/vpp/sim"
)

func TestMapWeight(t *testing.T) {
	for _, c := range []struct {
		in   int
		want uint8
	}{{0, 0}, {1, 1}, {2, 1}, {3, 2}, {128, 50}, {255, 100}, {256, 100}, {-5, 0}, {1000, 100}} {
		if got := MapWeight(c.in); got != c.want {
			t.Errorf("MapWeight(%d) = %d, want %d", c.in, got, c.want)
		}
	}
}

// health returns a probed machine (rise 2, fall 2) after the given results.
func health(probes string) Health {
	h := NewHealth(2, 2)
	for _, ok := range results(probes) {
		h, _ = h.Observe(ok)
	}
	return h
}

// member builds a MemberInput: spec is "id[:flags]" with flags
// b = backup, x = disabled, d = drain mark, m = maint mark, 0 = weight 0,
// u/D/U/? = health up / down / up-but-failing / never probed.
func member(spec string) MemberInput {
	id, flags, _ := strings.Cut(spec, ":")
	m := MemberInput{ID: id, Addr: netip.MustParseAddr("10.0.0." + id[1:]), Weight: 50, Enabled: true, Monitored: true, Health: health("p")}
	for _, f := range flags {
		switch f {
		case 'b':
			m.Backup = true
		case 'x':
			m.Enabled = false
		case 'd':
			m.Mark = MarkDrain
		case 'm':
			m.Mark = MarkMaint
		case '0':
			m.Weight = 0
		case 'u':
			m.Health = health("p")
		case 'D':
			m.Health = health("f")
		case 'U':
			m.Health = health("pf")
		case '?':
			m.Health = NewHealth(2, 2)
		case 'n':
			m.Monitored = false
			m.Health = Health{}
		}
	}
	return m
}

// show renders a plan as "id=status/weight[/flush][/out]" entries.
func show(p PoolPlan) string {
	var parts []string
	for _, m := range p.Members {
		s := fmt.Sprintf("%s=%s/%d", m.ID, m.Status, m.Backend.Weight)
		if m.Backend.Flush {
			s += "/flush"
		}
		if !m.InVPP {
			s += "/out"
		}
		parts = append(parts, s)
	}
	return p.Status + " " + strings.Join(parts, " ")
}

func TestPlanPool(t *testing.T) {
	for _, c := range []struct {
		name      string
		monitored bool
		disabled  bool
		members   []string
		want      string
		allKnown  bool
	}{
		{"all up", true, false, []string{"m1:u", "m2:u"}, "UP m1=UP/50 m2=UP/50", true},
		{"one down is flushed", true, false, []string{"m1:u", "m2:D"}, "UP m1=UP/50 m2=DOWN/0/flush", true},
		{"failing but still up keeps weight", true, false, []string{"m1:U"}, "UP m1=UP 1/2/50", true},
		{"all down: pool DOWN", true, false, []string{"m1:D", "m2:D"}, "DOWN m1=DOWN/0/flush m2=DOWN/0/flush", true},
		{"never probed: weight 0, no flush", true, false, []string{"m1:?", "m2:u"}, "UP m1=DOWN 1/2/0 m2=UP/50", false},
		{"disabled member removed", true, false, []string{"m1:x", "m2:u"}, "UP m1=MAINT/0/out m2=UP/50", true},
		{"maint mark removed", true, false, []string{"m1:m", "m2:u"}, "UP m1=MAINT/0/out m2=UP/50", true},
		{"maint mark on a down member", true, false, []string{"m1:mD"}, "DOWN m1=MAINT/0/out", true},
		{"drain mark keeps flows", true, false, []string{"m1:d", "m2:u"}, "UP m1=DRAIN/0 m2=UP/50", true},
		{"drain mark on a down member reports DOWN", true, false, []string{"m1:dD", "m2:u"}, "UP m1=DOWN/0/flush m2=UP/50", true},
		{"configured weight 0 is DRAIN", true, false, []string{"m1:0", "m2:u"}, "UP m1=DRAIN/0 m2=UP/50", true},
		{"only drained members: pool DOWN", true, false, []string{"m1:d"}, "DOWN m1=DRAIN/0", true},
		{"backup idle while a primary is up", true, false, []string{"m1:u", "m2:bu"}, "UP m1=UP/50 m2=UP/0", true},
		{"backup takes over when primaries are down", true, false, []string{"m1:D", "m2:bu"}, "UP m1=DOWN/0/flush m2=UP/50", true},
		{"backup takes over when primaries are drained", true, false, []string{"m1:d", "m2:bu"}, "UP m1=DRAIN/0 m2=UP/50", true},
		{"backup takes over when primaries are in maintenance", true, false, []string{"m1:m", "m2:bu"}, "UP m1=MAINT/0/out m2=UP/50", true},
		{"backup takes over from a weight-0 primary", true, false, []string{"m1:0", "m2:bu"}, "UP m1=DRAIN/0 m2=UP/50", true},
		{"backup idle while a failing primary is still up", true, false, []string{"m1:U", "m2:bu"}, "UP m1=UP 1/2/50 m2=UP/0", true},
		{"down backup", true, false, []string{"m1:D", "m2:bD"}, "DOWN m1=DOWN/0/flush m2=DOWN/0/flush", true},
		{"two backups share when all primaries are down", true, false, []string{"m1:D", "m2:bu", "m3:bu"}, "UP m1=DOWN/0/flush m2=UP/50 m3=UP/50", true},
		{"no monitor", false, false, []string{"m1:n", "m2:n0", "m3:nd"}, "UP m1=no check/50 m2=DRAIN/0 m3=DRAIN/0", true},
		{"no monitor, backup idle", false, false, []string{"m1:n", "m2:nb"}, "UP m1=no check/50 m2=no check/0", true},
		{"no monitor, empty pool", false, false, nil, "UP ", true},
		{"monitored, empty pool", true, false, nil, "DOWN ", true},
		{"disabled pool", true, true, []string{"m1:u"}, "DOWN m1=MAINT/0/out", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			var ins []MemberInput
			for _, s := range c.members {
				ins = append(ins, member(s))
			}
			p := PlanPool(c.monitored, !c.disabled, ins)
			if got := show(p); got != c.want {
				t.Errorf("got  %q\nwant %q", got, c.want)
			}
			if p.AllKnown != c.allKnown {
				t.Errorf("AllKnown %v, want %v", p.AllKnown, c.allKnown)
			}
			for _, b := range p.Backends() {
				if !b.Addr.IsValid() {
					t.Errorf("backend without address")
				}
			}
		})
	}
}

func TestListenerState(t *testing.T) {
	plan := func(ms ...string) PoolPlan {
		var ins []MemberInput
		for _, s := range ms {
			ins = append(ins, member(s))
		}
		return PlanPool(true, true, ins)
	}
	for _, c := range []struct {
		name    string
		hasPool bool
		plan    PoolPlan
		want    ListenerState
	}{
		{"no pool", false, PoolPlan{}, ListenerDown},
		{"one serving member", true, plan("m1:u", "m2:D"), ListenerUp},
		{"nothing probed yet", true, plan("m1:?", "m2:?"), ListenerUnknown},
		{"all down", true, plan("m1:D", "m2:?"), ListenerDown},
		{"only maintenance", true, plan("m1:m"), ListenerDown},
		{"maintenance and unprobed", true, plan("m1:m", "m2:?"), ListenerDown},
		{"empty pool", true, plan(), ListenerDown},
		{"backup serving", true, plan("m1:D", "m2:bu"), ListenerUp},
	} {
		if got := ListenerStateOf(c.hasPool, c.plan); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

func TestWarmup(t *testing.T) {
	w := Warmup{MinDelay: 5 * time.Second, MaxDelay: 30 * time.Second}
	for _, c := range []struct {
		elapsed  time.Duration
		allKnown bool
		want     bool
	}{
		{0, true, false},
		{4 * time.Second, true, false},
		{5 * time.Second, true, true},
		{5 * time.Second, false, false},
		{29 * time.Second, false, false},
		{30 * time.Second, false, true},
		{time.Hour, false, true},
	} {
		if got := w.Release(c.elapsed, c.allKnown); got != c.want {
			t.Errorf("Release(%v, %v) = %v, want %v", c.elapsed, c.allKnown, got, c.want)
		}
	}
}

func TestBuildMessageShape(t *testing.T) {
	l := &Listener{ID: "L1"}
	pool := &Pool{ID: "P1"}
	plan := PlanPool(true, true, []MemberInput{member("m1:u"), member("m2:U"), member("m3:D")})
	plans := []listenerPlan{{l: l, pool: pool, plan: plan}, {l: &Listener{ID: "L2"}}}
	deltas := map[string]Sample{"L1": {Bin: 4, Bout: 8, EReq: 5, Stot: 2}}
	msg := buildMessage(nil, "amp", 7, plans, deltas, []int64{3, 0})
	got := string(msg.AppendJSON(nil))
	want := `{"id": "amp", "seq": 7, "listeners": {"L1": {"status": "OPEN", "stats": {"tx": 0, "rx": 4, "conns": 3, "totconns": 2, "ereq": 5}}, ` +
		`"L2": {"status": "OPEN", "stats": {"tx": 0, "rx": 0, "conns": 0, "totconns": 0, "ereq": 0}}}, ` +
		`"pools": {"P1:L1": {"status": "UP", "members": {"m1": "UP", "m2": "UP 1/2", "m3": "DOWN"}}}, "ver": 3}`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	// The heartbeat loop reuses its message: a larger one, then this one
	// again, must leave nothing of the first behind.
	big := []listenerPlan{{l: l, pool: pool, plan: PlanPool(true, true, []MemberInput{member("m1:u"), member("m2:U"), member("m3:D"), member("m4:U")})},
		{l: &Listener{ID: "L2"}, pool: &Pool{ID: "P2"}, plan: plan}, {l: &Listener{ID: "L3"}}}
	reused := buildMessage(msg, "amp", 6, big, nil, nil)
	reused = buildMessage(reused, "amp", 7, plans, deltas, []int64{3, 0})
	if got := string(reused.AppendJSON(nil)); got != want {
		t.Errorf("reused message\ngot  %s\nwant %s", got, want)
	}
}

// While VPP counts as reachable (silent for at most vpp_unreachable_limit)
// a heartbeat reports every listener as OPEN, the last known state; past
// the limit it leaves out the listeners VPP serves, with their pools, as
// Octavia's agent does for a HAProxy that is not running. It never says
// STOP, which Octavia's manager ignores.
func TestReportedListenersFollowVPPSilence(t *testing.T) {
	vip := []vpp.VIP{{Key: vip80}}
	pool := &Pool{ID: "P1"}
	plans := []listenerPlan{
		{l: &Listener{ID: "L1"}, pool: pool, vips: vip, plan: PlanPool(true, true, []MemberInput{member("m1:U")})},
		{l: &Listener{ID: "L2"}, vips: vip},
		{l: &Listener{ID: "L3"}}, // no VIP: nothing of it goes through VPP
	}
	const limit = 30 * time.Second
	for _, c := range []struct {
		silence time.Duration
		want    []string
	}{
		{0, []string{"L1", "L2", "L3"}},
		{time.Second, []string{"L1", "L2", "L3"}},
		{29 * time.Second, []string{"L1", "L2", "L3"}},
		{limit, []string{"L1", "L2", "L3"}},
		{limit + time.Millisecond, []string{"L3"}},
		{time.Hour, []string{"L3"}},
		{neverReached, []string{"L3"}},
	} {
		msg := buildMessage(nil, "amp", 0, reportedPlans(plans, c.silence, limit), nil, nil)
		var got []string
		for _, l := range msg.Listeners {
			got = append(got, l.ID)
			if l.Status != "OPEN" {
				t.Errorf("silence %v: listener %s status %q; want OPEN", c.silence, l.ID, l.Status)
			}
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("silence %v: listeners %v; want %v", c.silence, got, c.want)
		}
		wantPools := 0
		if slices.Contains(c.want, "L1") {
			wantPools = 1
		}
		if len(msg.Pools) != wantPools {
			t.Errorf("silence %v: pools %+v; want %d", c.silence, msg.Pools, wantPools)
		}
	}
}

// The datagram is compressed at heartbeat_zlib_level: the zlib header
// says which level class the sender used, and the manager opens any.
func TestHeartbeatZlibLevel(t *testing.T) {
	for _, c := range []struct {
		level  int
		header []byte
	}{{0, []byte{0x78, 0x01}}, {1, []byte{0x78, 0x01}}, {6, []byte{0x78, 0x9c}}, {9, []byte{0x78, 0xda}}} {
		ta := newTestAgent(t, agentLB, sim.New(sim.Config{Logger: quietLogger()}), newFakeProber(), func(cfg *Config) {
			cfg.HeartbeatZlibLevel = c.level
			cfg.HeartbeatInterval = time.Hour
		})
		// The loop's own heartbeat reuses the buffers: check under its lock.
		ta.hbMu.Lock()
		msg, datagram := ta.sealHeartbeat()
		if !bytes.HasPrefix(datagram, c.header) {
			t.Errorf("level %d: header % x, want % x", c.level, datagram[:2], c.header)
		}
		got, _, err := ta.keyring.Open(datagram)
		if err != nil || got.AmphoraID != msg.AmphoraID || got.Seq != msg.Seq {
			t.Errorf("level %d: opened %+v, %v", c.level, got, err)
		}
		ta.hbMu.Unlock()
	}
}
