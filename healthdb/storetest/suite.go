package storetest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/octavia-vpp/health/healthdb"
	"github.com/octavia-vpp/health/heartbeat"
)

// Run runs the conformance suite; newBackend makes an empty store for
// one subtest.
func Run(t *testing.T, newBackend func(t *testing.T) Backend) {
	for _, c := range []struct {
		name string
		test func(*testing.T, Backend)
	}{
		{"LoadTopologies", testLoadTopologies},
		{"ApplyHealthUpsertKeepsBusy", testApplyHealthUpsertKeepsBusy},
		{"ApplyWritesOnlyChangedStatuses", testApplyWritesOnlyChangedStatuses},
		{"ApplyEmptyAndUnknownRows", testApplyEmptyAndUnknownRows},
		{"StatusProcedure", testStatusProcedure},
		{"StatusProcedureNetChanges", testStatusProcedureNetChanges},
		{"CandidatesExist", testCandidatesExist},
		{"ClaimStale", testClaimStale},
		{"ClaimersNeverShareAnAmphora", testClaimersNeverShare},
		{"Breaker", testBreaker},
		{"Recovery", testRecovery},
		{"Unclaim", testUnclaim},
		{"LoadBalancerOfClaim", testLoadBalancerOfClaim},
	} {
		t.Run(c.name, func(t *testing.T) { c.test(t, newBackend(t)) })
	}
}

var ctx = context.Background()

func testLoadTopologies(t *testing.T, b Backend) {
	b.AddLoadBalancer("lb-1", "ACTIVE", "ONLINE", true)
	b.AddLoadBalancer("lb-dead", "DELETED", "OFFLINE", true)
	b.AddPool("pool-b", "lb-1", "ONLINE")
	b.AddPool("pool-a", "lb-1", "OFFLINE")
	b.AddPool("Pool-upper", "lb-1", "ONLINE") // byte order: before "pool-a"
	b.AddMember("m-2", "pool-a", "ONLINE", true)
	b.AddMember("m-1", "pool-a", "NO_MONITOR", false)
	b.AddMember("m-3", "pool-b", "ONLINE", false)
	b.AddListener("l-2", "lb-1", "UDP", "ONLINE", true, "pool-a")
	b.AddListener("l-1", "lb-1", "HTTP", "OFFLINE", false, "")
	b.AddListener("l-3", "lb-1", "UDP", "ONLINE", true, "pool-b")
	b.AddListener("l-4", "lb-1", "UDP", "ONLINE", true, "")
	b.AddAmphora("amp-1", "lb-1", "ALLOCATED", "c-1")
	b.AddAmphora("amp-2", "lb-1", "ALLOCATED", "c-2")
	b.AddAmphora("amp-deleted", "lb-1", "DELETED", "c-3")
	b.AddAmphora("amp-on-dead-lb", "lb-dead", "ALLOCATED", "c-4")
	b.AddAmphora("amp-spare", "", "READY", "")

	topos, err := b.Store().LoadTopologies(ctx,
		[]string{"amp-1", "amp-2", "amp-deleted", "amp-on-dead-lb", "amp-spare", "amp-unknown", "amp-\x00nul"})
	if err != nil {
		t.Fatal(err)
	}
	wantLB := &healthdb.LoadBalancer{ID: "lb-1", Enabled: true, ProvisioningStatus: "ACTIVE", OperatingStatus: "ONLINE",
		Listeners: []healthdb.Listener{
			{ID: "l-1", OperatingStatus: "OFFLINE", Protocol: "HTTP", Enabled: false},
			{ID: "l-2", OperatingStatus: "ONLINE", Protocol: "UDP", Enabled: true, DefaultPoolHasEnabledMember: true},
			{ID: "l-3", OperatingStatus: "ONLINE", Protocol: "UDP", Enabled: true},
			{ID: "l-4", OperatingStatus: "ONLINE", Protocol: "UDP", Enabled: true},
		},
		Pools: []healthdb.Pool{
			{ID: "Pool-upper", OperatingStatus: "ONLINE"},
			{ID: "pool-a", OperatingStatus: "OFFLINE", Members: []healthdb.Member{{ID: "m-1", OperatingStatus: "NO_MONITOR"}, {ID: "m-2", OperatingStatus: "ONLINE"}}},
			{ID: "pool-b", OperatingStatus: "ONLINE", Members: []healthdb.Member{{ID: "m-3", OperatingStatus: "ONLINE"}}},
		},
	}
	got := topos["amp-1"]
	if got == nil || !got.AmphoraExists || got.ComputeID != "c-1" || !reflect.DeepEqual(got.LB, wantLB) {
		t.Fatalf("amp-1: %+v\nLB %+v\nwant %+v", got, got.LB, wantLB)
	}
	if topos["amp-2"] == nil || topos["amp-1"].LB != topos["amp-2"].LB {
		t.Error("the two amphorae of one load balancer do not share its topology")
	}
	for _, zombie := range []string{"amp-deleted", "amp-on-dead-lb", "amp-spare"} {
		if z := topos[zombie]; z == nil || !z.AmphoraExists || z.LB != nil {
			t.Errorf("%s: %+v, want an existing amphora without a live load balancer", zombie, z)
		}
	}
	if topos["amp-spare"].ComputeID != "" || topos["amp-deleted"].ComputeID != "c-3" {
		t.Errorf("compute ids: %q %q", topos["amp-spare"].ComputeID, topos["amp-deleted"].ComputeID)
	}
	for _, id := range []string{"amp-unknown", "amp-\x00nul"} {
		if _, ok := topos[id]; ok {
			t.Errorf("%q: an unknown amphora has a topology", id)
		}
	}
	if len(topos) != 5 {
		t.Errorf("%d topologies, want 5", len(topos))
	}
	// Each read is a fresh copy: changing one does not change the store.
	got.LB.OperatingStatus = "ERROR"
	again, err := b.Store().LoadTopologies(ctx, []string{"amp-1"})
	if err != nil || again["amp-1"].LB.OperatingStatus != "ONLINE" {
		t.Errorf("second read: %v, %v", again["amp-1"], err)
	}
}

