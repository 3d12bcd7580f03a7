package storetest

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/octavia-vpp/health/healthdb"
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
