package storetest

import (
	"fmt"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/octavia-vpp/health/healthdb"
)

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
