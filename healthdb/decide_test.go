package healthdb

import (
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/octavia-vpp/health/heartbeat"
)

// The cases reproduce Octavia 11's TestUpdateHealthDb catalogue
// (octavia/tests/unit/amphorae/drivers/health/test_heartbeat_udp.py) and
// probes of the real 11.0.0 update_health. As in Octavia's fixtures, database
// statuses start as "bogus" so that any mapped status is a change.

const bogus = "bogus"

var (
	now   = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	rules = Rules{HeartbeatInterval: 10 * time.Second}
)

type lbOpt func(*LoadBalancer)

func disabled(lb *LoadBalancer)          { lb.Enabled = false }
func provisioning(s string) lbOpt        { return func(lb *LoadBalancer) { lb.ProvisioningStatus = s } }
func lbStatus(s string) lbOpt            { return func(lb *LoadBalancer) { lb.OperatingStatus = s } }
func withListeners(ls ...Listener) lbOpt { return func(lb *LoadBalancer) { lb.Listeners = ls } }
func withPools(ps ...Pool) lbOpt         { return func(lb *LoadBalancer) { lb.Pools = ps } }

func topo(opts ...lbOpt) *Topology {
	lb := &LoadBalancer{ID: "lb-1", Enabled: true, ProvisioningStatus: "ACTIVE", OperatingStatus: bogus}
	for _, o := range opts {
		o(lb)
	}
	return &Topology{AmphoraID: "amp-1", AmphoraExists: true, ComputeID: "compute-1", LB: lb}
}

func listener(id string) Listener {
	return Listener{ID: id, OperatingStatus: bogus, Protocol: "HTTP", Enabled: true}
}

func disabledListener(id string) Listener {
	l := listener(id)
	l.Enabled = false
	return l
}

func udpListener(id string, hasEnabledMember bool) Listener {
	l := listener(id)
	l.Protocol = ProtocolUDP
	l.DefaultPoolHasEnabledMember = hasEnabledMember
	return l
}

func pool(id string, members ...Member) Pool {
	return Pool{ID: id, OperatingStatus: bogus, Members: members}
}

func member(id string) Member { return Member{ID: id, OperatingStatus: bogus} }

func memberIn(id, status string) Member { return Member{ID: id, OperatingStatus: status} }

type msgOpt func(*heartbeat.Message)

func ver(v int64) msgOpt         { return func(m *heartbeat.Message) { m.Version, m.HasVersion = v, true } }
func noVer(m *heartbeat.Message) { m.Version, m.HasVersion = 0, false }
func late(m *heartbeat.Message)  { m.RecvTime = now.Add(-rules.HeartbeatInterval - time.Second) }
func reports(ls ...heartbeat.Listener) msgOpt {
	return func(m *heartbeat.Message) { m.Listeners = ls }
}
func reportsPools(ps ...heartbeat.Pool) msgOpt { return func(m *heartbeat.Message) { m.Pools = ps } }

// msg builds a V2 heartbeat by default, received a second ago.
func msg(opts ...msgOpt) *heartbeat.Message {
	m := &heartbeat.Message{AmphoraID: "amp-1", Version: 2, HasVersion: true, Listeners: []heartbeat.Listener{},
		Pools: []heartbeat.Pool{}, RecvTime: now.Add(-time.Second)}
	for _, o := range opts {
		o(m)
	}
	if m.PoolsPerListener() {
		m.Pools = nil
	}
	return m
}

func rl(id, status string, pools ...heartbeat.Pool) heartbeat.Listener {
	return heartbeat.Listener{ID: id, Status: status, HasStats: true, Pools: pools, HasPools: pools != nil}
}

// rlPools is a pre-V2 listener that reports exactly these pools (maybe none).
func rlPools(id, status string, pools ...heartbeat.Pool) heartbeat.Listener {
	l := rl(id, status)
	l.Pools, l.HasPools = append([]heartbeat.Pool{}, pools...), true
	return l
}

