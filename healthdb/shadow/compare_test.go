package shadow

import (
	"testing"
	"time"

	"github.com/octavia-vpp/health/healthdb"
)

var t0 = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

// topo is an amphora's topology with one listener and one member whose
// database statuses are given.
func topo(listener, member string) *healthdb.Topology {
	return &healthdb.Topology{AmphoraID: "amp", AmphoraExists: true, LB: &healthdb.LoadBalancer{
		ID: "lb", Enabled: true, ProvisioningStatus: "ACTIVE", OperatingStatus: "ONLINE",
		Listeners: []healthdb.Listener{{ID: "l1", Enabled: true, OperatingStatus: listener}},
		Pools:     []healthdb.Pool{{ID: "p1", OperatingStatus: "ONLINE", Members: []healthdb.Member{{ID: "m1", OperatingStatus: member}}}},
	}}
}

func TestCompareStatuses(t *testing.T) {
	// Each step: the member status read at a heartbeat, and what our
	// decision sets it to (empty: no change).
	type step struct{ db, ours string }
	tests := []struct {
		name  string
		steps []step
		want  []int // number of status disagreements at each step
	}{
		{"agree", []step{{"ONLINE", ""}, {"ONLINE", ""}, {"ONLINE", ""}}, []int{0, 0, 0}},
		{"we change, Octavia follows", []step{{"ONLINE", "ERROR"}, {"ERROR", ""}, {"ERROR", ""}}, []int{0, 0, 0}},
		{"one-heartbeat race", []step{{"ONLINE", "ERROR"}, {"ONLINE", "ERROR"}, {"ERROR", ""}, {"ERROR", ""}}, []int{0, 0, 0, 0}},
		{"Octavia never follows", []step{{"ONLINE", "ERROR"}, {"ONLINE", "ERROR"}, {"ONLINE", "ERROR"}, {"ONLINE", "ERROR"}}, []int{0, 0, 1, 0}},
		{"Octavia changes what we keep", []step{{"ONLINE", ""}, {"ERROR", "ONLINE"}, {"ERROR", "ONLINE"}}, []int{0, 0, 1}},
		{"reported again after agreeing", []step{{"ONLINE", "ERROR"}, {"ONLINE", "ERROR"}, {"ONLINE", "ERROR"}, {"ERROR", ""}, {"ONLINE", "ERROR"}, {"ONLINE", "ERROR"}, {"ONLINE", "ERROR"}}, []int{0, 0, 1, 0, 0, 1, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewComparator()
			for i, s := range tt.steps {
				d := healthdb.Decision{Health: healthdb.HealthWrite}
				if s.ours != "" {
					d.Members = []healthdb.StatusChange{{ID: "m1", From: s.db, To: s.ours}}
				}
				got := c.Heartbeat(Observation{AmphoraID: "amp", Time: t0.Add(time.Duration(i) * 10 * time.Second),
					Topology: topo("ONLINE", s.db), Decision: d, Cause: Cause{Message: "hb", B64: "AAAA"}})
				var status []Disagreement
				for _, g := range got {
					if g.Kind == KindStatus {
						status = append(status, g)
					}
				}
				if len(status) != tt.want[i] {
					t.Fatalf("step %d: %d status disagreements %v, want %d", i, len(status), status, tt.want[i])
				}
				for _, g := range status {
					if g.Entity != "member" || g.ID != "m1" || g.Ours != s.ours || g.Octavia != s.db || g.B64 != "AAAA" || g.Message == "" {
						t.Errorf("step %d: %+v", i, g)
					}
				}
			}
		})
	}
}

