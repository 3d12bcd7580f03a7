package shadow_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/octavia-vpp/health/healthdb"
	"github.com/octavia-vpp/health/healthdb/memstore"
	"github.com/octavia-vpp/health/healthdb/shadow"
	"github.com/octavia-vpp/health/heartbeat"
)

func seeded() *memstore.Store {
	s := memstore.New(nil)
	s.PutLoadBalancer(memstore.LoadBalancer{ID: "lb-1", ProvisioningStatus: "ACTIVE", OperatingStatus: "ONLINE", Enabled: true})
	for _, id := range []string{"amp-1", "amp-2"} {
		s.PutAmphora(memstore.Amphora{ID: id, LoadBalancerID: "lb-1", Status: "ALLOCATED"})
		s.PutHealth(id, memstore.Health{LastUpdate: s.Now()})
	}
	s.PutListener(memstore.Listener{ID: "l-1", LoadBalancerID: "lb-1", Protocol: "HTTP", OperatingStatus: "ONLINE", Enabled: true})
	return s
}

// Run reads the waiting heartbeats of distinct amphorae together and
// holds an amphora's second heartbeat for the next reads; every one is
// compared, and nothing is written.
func TestRunComparesEveryHeartbeat(t *testing.T) {
	store := seeded()
	m := shadow.NewMetrics(nil)
	s, err := shadow.New(shadow.Config{Reader: store, Rules: healthdb.Rules{HeartbeatInterval: 10 * time.Second},
		Failover: shadow.FailoverRules{HeartbeatTimeout: time.Minute, HealthCheckInterval: time.Hour}, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	in := make(chan shadow.Heartbeat, 10)
	for _, id := range []string{"amp-1", "amp-2", "amp-1", "amp-2", "amp-1"} {
		in <- shadow.Heartbeat{Msg: &heartbeat.Message{AmphoraID: id, HasVersion: true, Version: 3, RecvTime: time.Now(),
			Listeners: []heartbeat.Listener{{ID: "l-1", Status: "OPEN"}}}}
	}
	close(in)
	before, _ := store.Health("amp-1")
	s.Run(context.Background(), in)
	if n := testutil.ToFloat64(m.Compared); n != 5 {
		t.Errorf("compared %v heartbeats, want 5", n)
	}
	if after, _ := store.Health("amp-1"); !after.LastUpdate.Equal(before.LastUpdate) {
		t.Error("amphora_health written")
	}
	// Nobody refreshed the rows the shadow would refresh: after the
	// third heartbeat of amp-1 that is a health disagreement.
	var health int
	for _, d := range s.Recent() {
		if d.Kind == shadow.KindHealth && d.ID == "amp-1" {
			health++
		}
	}
	if health != 1 {
		t.Errorf("health disagreements %v", s.Recent())
	}
}