// within checks that at lies in [before, after].
func within(t *testing.T, what string, at, before, after time.Time) {
	t.Helper()
	if at.Before(before) || at.After(after) {
		t.Errorf("%s %v; want the store's time, in [%v, %v]", what, at, before, after)
	}
}

func testApplyHealthUpsertKeepsBusy(t *testing.T, b Backend) {
	b.AddLoadBalancer("lb-1", "ACTIVE", "ONLINE", true)
	b.AddAmphora("amp-busy", "lb-1", "ALLOCATED", "c-1")
	b.AddAmphora("amp-idle", "lb-1", "ALLOCATED", "c-2")
	b.AddAmphora("amp-new", "lb-1", "ALLOCATED", "c-3")
	b.AddHealth("amp-busy", time.Hour, true)
	b.AddHealth("amp-idle", time.Hour, false)
	before := b.Now()
	if err := b.Store().Apply(ctx, &healthdb.Writes{Health: []string{"amp-new", "amp-busy", "amp-idle", "amp-new"}}); err != nil {
		t.Fatal(err)
	}
	after := b.Now()
	var first time.Time
	for _, c := range []struct {
		id   string
		busy bool
	}{{"amp-busy", true}, {"amp-idle", false}, {"amp-new", false}} {
		last, busy, ok := b.Health(c.id)
		if !ok || busy != c.busy {
			t.Errorf("%s: busy %v present %v, want busy %v", c.id, busy, ok, c.busy)
		}
		within(t, c.id+" last_update", last, before, after)
		if first.IsZero() {
			first = last
		} else if !last.Equal(first) {
			t.Errorf("%s: last_update %v, want the batch's one time %v", c.id, last, first)
		}
	}
}