func TestCompareHealth(t *testing.T) {
	type step struct {
		write bool
		last  time.Duration // last_update as t0 + last; negative: no row
	}
	tests := []struct {
		name  string
		steps []step
		want  []string // "": none; else Ours of the disagreement
	}{
		{"refreshed every time", []step{{true, 0}, {true, 10 * time.Second}, {true, 20 * time.Second}}, []string{"", "", ""}},
		{"skipped and not refreshed", []step{{false, 0}, {false, 0}, {false, 0}}, []string{"", "", ""}},
		{"we refresh, Octavia does not", []step{{true, 0}, {true, 0}, {true, 0}, {true, 0}}, []string{"", "", "refreshed", ""}},
		{"Octavia refreshes, we would not", []step{{false, 0}, {false, 10 * time.Second}, {false, 20 * time.Second}}, []string{"", "", "not refreshed"}},
		{"single miss is a race", []step{{true, 0}, {true, 0}, {true, 20 * time.Second}, {true, 30 * time.Second}}, []string{"", "", "", ""}},
		{"row appears", []step{{true, -1}, {true, 10 * time.Second}}, []string{"", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewComparator()
			for i, s := range tt.steps {
				o := Observation{AmphoraID: "amp", Time: t0, Topology: &healthdb.Topology{AmphoraID: "amp"}}
				if s.write {
					o.Decision.Health = healthdb.HealthWrite
				} else {
					o.Decision.Health = healthdb.HealthSkipCountMismatch
				}
				if s.last >= 0 {
					o.Health = &healthdb.AmphoraHealthRow{AmphoraID: "amp", LastUpdate: t0.Add(s.last)}
				}
				got := c.Heartbeat(o)
				if tt.want[i] == "" && len(got) != 0 || tt.want[i] != "" && (len(got) != 1 || got[0].Kind != KindHealth || got[0].Ours != tt.want[i]) {
					t.Fatalf("step %d: got %v, want %q", i, got, tt.want[i])
				}
			}
		})
	}
}

func TestCompareStats(t *testing.T) {
	c := func(n int64) Counters { return Counters{BytesIn: n, BytesOut: 2 * n, TotalConns: n, RequestErrors: 0} }
	type step struct {
		seq   int64
		db    int64 // bytes_in in the database when the heartbeat arrives
		delta int64 // what it reports
	}
	tests := []struct {
		name  string
		steps []step
		want  []int
	}{
		{"Octavia slower", []step{{1, 0, 5}, {2, 5, 5}, {3, 10, 5}, {4, 15, 5}}, []int{0, 0, 0, 0}},
		{"Octavia faster", []step{{1, 5, 5}, {2, 10, 5}, {3, 15, 5}, {4, 20, 5}}, []int{0, 0, 0, 0}},
		{"mixed", []step{{1, 5, 5}, {2, 5, 5}, {3, 15, 5}, {4, 15, 5}}, []int{0, 0, 0, 0}},
		// One heartbeat's deltas are within the race's tolerance; two
		// are not.
		{"Octavia lost one", []step{{1, 0, 5}, {2, 5, 5}, {3, 5, 5}, {4, 10, 5}}, []int{0, 0, 0, 0}},
		{"Octavia lost two", []step{{1, 0, 5}, {2, 5, 5}, {3, 5, 5}, {4, 5, 5}}, []int{0, 0, 0, 1}},
		{"Octavia counted twice", []step{{1, 0, 5}, {2, 5, 5}, {3, 20, 5}}, []int{0, 0, 1}},
		{"gap in seq restarts", []step{{1, 0, 5}, {5, 100, 5}, {6, 105, 5}}, []int{0, 0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmp := NewComparator()
			for i, s := range tt.steps {
				got := cmp.Heartbeat(Observation{AmphoraID: "amp", Time: t0, Topology: &healthdb.Topology{AmphoraID: "amp"},
					Seq: s.seq, HasSeq: true, Stats: map[string]Counters{"l1": c(s.db)}, Deltas: map[string]Counters{"l1": c(s.delta)}})
				n := 0
				for _, g := range got {
					if g.Kind == KindStatistics {
						n++
						if g.ID != "l1" || g.Entity != "listener_statistics" {
							t.Errorf("%+v", g)
						}
					}
				}
				if n != tt.want[i] {
					t.Fatalf("step %d: %v, want %d", i, got, tt.want[i])
				}
			}
		})
	}
}