func rp(key, status string, members ...string) heartbeat.Pool {
	p := heartbeat.Pool{Key: key, Status: status, Members: []heartbeat.Member{}}
	for i := 0; i+1 < len(members); i += 2 {
		p.Members = append(p.Members, heartbeat.Member{ID: members[i], Status: members[i+1]})
	}
	return p
}

// want is the expected decision, with changes given as id -> new status.
type want struct {
	health    HealthOutcome
	expected  int // -1: the gate was not applied
	listeners map[string]string
	pools     map[string]string
	members   map[string]string
	lb        string // "" for no change
	deleteID  string
	ifDelFail HealthOutcome
	aborted   bool
}

func changes(cs []StatusChange) map[string]string {
	out := map[string]string{}
	for _, c := range cs {
		if _, dup := out[c.ID]; dup {
			out[c.ID+" (again)"] = c.To
		}
		out[c.ID] = c.To
	}
	return out
}

func orEmpty(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func check(t *testing.T, got Decision, w want) {
	t.Helper()
	if got.Health != w.health {
		t.Errorf("health %v, want %v", got.Health, w.health)
	}
	if got.ExpectedListeners != w.expected {
		t.Errorf("expected listeners %d, want %d", got.ExpectedListeners, w.expected)
	}
	for _, c := range []struct {
		what      string
		got, want map[string]string
	}{
		{"listeners", changes(got.Listeners), orEmpty(w.listeners)},
		{"pools", changes(got.Pools), orEmpty(w.pools)},
		{"members", changes(got.Members), orEmpty(w.members)},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s changes %v, want %v", c.what, c.got, c.want)
		}
	}
	gotLB := ""
	if got.LoadBalancer != nil {
		gotLB = got.LoadBalancer.To
	}
	if gotLB != w.lb {
		t.Errorf("load balancer change %q, want %q", gotLB, w.lb)
	}
	if got.DeleteComputeID != w.deleteID || (w.deleteID != "" && got.HealthIfDeleteFails != w.ifDelFail) {
		t.Errorf("delete %q (then %v), want %q (then %v)", got.DeleteComputeID, got.HealthIfDeleteFails, w.deleteID, w.ifDelFail)
	}
	if (got.AbortedAt != "") != w.aborted {
		t.Errorf("aborted at %q, want aborted=%v", got.AbortedAt, w.aborted)
	}
}