func testApplyWritesOnlyChangedStatuses(t *testing.T, b Backend) {
	b.AddLoadBalancer("lb-1", "ACTIVE", "ONLINE", true)
	b.AddAmphora("amp-1", "lb-1", "ALLOCATED", "c-1")
	b.AddPool("pool-1", "lb-1", "ONLINE")
	b.AddMember("m-same", "pool-1", "ONLINE", true)
	b.AddMember("m-down", "pool-1", "ONLINE", true)
	b.AddListener("l-1", "lb-1", "HTTP", "ONLINE", true, "pool-1")
	before := b.Now()
	err := b.Store().Apply(ctx, &healthdb.Writes{
		Health:        []string{"amp-1"},
		LoadBalancers: map[string]string{"lb-1": "DEGRADED"},
		Listeners:     map[string]string{"l-1": "ONLINE"},
		Pools:         map[string]string{"pool-1": "DEGRADED"},
		Members:       map[string]string{"m-same": "ONLINE", "m-down": "ERROR"},
	})
	if err != nil {
		t.Fatal(err)
	}
	after := b.Now()
	at, _, _ := b.Health("amp-1")
	within(t, "last_update", at, before, after)
	for _, c := range []struct {
		table, id, status string
		touched           bool
	}{
		{"load_balancer", "lb-1", "DEGRADED", true},
		{"listener", "l-1", "ONLINE", false},
		{"pool", "pool-1", "DEGRADED", true},
		{"member", "m-same", "ONLINE", false},
		{"member", "m-down", "ERROR", true},
	} {
		status, updated := b.OperatingStatus(c.table, c.id)
		if status != c.status {
			t.Errorf("%s %s: %s, want %s", c.table, c.id, status, c.status)
		}
		if c.touched != (updated != nil) || (updated != nil && !updated.Equal(at)) {
			t.Errorf("%s %s: updated_at %v, want touched=%v at %v", c.table, c.id, updated, c.touched, at)
		}
	}
}