func TestPollFailovers(t *testing.T) {
	rules := FailoverRules{HeartbeatTimeout: 60 * time.Second, HealthCheckInterval: 3 * time.Second}
	row := func(last time.Duration, busy bool, status string) healthdb.AmphoraHealthRow {
		return healthdb.AmphoraHealthRow{AmphoraID: "amp", Status: status, LastUpdate: t0.Add(last), Busy: busy}
	}
	type step struct {
		at   time.Duration
		rows []healthdb.AmphoraHealthRow
	}
	tests := []struct {
		name  string
		steps []step
		want  []string // "" none, else Octavia's value
	}{
		{"fresh", []step{{10 * time.Second, []healthdb.AmphoraHealthRow{row(0, false, "ALLOCATED")}}}, []string{""}},
		{"stale then claimed by Octavia", []step{
			{61 * time.Second, []healthdb.AmphoraHealthRow{row(0, false, "ALLOCATED")}},
			{64 * time.Second, []healthdb.AmphoraHealthRow{row(0, true, "ALLOCATED")}},
			{200 * time.Second, nil}}, []string{"", "", ""}},
		{"stale, Octavia never acts", []step{
			{61 * time.Second, []healthdb.AmphoraHealthRow{row(0, false, "ALLOCATED")}},
			{100 * time.Second, []healthdb.AmphoraHealthRow{row(0, false, "ALLOCATED")}},
			{125 * time.Second, []healthdb.AmphoraHealthRow{row(0, false, "ALLOCATED")}},
			{130 * time.Second, []healthdb.AmphoraHealthRow{row(0, false, "ALLOCATED")}}}, []string{"", "", "not failed over 1m4s later", ""}},
		{"stale, amphora left ALLOCATED", []step{
			{61 * time.Second, []healthdb.AmphoraHealthRow{row(0, false, "ALLOCATED")}},
			{130 * time.Second, []healthdb.AmphoraHealthRow{row(0, false, "PENDING_DELETE")}}}, []string{"", ""}},
		// Octavia's health check cannot set a load balancer being updated
		// to PENDING_UPDATE: it skips the amphora while it is.
		{"stale, its load balancer busy for a while", []step{
			{61 * time.Second, []healthdb.AmphoraHealthRow{lbRow(row(0, false, "ALLOCATED"), "PENDING_UPDATE")}},
			{130 * time.Second, []healthdb.AmphoraHealthRow{lbRow(row(0, false, "ALLOCATED"), "PENDING_UPDATE")}},
			{131 * time.Second, []healthdb.AmphoraHealthRow{lbRow(row(0, false, "ALLOCATED"), "ACTIVE")}},
			{134 * time.Second, []healthdb.AmphoraHealthRow{lbRow(row(0, true, "ALLOCATED"), "PENDING_UPDATE")}}}, []string{"", "", "", ""}},
		{"stale, its load balancer back to ERROR and Octavia never acts", []step{
			{61 * time.Second, []healthdb.AmphoraHealthRow{lbRow(row(0, false, "ALLOCATED"), "PENDING_UPDATE")}},
			{100 * time.Second, []healthdb.AmphoraHealthRow{lbRow(row(0, false, "ALLOCATED"), "ERROR")}},
			{165 * time.Second, []healthdb.AmphoraHealthRow{lbRow(row(0, false, "ALLOCATED"), "ERROR")}}}, []string{"", "", "not failed over 1m5s later"}},
		{"Octavia claims a fresh one", []step{
			{10 * time.Second, []healthdb.AmphoraHealthRow{row(0, false, "ALLOCATED")}},
			{13 * time.Second, []healthdb.AmphoraHealthRow{row(0, true, "ALLOCATED")}},
			{16 * time.Second, []healthdb.AmphoraHealthRow{row(0, true, "ALLOCATED")}}}, []string{"", "claimed for failover", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewComparator()
			for i, s := range tt.steps {
				got := c.Poll(s.rows, t0.Add(s.at), rules)
				if tt.want[i] == "" && len(got) != 0 || tt.want[i] != "" && (len(got) != 1 || got[0].Kind != KindFailover || got[0].Octavia != tt.want[i]) {
					t.Fatalf("step %d: got %v, want %q", i, got, tt.want[i])
				}
			}
		})
	}
}

func lbRow(r healthdb.AmphoraHealthRow, lbStatus string) healthdb.AmphoraHealthRow {
	r.LBProvisioningStatus = lbStatus
	return r
}

// TestPollBlockedCycle: Octavia's health check ends its cycle at a stale
// amphora whose load balancer is busy; the other stale amphorae may wait
// as long as it does.
func TestPollBlockedCycle(t *testing.T) {
	rules := FailoverRules{HeartbeatTimeout: 60 * time.Second, HealthCheckInterval: 3 * time.Second}
	busyLB := healthdb.AmphoraHealthRow{AmphoraID: "a", Status: "ALLOCATED", LastUpdate: t0, LBProvisioningStatus: "PENDING_UPDATE"}
	other := healthdb.AmphoraHealthRow{AmphoraID: "b", Status: "ALLOCATED", LastUpdate: t0, LBProvisioningStatus: "ACTIVE"}
	c := NewComparator()
	for _, at := range []time.Duration{61, 100, 200} {
		if got := c.Poll([]healthdb.AmphoraHealthRow{busyLB, other}, t0.Add(at*time.Second), rules); len(got) != 0 {
			t.Fatalf("at %ds: %v", at, got)
		}
	}
	// The busy one gone (its load balancer deleted), b waits no more.
	if got := c.Poll([]healthdb.AmphoraHealthRow{other}, t0.Add(230*time.Second), rules); len(got) != 0 {
		t.Fatalf("at 230s: %v", got)
	}
	if got := c.Poll([]healthdb.AmphoraHealthRow{other}, t0.Add(300*time.Second), rules); len(got) != 1 || got[0].ID != "b" {
		t.Fatalf("at 300s: %v, want b's failover disagreement", got)
	}
}