func TestDecideOctaviaCatalogue(t *testing.T) {
	twoMemberPool := pool("pool-1", member("member-1"), member("member-2"))
	cases := []struct {
		name string
		topo *Topology
		msg  *heartbeat.Message
		want want
	}{
		{"no_listener: ver1, LB without listeners",
			topo(), msg(ver(1)),
			want{health: HealthWrite, expected: 0, lb: StatusOnline}},
		{"lb_disabled: one DB listener, none reported, count ignored",
			topo(disabled, withListeners(listener("listener-1"))), msg(),
			want{health: HealthWrite, expected: -1, listeners: map[string]string{"listener-1": StatusError}, lb: StatusOffline}},
		{"lb_pending_no_listener",
			topo(provisioning("PENDING_UPDATE"), withListeners(listener("listener-1"))), msg(),
			want{health: HealthWrite, expected: -1, listeners: map[string]string{"listener-1": StatusOffline}, lb: StatusOnline}},
		{"missing_listener: no health, LB still updated",
			topo(withListeners(listener("listener-1"))), msg(),
			want{health: HealthSkipCountMismatch, expected: 1, listeners: map[string]string{"listener-1": StatusError}, lb: StatusOnline}},
		{"recv_time_stale: nothing at all",
			topo(withListeners(listener("listener-1")), withPools(pool("pool-1", member("member-1")))),
			msg(late, reports(rl("listener-1", "OPEN")), reportsPools(rp("pool-1:listener-1", "UP", "member-1", "UP"))),
			want{health: HealthSkipLate, expected: 1}},
		{"online",
			topo(withListeners(listener("listener-1")), withPools(pool("pool-1", member("member-1")))),
			msg(reports(rl("listener-1", "OPEN")), reportsPools(rp("pool-1:listener-1", "UP", "member-1", "UP"))),
			want{health: HealthWrite, expected: 1, listeners: map[string]string{"listener-1": StatusOnline},
				pools: map[string]string{"pool-1": StatusOnline}, members: map[string]string{"member-1": StatusOnline}, lb: StatusOnline}},
		{"online, then a second enabled DB listener: count mismatch",
			topo(withListeners(listener("listener-1"), listener("listener-2")), withPools(pool("pool-1", member("member-1")))),
			msg(reports(rl("listener-1", "OPEN")), reportsPools(rp("pool-1:listener-1", "UP", "member-1", "UP"))),
			want{health: HealthSkipCountMismatch, expected: 2,
				listeners: map[string]string{"listener-1": StatusOnline, "listener-2": StatusError},
				pools:     map[string]string{"pool-1": StatusOnline}, members: map[string]string{"member-1": StatusOnline}, lb: StatusOnline}},
		{"listener_disabled: a disabled DB listener is not counted",
			topo(withListeners(listener("listener-1"), disabledListener("listener-2")), withPools(pool("pool-1", member("member-1")))),
			msg(reports(rl("listener-1", "OPEN")), reportsPools(rp("pool-1:listener-1", "UP", "member-1", "UP"))),
			want{health: HealthWrite, expected: 1,
				listeners: map[string]string{"listener-1": StatusOnline, "listener-2": StatusOffline},
				pools:     map[string]string{"pool-1": StatusOnline}, members: map[string]string{"member-1": StatusOnline}, lb: StatusOnline}},
		{"lb_pool_health_offline: listener reports pools {}",
			topo(withListeners(listener("listener-1")), withPools(pool("pool-1", member("member-1")))),
			msg(ver(1), reports(rlPools("listener-1", "OPEN"))),
			want{health: HealthWrite, expected: 1, listeners: map[string]string{"listener-1": StatusOnline},
				pools: map[string]string{"pool-1": StatusOffline}, lb: StatusOnline}},
		{"multiple_listeners_one_error_pool",
			topo(withListeners(listener("listener-1"), listener("listener-2")),
				withPools(pool("pool-1", member("member-1")), pool("pool-2", member("member-2")))),
			msg(ver(1), reports(
				rlPools("listener-1", "OPEN", rp("pool-1", "DOWN", "member-1", "ERROR")),
				rlPools("listener-2", "OPEN", rp("pool-2", "UP", "member-2", "UP")))),
			want{health: HealthWrite, expected: 2,
				listeners: map[string]string{"listener-1": StatusOnline, "listener-2": StatusOnline},
				pools:     map[string]string{"pool-1": StatusError, "pool-2": StatusOnline},
				members:   map[string]string{"member-2": StatusOnline}, lb: StatusError}},
		{"lb_and_list_pool_health_online: a pool under two listeners is updated once",
			topo(withListeners(listener("listener-1"), listener("listener-2")), withPools(pool("pool-1", member("member-1")))),
			msg(ver(1), reports(
				rlPools("listener-1", "OPEN", rp("pool-1", "UP", "member-1", "UP")),
				rlPools("listener-2", "OPEN", rp("pool-1", "UP", "member-1", "UP")))),
			want{health: HealthWrite, expected: 2,
				listeners: map[string]string{"listener-1": StatusOnline, "listener-2": StatusOnline},
				pools:     map[string]string{"pool-1": StatusOnline}, members: map[string]string{"member-1": StatusOnline}, lb: StatusOnline}},
		{"v2_lb_and_list_pool_health_online: two keys, one pool, one update",
			topo(withListeners(listener("listener-id-1"), listener("listener-id-2")), withPools(pool("pool-id-1", member("member-1")))),
			msg(reports(rl("listener-id-1", "OPEN"), rl("listener-id-2", "OPEN")), reportsPools(
				rp("pool-id-1:listener-id-1", "UP", "member-1", "UP"),
				rp("pool-id-1:listener-id-2", "UP", "member-1", "UP"))),
			want{health: HealthWrite, expected: 2,
				listeners: map[string]string{"listener-id-1": StatusOnline, "listener-id-2": StatusOnline},
				pools:     map[string]string{"pool-id-1": StatusOnline}, members: map[string]string{"member-1": StatusOnline}, lb: StatusOnline}},
		{"pool_offline: only an unknown pool reported",
			topo(withListeners(listener("listener-1")), withPools(pool("pool-id-1"), Pool{ID: "pool-id-2", OperatingStatus: StatusOffline})),
			msg(reports(rl("listener-1", "OPEN")), reportsPools(rp("pool-id-5:listener-1", "UP"))),
			want{health: HealthWrite, expected: 1, listeners: map[string]string{"listener-1": StatusOnline},
				pools: map[string]string{"pool-id-1": StatusOffline}, lb: StatusOnline}},
		{"member_drain", topoOneMember(member("member-1")), msgOneMember("UP", "DRAIN"),
			oneMember(StatusOnline, map[string]string{"member-1": StatusDraining}, StatusOnline)},
		{"member_maint", topoOneMember(member("member-1")), msgOneMember("UP", "MAINT"),
			oneMember(StatusOnline, map[string]string{"member-1": StatusOffline}, StatusOnline)},
		{"member_unknown", topoOneMember(member("member-1")), msgOneMember("UP", "blah"),
			oneMember(StatusOnline, nil, StatusOnline)},
		{"member_down", topoOneMember(member("member-1")), msgOneMember("UP", "DOWN"),
			oneMember(StatusDegraded, map[string]string{"member-1": StatusError}, StatusDegraded)},
		{"member_missing_no_hm: NO_MONITOR member not reported",
			topoOneMember(memberIn("member-1", StatusNoMonitor)),
			msg(reports(rl("listener-1", "OPEN")), reportsPools(rp("pool-1:listener-1", "UP"))),
			oneMember(StatusOnline, nil, StatusOnline)},
		{"member_down_no_hm: NO_MONITOR member reported MAINT",
			topoOneMember(memberIn("member-1", StatusNoMonitor)), msgOneMember("UP", "MAINT"),
			oneMember(StatusOnline, map[string]string{"member-1": StatusOffline}, StatusOnline)},
		{"member_no_check", topoOneMember(member("member-1")), msgOneMember("UP", "no check"),
			oneMember(StatusOnline, map[string]string{"member-1": StatusNoMonitor}, StatusOnline)},
		{"member_admin_down: the unreported member goes OFFLINE",
			topo(withListeners(listener("listener-1")), withPools(twoMemberPool)),
			msg(reports(rl("listener-1", "OPEN")), reportsPools(rp("pool-1:listener-1", "UP", "member-1", "UP"))),
			oneMember(StatusOnline, map[string]string{"member-1": StatusOnline, "member-2": StatusOffline}, StatusOnline)},
		{"list_full_member_down",
			topoOneMember(member("member-1")),
			msg(reports(rl("listener-1", "FULL")), reportsPools(rp("pool-1:listener-1", "UP", "member-1", "DOWN"))),
			want{health: HealthWrite, expected: 1, listeners: map[string]string{"listener-1": StatusDegraded},
				pools: map[string]string{"pool-1": StatusDegraded}, members: map[string]string{"member-1": StatusError}, lb: StatusDegraded}},
		{"list_full_member_down, then an extra DB listener: no health",
			topo(withListeners(listener("listener-1"), listener("listener-2")), withPools(pool("pool-1", member("member-1")))),
			msg(reports(rl("listener-1", "FULL")), reportsPools(rp("pool-1:listener-1", "UP", "member-1", "DOWN"))),
			want{health: HealthSkipCountMismatch, expected: 2,
				listeners: map[string]string{"listener-1": StatusDegraded, "listener-2": StatusError},
				pools:     map[string]string{"pool-1": StatusDegraded}, members: map[string]string{"member-1": StatusError}, lb: StatusDegraded}},
		{"health_error: pool DOWN, member DOWN",
			topoOneMember(member("member-1")), msgOneMember("DOWN", "DOWN"),
			oneMember(StatusError, map[string]string{"member-1": StatusError}, StatusError)},
		{"health_full: five listeners",
			topo(withListeners(listener("l1"), listener("l2"), listener("l3"), listener("l4"), listener("l5")),
				withPools(pool("p1", member("m1")), pool("p2", member("m2")), pool("p3", member("m3a"), member("m3b")),
					pool("p4", member("m4")), pool("p5", member("m5")))),
			msg(reports(rl("l1", "FULL"), rl("l2", "FULL"), rl("l3", "OPEN"), rl("l4", "OPEN"), rl("l5", bogus)),
				reportsPools(rp("p1:l1", "DOWN", "m1", "DOWN"), rp("p2:l2", "UP", "m2", "UP"),
					rp("p3:l3", "UP", "m3a", "UP", "m3b", "DOWN"), rp("p4:l4", "UP", "m4", "DRAINING"),
					rp("p5:l5", bogus, "m5", bogus))),
			want{health: HealthWrite, expected: 5,
				listeners: map[string]string{"l1": StatusDegraded, "l2": StatusDegraded, "l3": StatusOnline, "l4": StatusOnline},
				pools:     map[string]string{"p1": StatusError, "p2": StatusOnline, "p3": StatusDegraded, "p4": StatusOnline},
				members:   map[string]string{"m1": StatusError, "m2": StatusOnline, "m3a": StatusOnline, "m3b": StatusError},
				lb:        StatusError}},
		{"zombie: amphora row without a live LB",
			&Topology{AmphoraID: "amp-1", AmphoraExists: true, ComputeID: "compute-1"}, msg(),
			want{health: HealthSkipZombie, expected: 0, deleteID: "compute-1", ifDelFail: HealthWrite}},
		{"no_db_lb: zombie reporting listeners would not write health even if the delete fails",
			&Topology{AmphoraID: "amp-1", AmphoraExists: true, ComputeID: "compute-1"}, msg(reports(rl("listener-1", "OPEN"))),
			want{health: HealthSkipZombie, expected: 0, deleteID: "compute-1", ifDelFail: HealthSkipCountMismatch}},
		{"unknown amphora: nothing",
			&Topology{AmphoraID: "amp-1"}, msg(),
			want{health: HealthSkipUnknown, expected: -1}},
		{"no_status_change: everything already ONLINE",
			&Topology{AmphoraID: "amp-1", AmphoraExists: true, LB: &LoadBalancer{ID: "lb-1", Enabled: true, ProvisioningStatus: "ACTIVE",
				OperatingStatus: StatusOnline, Listeners: []Listener{{ID: "listener-1", OperatingStatus: StatusOnline, Protocol: "HTTP", Enabled: true}},
				Pools: []Pool{{ID: "pool-1", OperatingStatus: StatusOnline, Members: []Member{memberIn("member-1", StatusOnline)}}}}},
			msg(reports(rl("listener-1", "OPEN")), reportsPools(rp("pool-1:listener-1", "UP", "member-1", "UP"))),
			want{health: HealthWrite, expected: 1}},
		{"lb_admin_down", topo(disabled), msg(), want{health: HealthWrite, expected: -1, lb: StatusOffline}},
		{"lb_admin_up", topo(), msg(), want{health: HealthWrite, expected: 0, lb: StatusOnline}},
		{"forbid_to_stale_udp_listener_amphora: three UDP listeners without enabled members",
			topo(withListeners(udpListener("l1", false), udpListener("l2", false), udpListener("l3", false))), msg(noVer),
			want{health: HealthWrite, expected: 0,
				listeners: map[string]string{"l1": StatusError, "l2": StatusError, "l3": StatusError}, lb: StatusOnline}},
		{"with_without_udp_listeners: versionless with TCP only, no subtraction",
			topo(withListeners(listener("l1"))), msg(noVer),
			want{health: HealthSkipCountMismatch, expected: 1, listeners: map[string]string{"l1": StatusError}, lb: StatusOnline}},
		{"listener_count_for_UDP: UDP with an enabled member stays counted",
			topo(withListeners(udpListener("l1", true))), msg(noVer, reports(rlPools("l1", "OPEN"))),
			want{health: HealthWrite, expected: 1, listeners: map[string]string{"l1": StatusOnline}, lb: StatusOnline}},
		{"listener_count_for_UDP: member disabled, 1 becomes 0",
			topo(withListeners(udpListener("l1", false))), msg(noVer),
			want{health: HealthWrite, expected: 0, listeners: map[string]string{"l1": StatusError}, lb: StatusOnline}},
		{"the UDP rule needs ver absent: ver 1 counts the listener",
			topo(withListeners(udpListener("l1", false))), msg(ver(1)),
			want{health: HealthSkipCountMismatch, expected: 1, listeners: map[string]string{"l1": StatusError}, lb: StatusOnline}},
		{"the UDP rule subtracts a disabled UDP listener that was never counted",
			topo(withListeners(listener("l1"), Listener{ID: "l2", OperatingStatus: bogus, Protocol: ProtocolUDP})),
			msg(noVer),
			want{health: HealthWrite, expected: 0, listeners: map[string]string{"l1": StatusError, "l2": StatusOffline}, lb: StatusOnline}},
		{"the UDP rule ignores SCTP",
			topo(withListeners(Listener{ID: "l1", OperatingStatus: bogus, Protocol: "SCTP", Enabled: true})), msg(noVer),
			want{health: HealthSkipCountMismatch, expected: 1, listeners: map[string]string{"l1": StatusError}, lb: StatusOnline}},

		// Observed probes of the real 11.0.0 code.
		{"stale message with a count mismatch still updates statuses",
			topo(withListeners(listener("listener-1")), withPools(pool("pool-1", member("member-1")))),
			msg(late, reportsPools(rp("pool-1:listener-1", "UP", "member-1", "UP"))),
			want{health: HealthSkipCountMismatch, expected: 1, listeners: map[string]string{"listener-1": StatusError},
				pools: map[string]string{"pool-1": StatusOnline}, members: map[string]string{"member-1": StatusOnline}, lb: StatusOnline}},
		{"pool DOWN on a disabled LB makes the LB ERROR",
			topo(disabled, withListeners(listener("listener-1")), withPools(pool("pool-1", member("member-1")))),
			msg(reports(rl("listener-1", "OPEN")), reportsPools(rp("pool-1:listener-1", "DOWN", "member-1", "DOWN"))),
			want{health: HealthWrite, expected: -1, listeners: map[string]string{"listener-1": StatusOnline},
				pools: map[string]string{"pool-1": StatusError}, members: map[string]string{"member-1": StatusError}, lb: StatusError}},
		{"MAINT (via p/s) is not MAINT", topoOneMember(member("member-1")), msgOneMember("UP", "MAINT (via p/s)"),
			oneMember(StatusOnline, nil, StatusOnline)},
		{"RESTARTING keeps the member's status", topoOneMember(member("member-1")), msgOneMember("UP", "RESTARTING"),
			oneMember(StatusOnline, nil, StatusOnline)},
		{"UP 1/3 and DOWN 1/2 match by prefix",
			topo(withListeners(listener("listener-1")), withPools(twoMemberPool)),
			msg(reports(rl("listener-1", "OPEN")), reportsPools(rp("pool-1:listener-1", "UP", "member-1", "UP 1/3", "member-2", "DOWN 1/2"))),
			oneMember(StatusDegraded, map[string]string{"member-1": StatusOnline, "member-2": StatusError}, StatusDegraded)},
		{"listener STOP: listener unchanged, pool and members processed",
			topoOneMember(member("member-1")),
			msg(reports(rl("listener-1", "STOP")), reportsPools(rp("pool-1:listener-1", "UP", "member-1", "UP"))),
			want{health: HealthWrite, expected: 1, pools: map[string]string{"pool-1": StatusOnline},
				members: map[string]string{"member-1": StatusOnline}, lb: StatusOnline}},
		{"FULL and DOWN 1/2",
			topoOneMember(member("member-1")),
			msg(reports(rl("listener-1", "FULL")), reportsPools(rp("pool-1:listener-1", "UP", "member-1", "DOWN 1/2"))),
			want{health: HealthWrite, expected: 1, listeners: map[string]string{"listener-1": StatusDegraded},
				pools: map[string]string{"pool-1": StatusDegraded}, members: map[string]string{"member-1": StatusError}, lb: StatusDegraded}},
		{"pool NOLB with a member DOWN: pool unchanged, LB ONLINE",
			topoOneMember(member("member-1")), msgOneMember("NOLB", "DOWN"),
			want{health: HealthWrite, expected: 1, listeners: map[string]string{"listener-1": StatusOnline},
				members: map[string]string{"member-1": StatusError}, lb: StatusOnline}},
		{"LB PENDING_UPDATE with no listeners reported",
			topo(provisioning("PENDING_UPDATE"), withListeners(listener("listener-1")), withPools(pool("pool-1", member("member-1")))),
			msg(),
			want{health: HealthWrite, expected: -1, listeners: map[string]string{"listener-1": StatusOffline},
				pools: map[string]string{"pool-1": StatusOffline}, lb: StatusOnline}},
		{"key p1:x:l1 names no pool, so p1 goes OFFLINE",
			topo(withListeners(listener("l1")), withPools(pool("p1", member("m1")))),
			msg(reports(rl("l1", "OPEN")), reportsPools(rp("p1:x:l1", "UP", "m1", "UP"))),
			want{health: HealthWrite, expected: 1, listeners: map[string]string{"l1": StatusOnline},
				pools: map[string]string{"p1": StatusOffline}, lb: StatusOnline}},
		{"a disabled LB with a FULL listener stays OFFLINE",
			topo(disabled, withListeners(listener("l1"))), msg(reports(rl("l1", "FULL"))),
			want{health: HealthWrite, expected: -1, listeners: map[string]string{"l1": StatusDegraded}, lb: StatusOffline}},
		{"a V0 listener without pools stops processing after its own status",
			topo(withListeners(listener("l1"), listener("l2")), withPools(pool("p1", member("m1")))),
			msg(noVer, reports(rl("l1", "OPEN"), rlPools("l2", "OPEN", rp("p1", "UP", "m1", "UP")))),
			want{health: HealthWrite, expected: 2, listeners: map[string]string{"l1": StatusOnline}, aborted: true}},
		{"pre-V2 shared pool: the first listener in id order decides",
			topo(withListeners(listener("l1"), listener("l2")), withPools(pool("p1", member("m1")))),
			msg(ver(1), reports(
				rlPools("l2", "OPEN", rp("p1", "DOWN", "m1", "DOWN")),
				rlPools("l1", "OPEN", rp("p1", "UP", "m1", "UP")))),
			want{health: HealthWrite, expected: 2, listeners: map[string]string{"l1": StatusOnline, "l2": StatusOnline},
				pools: map[string]string{"p1": StatusOnline}, members: map[string]string{"m1": StatusOnline}, lb: StatusOnline}},
		{"V2 shared pool: the last key in JSON order wins",
			topo(withListeners(listener("l1"), listener("l2")), withPools(pool("p1", member("m1")))),
			msg(reports(rl("l1", "OPEN"), rl("l2", "OPEN")), reportsPools(
				rp("p1:l1", "UP", "m1", "UP"), rp("p1:l2", "DOWN", "m1", "DOWN"))),
			want{health: HealthWrite, expected: 2, listeners: map[string]string{"l1": StatusOnline, "l2": StatusOnline},
				pools: map[string]string{"p1": StatusError}, members: map[string]string{"m1": StatusError}, lb: StatusError}},
		{"an unknown extra listener offsets a missing one: only counts are compared",
			topo(withListeners(listener("l1"))), msg(reports(rl("other", "OPEN"))),
			want{health: HealthWrite, expected: 1, listeners: map[string]string{"l1": StatusError}, lb: StatusOnline}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			check(t, Decide(c.topo, c.msg, now, rules), c.want)
		})
	}
}