func testApplyEmptyAndUnknownRows(t *testing.T, b Backend) {
	b.AddLoadBalancer("lb-1", "ACTIVE", "ONLINE", true)
	if err := b.Store().Apply(ctx, &healthdb.Writes{}); err != nil {
		t.Fatalf("empty writes: %v", err)
	}
	err := b.Store().Apply(ctx, &healthdb.Writes{LoadBalancers: map[string]string{"lb-unknown": "ERROR"},
		Members: map[string]string{"m-unknown": "ERROR"}})
	if err != nil {
		t.Fatalf("writes to unknown rows: %v", err)
	}
	if status, updated := b.OperatingStatus("load_balancer", "lb-1"); status != "ONLINE" || updated != nil {
		t.Errorf("lb-1: %s %v", status, updated)
	}
	// A status Octavia's operating_status table does not name fails the
	// whole batch (a foreign key in SQL): nothing of it is written.
	b.AddAmphora("amp-1", "lb-1", "ALLOCATED", "")
	err = b.Store().Apply(ctx, &healthdb.Writes{Health: []string{"amp-1"},
		LoadBalancers: map[string]string{"lb-1": "BOGUS"}})
	if err == nil {
		t.Error("a write of an unknown operating status succeeded")
	}
	if status, updated := b.OperatingStatus("load_balancer", "lb-1"); status != "ONLINE" || updated != nil {
		t.Errorf("lb-1 after a failed batch: %s %v", status, updated)
	}
	if _, _, ok := b.Health("amp-1"); ok {
		t.Error("a failed batch wrote health")
	}
	// Writing the status a row already has is no write, valid or not.
	if err := b.Store().Apply(ctx, &healthdb.Writes{LoadBalancers: map[string]string{"lb-1": "ONLINE"}}); err != nil {
		t.Error(err)
	}
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

type noDeletes struct{}

func (noDeletes) DeleteCompute(context.Context, string) error {
	return fmt.Errorf("no compute service here")
}

func updater(t *testing.T, b Backend) *healthdb.Updater {
	t.Helper()
	u, err := healthdb.NewUpdater(healthdb.UpdaterConfig{Store: b.Store(), Deleter: noDeletes{},
		Rules: healthdb.Rules{HeartbeatInterval: time.Hour}, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func heartbeatOf(amphoraID string, memberStatus string) *heartbeat.Message {
	return &heartbeat.Message{AmphoraID: amphoraID, Version: 3, HasVersion: true, RecvTime: time.Now(),
		Listeners: []heartbeat.Listener{{ID: "l-1", Status: "OPEN"}},
		Pools: []heartbeat.Pool{{Key: "pool-1:l-1", Status: "UP",
			Members: []heartbeat.Member{{ID: "m-1", Status: memberStatus}, {ID: "m-2", Status: "UP"}}}}}
}

func seedOneLB(b Backend, amphorae ...string) {
	b.AddLoadBalancer("lb-1", "ACTIVE", "ONLINE", true)
	for i, id := range amphorae {
		b.AddAmphora(id, "lb-1", "ALLOCATED", fmt.Sprintf("c-%d", i))
	}
	b.AddPool("pool-1", "lb-1", "ONLINE")
	b.AddMember("m-1", "pool-1", "ONLINE", true)
	b.AddMember("m-2", "pool-1", "ONLINE", true)
	b.AddListener("l-1", "lb-1", "HTTP", "ONLINE", true, "pool-1")
}

// The status procedure through the Updater: the rows it leaves.
func testStatusProcedure(t *testing.T, b Backend) {
	seedOneLB(b, "amp-1")
	b.AddAmphora("amp-zombie", "", "DELETED", "")
	b.AddHealth("amp-1", time.Hour, true)
	before := b.Now()
	res, err := updater(t, b).ApplyBatch(ctx, []*heartbeat.Message{heartbeatOf("amp-1", "DOWN"), heartbeatOf("amp-zombie", "UP")})
	if err != nil {
		t.Fatal(err)
	}
	after := b.Now()
	if res.Health[healthdb.HealthWrite] != 1 || res.Health[healthdb.HealthSkipZombie] != 1 {
		t.Errorf("health outcomes %v", res.Health)
	}
	last, busy, ok := b.Health("amp-1")
	if !ok || !busy {
		t.Errorf("amp-1 health: present %v busy %v; want busy kept", ok, busy)
	}
	within(t, "last_update", last, before, after)
	if _, _, ok := b.Health("amp-zombie"); ok {
		t.Error("a zombie without a compute id got a health row")
	}
	for _, c := range []struct {
		table, id, status string
		touched           bool
	}{
		{"load_balancer", "lb-1", "DEGRADED", true},
		{"listener", "l-1", "ONLINE", false},
		{"pool", "pool-1", "DEGRADED", true},
		{"member", "m-1", "ERROR", true},
		{"member", "m-2", "ONLINE", false},
	} {
		status, updated := b.OperatingStatus(c.table, c.id)
		if status != c.status || c.touched != (updated != nil) || (updated != nil && !updated.Equal(last)) {
			t.Errorf("%s %s: %s updated %v, want %s touched=%v at %v", c.table, c.id, status, updated, c.status, c.touched, last)
		}
	}
}

// Two heartbeats of an ACTIVE_STANDBY pair that undo each other in one
// batch write nothing but health.
func testStatusProcedureNetChanges(t *testing.T, b Backend) {
	seedOneLB(b, "amp-master", "amp-backup")
	res, err := updater(t, b).ApplyBatch(ctx, []*heartbeat.Message{heartbeatOf("amp-master", "DOWN"), heartbeatOf("amp-backup", "UP")})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Changes) != 0 {
		t.Errorf("net changes %v, want none", res.Changes)
	}
	for _, c := range []struct{ table, id string }{{"load_balancer", "lb-1"}, {"pool", "pool-1"}, {"member", "m-1"}} {
		if status, updated := b.OperatingStatus(c.table, c.id); status != "ONLINE" || updated != nil {
			t.Errorf("%s: %s (updated %v), want ONLINE untouched", c.id, status, updated)
		}
	}
	for _, amp := range []string{"amp-master", "amp-backup"} {
		if _, busy, ok := b.Health(amp); !ok || busy {
			t.Errorf("%s: health present %v busy %v", amp, ok, busy)
		}
	}
}

func testCandidatesExist(t *testing.T, b Backend) {
	exists := func(want bool) {
		t.Helper()
		got, err := b.Store().CandidatesExist(ctx)
		if err != nil || got != want {
			t.Fatalf("CandidatesExist = %v, %v; want %v", got, err, want)
		}
	}
	exists(false)
	b.AddAmphora("amp-deleted", "", "DELETED", "")
	b.AddHealth("amp-deleted", time.Hour, false)
	b.AddAmphora("amp-allocated", "", "ALLOCATED", "")
	exists(false) // no health row
	b.AddAmphora("amp-stopped", "", "FAILOVER_STOPPED", "")
	b.AddHealth("amp-stopped", 0, true)
	exists(true)
}

const timeout = time.Minute

func claim(t *testing.T, s Store, req healthdb.ClaimRequest) healthdb.ClaimResult {
	t.Helper()
	if req.HeartbeatTimeout == 0 {
		req.HeartbeatTimeout = timeout
	}
	res, err := s.ClaimStale(ctx, req)
	if err != nil {
		t.Fatalf("ClaimStale: %v", err)
	}
	return res
}

func claimedIDs(res healthdb.ClaimResult) []string {
	ids := []string{}
	for _, c := range res.Claimed {
		ids = append(ids, c.AmphoraID)
	}
	return ids
}

func testClaimStale(t *testing.T, b Backend) {
	b.AddLoadBalancer("lb-1", "ACTIVE", "ONLINE", true)
	for _, a := range []struct {
		id, lb, status string
		age            time.Duration
		busy           bool
	}{
		{"a-stale", "lb-1", "ALLOCATED", 2 * timeout, false},
		{"b-stopped", "lb-1", "FAILOVER_STOPPED", 2 * timeout, false},
		{"c-no-lb", "", "ALLOCATED", 2 * timeout, false},
		{"d-fresh", "lb-1", "ALLOCATED", timeout / 2, false},
		{"e-busy", "lb-1", "ALLOCATED", 2 * timeout, true},
		{"f-deleted", "lb-1", "DELETED", 2 * timeout, false},
		{"g-pending", "lb-1", "PENDING_CREATE", 2 * timeout, false},
		{"h-excluded", "lb-1", "ALLOCATED", 2 * timeout, false},
	} {
		b.AddAmphora(a.id, a.lb, a.status, "")
		b.AddHealth(a.id, a.age, a.busy)
	}
	b.AddHealth("i-no-amphora", 2*timeout, false)

	none := claim(t, b.Store(), healthdb.ClaimRequest{Limit: 0})
	if none.Stale != 7 || len(none.Claimed) != 0 || none.BreakerOpen {
		t.Errorf("limit 0: %+v; want 7 stale (Octavia's count), none claimed", none)
	}
	one := claim(t, b.Store(), healthdb.ClaimRequest{Limit: 1, Exclude: []string{"h-excluded"}})
	if len(one.Claimed) != 1 {
		t.Fatalf("limit 1 claimed %v", claimedIDs(one))
	}
	rest := claim(t, b.Store(), healthdb.ClaimRequest{Limit: 10, Exclude: []string{"h-excluded"}})
	if rest.Stale != 6 {
		t.Errorf("stale after one claim: %d, want 6", rest.Stale)
	}
	all := append(claimedIDs(one), claimedIDs(rest)...)
	sort.Strings(all)
	if want := []string{"a-stale", "b-stopped", "c-no-lb"}; !reflect.DeepEqual(all, want) {
		t.Errorf("claimed %v, want %v", all, want)
	}
	if ids := claimedIDs(rest); !sort.StringsAreSorted(ids) {
		t.Errorf("claims not sorted by id: %v", ids)
	}
	for _, c := range append(one.Claimed, rest.Claimed...) {
		last, busy, _ := b.Health(c.AmphoraID)
		wantLB := "lb-1"
		if c.AmphoraID == "c-no-lb" {
			wantLB = ""
		}
		if !busy || !c.LastUpdate.Equal(last) || c.LoadBalancerID != wantLB {
			t.Errorf("%+v: busy %v last_update %v, want busy, last_update %v, load balancer %q", c, busy, last, last, wantLB)
		}
	}
	if status, _ := b.AmphoraStatus("b-stopped"); status != "FAILOVER_STOPPED" {
		t.Errorf("claiming changed a FAILOVER_STOPPED amphora to %s", status)
	}
	if again := claim(t, b.Store(), healthdb.ClaimRequest{Limit: 10}); !reflect.DeepEqual(claimedIDs(again), []string{"h-excluded"}) {
		t.Errorf("without the exclusion claimed %v, want [h-excluded]", claimedIDs(again))
	}
}

// Claimers running at once never get the same amphora, and between them
// claim every stale one.
func testClaimersNeverShare(t *testing.T, b Backend) {
	const amphorae, claimers = 40, 4
	for i := range amphorae {
		id := fmt.Sprintf("amp-%02d", i)
		b.AddAmphora(id, "", "ALLOCATED", "")
		b.AddHealth(id, 2*timeout, false)
	}
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for range claimers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 3 {
				res, err := b.Store().ClaimStale(ctx, healthdb.ClaimRequest{HeartbeatTimeout: timeout, Limit: 7})
				if err != nil {
					t.Errorf("ClaimStale: %v", err)
					return
				}
				mu.Lock()
				for _, c := range res.Claimed {
					seen[c.AmphoraID]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for _, c := range claim(t, b.Store(), healthdb.ClaimRequest{Limit: amphorae}).Claimed {
		seen[c.AmphoraID]++
	}
	if len(seen) != amphorae {
		t.Errorf("%d amphorae claimed, want %d", len(seen), amphorae)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("%s claimed %d times", id, n)
		}
	}
}

func testBreaker(t *testing.T, b Backend) {
	for _, a := range []struct{ id, status string }{
		{"amp-1", "ALLOCATED"}, {"amp-2", "ALLOCATED"}, {"amp-stopped", "FAILOVER_STOPPED"},
		{"amp-deleted", "DELETED"}, {"amp-pending-delete", "PENDING_DELETE"},
	} {
		b.AddAmphora(a.id, "", a.status, "")
		b.AddHealth(a.id, 2*timeout, false)
	}
	b.AddAmphora("amp-fresh", "", "ALLOCATED", "")
	b.AddHealth("amp-fresh", 0, false)

	below := claim(t, b.Store(), healthdb.ClaimRequest{Limit: 0, Threshold: 6, ThresholdSet: true})
	if below.BreakerOpen || below.Stale != 5 {
		t.Fatalf("threshold 6: %+v, want the breaker closed with 5 stale", below)
	}
	before := b.Now()
	open := claim(t, b.Store(), healthdb.ClaimRequest{Limit: 10, Threshold: 5, ThresholdSet: true})
	after := b.Now()
	if !open.BreakerOpen || open.Stale != 5 || open.Stopped != 2 || len(open.Claimed) != 0 {
		t.Fatalf("threshold 5: %+v; want the breaker open, 2 newly stopped, none claimed", open)
	}
	for _, c := range []struct {
		id, status string
		touched    bool
	}{
		{"amp-1", "FAILOVER_STOPPED", true}, {"amp-2", "FAILOVER_STOPPED", true},
		{"amp-stopped", "FAILOVER_STOPPED", true}, // marked again, as Octavia does
		{"amp-deleted", "DELETED", false}, {"amp-pending-delete", "PENDING_DELETE", false},
		{"amp-fresh", "ALLOCATED", false},
	} {
		status, updated := b.AmphoraStatus(c.id)
		if status != c.status || c.touched != (updated != nil) {
			t.Errorf("%s: %s updated %v, want %s touched=%v", c.id, status, updated, c.status, c.touched)
		}
		if updated != nil {
			within(t, c.id+" updated_at", *updated, before, after)
		}
		if _, busy, _ := b.Health(c.id); busy {
			t.Errorf("%s claimed while the breaker is open", c.id)
		}
	}
	again := claim(t, b.Store(), healthdb.ClaimRequest{Limit: 10, Threshold: 5, ThresholdSet: true})
	if !again.BreakerOpen || again.Stopped != 0 {
		t.Errorf("second check: %+v, want the breaker open and nothing newly stopped", again)
	}
	// Unset, the threshold never applies.
	unset := claim(t, b.Store(), healthdb.ClaimRequest{Limit: 10, Threshold: 1})
	if unset.BreakerOpen || len(unset.Claimed) != 3 {
		t.Errorf("threshold unset: %+v, want the three candidates claimed", unset)
	}
}

func testRecovery(t *testing.T, b Backend) {
	for _, a := range []struct {
		id, status string
		age        time.Duration
		busy       bool
	}{
		{"amp-back", "FAILOVER_STOPPED", 0, false},
		{"amp-back-busy", "FAILOVER_STOPPED", 0, true},
		{"amp-still-stale", "FAILOVER_STOPPED", 2 * timeout, false},
		{"amp-fresh", "ALLOCATED", 0, false},
	} {
		b.AddAmphora(a.id, "", a.status, "")
		b.AddHealth(a.id, a.age, a.busy)
	}
	b.AddAmphora("amp-no-health", "", "FAILOVER_STOPPED", "")
	before := b.Now()
	res := claim(t, b.Store(), healthdb.ClaimRequest{Limit: 0, Threshold: 100, ThresholdSet: true})
	after := b.Now()
	if res.Recovered != 1 {
		t.Errorf("recovered %d, want 1", res.Recovered)
	}
	for _, c := range []struct {
		id, status string
		touched    bool
	}{
		{"amp-back", "ALLOCATED", true}, {"amp-back-busy", "FAILOVER_STOPPED", false},
		{"amp-still-stale", "FAILOVER_STOPPED", false}, {"amp-fresh", "ALLOCATED", false},
		{"amp-no-health", "FAILOVER_STOPPED", false},
	} {
		status, updated := b.AmphoraStatus(c.id)
		if status != c.status || c.touched != (updated != nil) {
			t.Errorf("%s: %s updated %v, want %s touched=%v", c.id, status, updated, c.status, c.touched)
		}
		if updated != nil {
			within(t, c.id+" updated_at", *updated, before, after)
		}
	}
}

func testUnclaim(t *testing.T, b Backend) {
	b.AddAmphora("amp-1", "", "ALLOCATED", "")
	b.AddHealth("amp-1", 2*timeout, false)
	if got := claimedIDs(claim(t, b.Store(), healthdb.ClaimRequest{Limit: 5})); !reflect.DeepEqual(got, []string{"amp-1"}) {
		t.Fatalf("claimed %v", got)
	}
	if got := claim(t, b.Store(), healthdb.ClaimRequest{Limit: 5}); len(got.Claimed) != 0 || got.Stale != 0 {
		t.Fatalf("a busy amphora was claimed again or counted stale: %+v", got)
	}
	last, _, _ := b.Health("amp-1")
	if err := b.Store().Unclaim(ctx, []string{"amp-1", "amp-unknown"}); err != nil {
		t.Fatal(err)
	}
	if err := b.Store().Unclaim(ctx, nil); err != nil {
		t.Fatalf("unclaim nothing: %v", err)
	}
	if again, busy, _ := b.Health("amp-1"); busy || !again.Equal(last) {
		t.Errorf("after unclaim: busy %v last_update %v, want false and unchanged %v", busy, again, last)
	}
	if got := claimedIDs(claim(t, b.Store(), healthdb.ClaimRequest{Limit: 5})); !reflect.DeepEqual(got, []string{"amp-1"}) {
		t.Errorf("released amphora not claimable again: %v", got)
	}
}

func testLoadBalancerOfClaim(t *testing.T, b Backend) {
	b.AddLoadBalancer("lb-error", "ERROR", "ONLINE", true)
	b.AddAmphora("amp-claimed", "lb-error", "ALLOCATED", "")
	b.AddHealth("amp-claimed", 0, true)
	b.AddAmphora("amp-idle", "lb-error", "ALLOCATED", "")
	b.AddHealth("amp-idle", 0, false)
	b.AddAmphora("amp-no-lb", "", "ALLOCATED", "")
	b.AddHealth("amp-no-lb", 0, true)
	b.AddAmphora("amp-deleted", "lb-error", "DELETED", "")
	b.AddHealth("amp-deleted", 0, true)
	for _, c := range []struct {
		id, lb, status string
		ok             bool
	}{
		{"amp-claimed", "lb-error", "ERROR", true},
		{"amp-idle", "", "", false}, {"amp-no-lb", "", "", false}, {"amp-deleted", "", "", false},
		{"amp-unknown", "", "", false},
	} {
		lb, status, ok, err := b.Store().LoadBalancerOfClaim(ctx, c.id)
		if err != nil || lb != c.lb || status != c.status || ok != c.ok {
			t.Errorf("%s: %q %q %v %v; want %q %q %v", c.id, lb, status, ok, err, c.lb, c.status, c.ok)
		}
	}
}