func TestPollBreakerHoldsEveryFailover(t *testing.T) {
	rules := FailoverRules{HeartbeatTimeout: 60 * time.Second, HealthCheckInterval: 3 * time.Second, Threshold: 2, ThresholdSet: true}
	rows := []healthdb.AmphoraHealthRow{{AmphoraID: "a", Status: "ALLOCATED", LastUpdate: t0}, {AmphoraID: "b", Status: "ALLOCATED", LastUpdate: t0}}
	c := NewComparator()
	for _, at := range []time.Duration{61, 100, 200} {
		if got := c.Poll(rows, t0.Add(at*time.Second), rules); len(got) != 0 {
			t.Fatalf("at %ds: %v", at, got)
		}
	}
}

// Before version 3, Octavia writes the totals over the row: at a
// heartbeat's arrival the row holds the previous heartbeat's totals or
// this one's.
func TestCompareAbsoluteStats(t *testing.T) {
	c := func(n int64) Counters { return Counters{BytesIn: n, BytesOut: n, TotalConns: n} }
	type step struct{ seq, db, total int64 }
	tests := []struct {
		name  string
		steps []step
		want  []int
	}{
		{"Octavia slower", []step{{1, 0, 10}, {2, 10, 20}, {3, 20, 30}}, []int{0, 0, 0}},
		{"Octavia faster", []step{{1, 10, 10}, {2, 20, 20}, {3, 30, 30}}, []int{0, 0, 0}},
		{"Octavia kept an old total", []step{{1, 0, 10}, {2, 10, 20}, {3, 10, 30}}, []int{0, 0, 1}},
		{"gap", []step{{1, 0, 10}, {4, 99, 40}, {5, 40, 50}}, []int{0, 0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmp := NewComparator()
			for i, s := range tt.steps {
				got := cmp.Heartbeat(Observation{AmphoraID: "amp", Time: t0, Topology: &healthdb.Topology{AmphoraID: "amp"},
					Seq: s.seq, HasSeq: true, Absolute: true,
					Stats: map[string]Counters{"l1": c(s.db)}, Deltas: map[string]Counters{"l1": c(s.total)}})
				n := 0
				for _, g := range got {
					if g.Kind == KindStatistics {
						n++
					}
				}
				if n != tt.want[i] {
					t.Fatalf("step %d: %v, want %d", i, got, tt.want[i])
				}
			}
		})
	}
}