func topoOneMember(m Member) *Topology {
	return topo(withListeners(listener("listener-1")), withPools(pool("pool-1", m)))
}

func msgOneMember(poolStatus, memberStatus string) *heartbeat.Message {
	return msg(reports(rl("listener-1", "OPEN")), reportsPools(rp("pool-1:listener-1", poolStatus, "member-1", memberStatus)))
}

func oneMember(poolTo string, members map[string]string, lbTo string) want {
	return want{health: HealthWrite, expected: 1, listeners: map[string]string{"listener-1": StatusOnline},
		pools: map[string]string{"pool-1": poolTo}, members: members, lb: lbTo}
}

// test_update_status: a change is written only when the status differs,
// ignoring case.
func TestStatusChangeIgnoresCase(t *testing.T) {
	cases := []struct {
		db    string
		write bool
	}{{StatusOnline, false}, {"online", false}, {"Online", false}, {StatusOffline, true}, {bogus, true}, {"", true}}
	for _, c := range cases {
		tp := topo(lbStatus(c.db))
		d := Decide(tp, msg(), now, rules)
		if (d.LoadBalancer != nil) != c.write {
			t.Errorf("DB %q -> ONLINE: change %+v, want write=%v", c.db, d.LoadBalancer, c.write)
		}
	}
}

