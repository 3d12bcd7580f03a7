package storetest

import (
	"testing"
	"time"

	"github.com/octavia-vpp/health/healthdb"
)

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
