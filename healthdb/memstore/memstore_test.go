package memstore_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/octavia-vpp/health/healthdb"
	"github.com/octavia-vpp/health/healthdb/memstore"
	"github.com/octavia-vpp/health/healthdb/storetest"
)

// backend adapts a memstore.Store to the conformance suite.
type backend struct{ s *memstore.Store }

func (b backend) Store() storetest.Store { return b.s }
func (b backend) Now() time.Time         { return b.s.Now() }

func (b backend) AddLoadBalancer(id, provisioning, operating string, enabled bool) {
	b.s.PutLoadBalancer(memstore.LoadBalancer{ID: id, ProvisioningStatus: provisioning, OperatingStatus: operating, Enabled: enabled})
}

func (b backend) AddAmphora(id, lbID, status, computeID string) {
	b.s.PutAmphora(memstore.Amphora{ID: id, LoadBalancerID: lbID, Status: status, ComputeID: computeID})
}

func (b backend) AddListener(id, lbID, protocol, operating string, enabled bool, defaultPool string) {
	b.s.PutListener(memstore.Listener{ID: id, LoadBalancerID: lbID, Protocol: protocol, OperatingStatus: operating,
		Enabled: enabled, DefaultPoolID: defaultPool})
}

func (b backend) AddPool(id, lbID, operating string) {
	b.s.PutPool(memstore.Pool{ID: id, LoadBalancerID: lbID, OperatingStatus: operating})
}

func (b backend) AddMember(id, poolID, operating string, enabled bool) {
	b.s.PutMember(memstore.Member{ID: id, PoolID: poolID, OperatingStatus: operating, Enabled: enabled})
}

func (b backend) AddHealth(amphoraID string, age time.Duration, busy bool) {
	b.s.PutHealth(amphoraID, memstore.Health{LastUpdate: b.s.Now().Add(-age), Busy: busy})
}

func (b backend) Health(amphoraID string) (time.Time, bool, bool) {
	h, ok := b.s.Health(amphoraID)
	return h.LastUpdate, h.Busy, ok
}

func (b backend) AmphoraStatus(id string) (string, *time.Time) {
	a, _ := b.s.Amphora(id)
	return a.Status, a.UpdatedAt
}

func (b backend) OperatingStatus(table, id string) (string, *time.Time) {
	status, at, _ := b.s.OperatingStatus(table, id)
	return status, at
}

// ticking is a clock that moves a microsecond at every reading, so that
// the suite's before/after brackets are strict on this store too.
type ticking struct {
	mu sync.Mutex
	t  time.Time
}

func (c *ticking) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Microsecond)
	return c.t
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(*testing.T) storetest.Backend {
		clk := &ticking{t: time.Date(2026, 11, 21, 12, 0, 0, 0, time.FixedZone("CET", 3600))}
		return backend{memstore.New(clk.now)}
	})
}

// Staleness is judged on the store's clock, whatever the caller's.
func TestClaimsFollowTheStoreClock(t *testing.T) {
	var mu sync.Mutex
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := memstore.New(func() time.Time { mu.Lock(); defer mu.Unlock(); return at })
	s.PutAmphora(memstore.Amphora{ID: "amp-1", Status: "ALLOCATED"})
	if err := s.Apply(context.Background(), &healthdb.Writes{Health: []string{"amp-1"}}); err != nil {
		t.Fatal(err)
	}
	req := healthdb.ClaimRequest{HeartbeatTimeout: time.Minute, Limit: 1}
	if res, _ := s.ClaimStale(context.Background(), req); len(res.Claimed) != 0 {
		t.Fatalf("fresh amphora claimed: %+v", res)
	}
	mu.Lock()
	at = at.Add(time.Minute + time.Microsecond)
	mu.Unlock()
	res, err := s.ClaimStale(context.Background(), req)
	if err != nil || len(res.Claimed) != 1 || !res.Claimed[0].LastUpdate.Equal(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("after heartbeat_timeout: %+v %v", res, err)
	}
}

func TestFaults(t *testing.T) {
	s := memstore.New(nil)
	boom := errors.New("boom")
	s.SetFault(func(op string) error {
		if op == memstore.OpApply {
			return boom
		}
		return nil
	})
	if err := s.Apply(context.Background(), &healthdb.Writes{Health: []string{"amp-1"}}); !errors.Is(err, boom) {
		t.Fatalf("Apply: %v, want the fault", err)
	}
	if _, ok := s.Health("amp-1"); ok {
		t.Error("a failed Apply wrote")
	}
	if _, err := s.CandidatesExist(context.Background()); err != nil {
		t.Errorf("CandidatesExist: %v", err)
	}
	s.SetFault(nil)
	if err := s.Apply(context.Background(), &healthdb.Writes{Health: []string{"amp-1"}}); err != nil {
		t.Fatal(err)
	}
}