func TestDelayGate(t *testing.T) {
	tp := topo()
	for _, c := range []struct {
		delay time.Duration
		want  HealthOutcome
	}{{0, HealthWrite}, {rules.HeartbeatInterval - time.Nanosecond, HealthWrite}, {rules.HeartbeatInterval, HealthSkipLate}} {
		m := msg()
		m.RecvTime = now.Add(-c.delay)
		if got := Decide(tp, m, now, rules).Health; got != c.want {
			t.Errorf("delay %v: %v, want %v", c.delay, got, c.want)
		}
	}
}

// Every change reports the value it replaces, so a store can write it
// conditionally and a log can explain it.
func TestChangesCarryTheOldValue(t *testing.T) {
	tp := topoOneMember(memberIn("member-1", StatusOffline))
	d := Decide(tp, msgOneMember("UP", "UP"), now, rules)
	all := append(append(append([]StatusChange{}, d.Listeners...), d.Pools...), d.Members...)
	sort.Slice(all, func(i, j int) bool { return all[i].ID < all[j].ID })
	want := []StatusChange{{"listener-1", bogus, StatusOnline}, {"member-1", StatusOffline, StatusOnline}, {"pool-1", bogus, StatusOnline}}
	if !reflect.DeepEqual(all, want) {
		t.Errorf("changes %+v, want %+v", all, want)
	}
}