// TestCompareStatusesActiveStandby: both amphorae of an ACTIVE_STANDBY
// load balancer report on the same member, and Octavia's row follows
// whichever heartbeat it applied last. The shadow reads the row either
// before Octavia applied the heartbeat or after, in any mix.
func TestCompareStatusesActiveStandby(t *testing.T) {
	// Each step: the amphora heartbeating, the member status read at its
	// arrival, and the status our decision on it leaves the member at.
	type step struct{ amp, db, ours string }
	tests := []struct {
		name  string
		steps []step
		want  []int
	}{
		{"pair reports alike", []step{{"a", "ONLINE", "ONLINE"}, {"b", "ONLINE", "ONLINE"}, {"a", "ONLINE", "ONLINE"}}, []int{0, 0, 0}},
		{"pair differs, Octavia applies before we read", []step{
			{"a", "ONLINE", "ONLINE"}, {"b", "ERROR", "ERROR"}, {"a", "ONLINE", "ONLINE"}, {"b", "ERROR", "ERROR"}, {"a", "ONLINE", "ONLINE"}},
			[]int{0, 0, 0, 0, 0}},
		{"pair differs, we read before Octavia applies", []step{
			{"a", "ERROR", "ONLINE"}, {"b", "ONLINE", "ERROR"}, {"a", "ERROR", "ONLINE"}, {"b", "ONLINE", "ERROR"}, {"a", "ERROR", "ONLINE"}},
			[]int{0, 0, 0, 0, 0}},
		// The case the one-amphora rule reported: the other amphora's
		// heartbeat changed the row between two of this one's.
		{"pair differs, mixed order", []step{
			{"a", "ERROR", "ONLINE"}, {"b", "ERROR", "ERROR"}, {"a", "ONLINE", "ONLINE"}, {"b", "ONLINE", "ERROR"},
			{"a", "ONLINE", "ONLINE"}, {"b", "ERROR", "ERROR"}, {"a", "ERROR", "ONLINE"}},
			[]int{0, 0, 0, 0, 0, 0, 0}},
		// Octavia applies heartbeats concurrently: b's lands after a's
		// next one.
		{"Octavia applies out of order", []step{
			{"a", "ONLINE", "ONLINE"}, {"b", "ONLINE", "ERROR"}, {"a", "ONLINE", "ONLINE"}, {"a", "ERROR", "ONLINE"}, {"b", "ERROR", "ONLINE"}},
			[]int{0, 0, 0, 0, 0}},
		{"Octavia never sets what both decide", []step{
			{"a", "ONLINE", "ERROR"}, {"b", "ONLINE", "ERROR"}, {"a", "ONLINE", "ERROR"}, {"b", "ONLINE", "ERROR"}},
			[]int{0, 0, 1, 0}},
		{"Octavia writes a status neither amphora leads to", []step{
			{"a", "ONLINE", "ONLINE"}, {"b", "ERROR", "ONLINE"}, {"a", "ERROR", "ONLINE"}, {"b", "ERROR", "ONLINE"}},
			[]int{0, 0, 1, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewComparator()
			for i, s := range tt.steps {
				d := healthdb.Decision{Health: healthdb.HealthWrite}
				if s.ours != s.db {
					d.Members = []healthdb.StatusChange{{ID: "m1", From: s.db, To: s.ours}}
				}
				tp := topo("ONLINE", s.db)
				tp.AmphoraID = s.amp
				got := c.Heartbeat(Observation{AmphoraID: s.amp, Time: t0.Add(time.Duration(i) * 5 * time.Second),
					Topology: tp, Decision: d, Cause: Cause{Message: "hb " + s.amp, B64: "AAAA"}})
				var status []Disagreement
				for _, g := range got {
					if g.Kind == KindStatus {
						status = append(status, g)
					}
				}
				if len(status) != tt.want[i] {
					t.Fatalf("step %d: %d status disagreements %v, want %d", i, len(status), status, tt.want[i])
				}
				for _, g := range status {
					if g.Entity != "member" || g.ID != "m1" || g.AmphoraID != s.amp || g.Ours != s.ours || g.Octavia != s.db {
						t.Errorf("step %d: %+v", i, g)
					}
				}
			}
		})
	}
}

// TestCompareHealthResolution: on MySQL last_update holds whole seconds,
// so two writes within a second leave it where it was.
func TestCompareHealthResolution(t *testing.T) {
	type step struct {
		at, last time.Duration // arrival and last_update, from t0
	}
	tests := []struct {
		name       string
		resolution time.Duration
		steps      []step
		want       int // health disagreements in all
	}{
		{"heartbeats 0.5 s apart, MySQL", time.Second, []step{{0, 0}, {500 * time.Millisecond, 0}, {time.Second, 0}, {1500 * time.Millisecond, time.Second}, {2 * time.Second, time.Second}, {2500 * time.Millisecond, 2 * time.Second}}, 0},
		{"heartbeats 0.5 s apart, exact column", 0, []step{{0, 0}, {500 * time.Millisecond, 0}, {time.Second, 0}, {1500 * time.Millisecond, time.Second}}, 1},
		{"Octavia stopped writing, MySQL", time.Second, []step{{0, 0}, {500 * time.Millisecond, 0}, {time.Second, 0}, {2 * time.Second, 0}, {3 * time.Second, 0}, {4 * time.Second, 0}}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewComparator()
			c.LastUpdateResolution = tt.resolution
			n := 0
			for _, s := range tt.steps {
				got := c.Heartbeat(Observation{AmphoraID: "amp", Time: t0.Add(s.at), Topology: &healthdb.Topology{AmphoraID: "amp"},
					Decision: healthdb.Decision{Health: healthdb.HealthWrite}, Health: &healthdb.AmphoraHealthRow{AmphoraID: "amp", LastUpdate: t0.Add(s.last)}})
				for _, g := range got {
					if g.Kind == KindHealth {
						n++
					}
				}
			}
			if n != tt.want {
				t.Errorf("%d health disagreements, want %d", n, tt.want)
			}
		})
	}
}
