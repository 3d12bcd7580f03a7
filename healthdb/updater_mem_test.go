package healthdb_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/octavia-vpp/health/healthdb"
	"github.com/octavia-vpp/health/healthdb/memstore"
	"github.com/octavia-vpp/health/heartbeat"
)

type noCompute struct{}

func (noCompute) DeleteCompute(context.Context, string) error { return nil }

func memHeartbeat(amphoraID string) *heartbeat.Message {
	return &heartbeat.Message{AmphoraID: amphoraID, Version: 3, HasVersion: true,
		Listeners: []heartbeat.Listener{}, Pools: []heartbeat.Pool{}, RecvTime: time.Now()}
}

// Run closes a batch when it reaches BatchSize, or BatchDelay after its
// first message, and stops when its input closes.
func TestUpdaterRunBatches(t *testing.T) {
	s := memstore.New(nil)
	s.PutLoadBalancer(memstore.LoadBalancer{ID: "lb-1", ProvisioningStatus: "ACTIVE", OperatingStatus: "ONLINE", Enabled: true})
	s.PutAmphora(memstore.Amphora{ID: "amp-1", LoadBalancerID: "lb-1", Status: "ALLOCATED", ComputeID: "c-1"})
	u, err := healthdb.NewUpdater(healthdb.UpdaterConfig{
		Store: s, Deleter: noCompute{}, Rules: healthdb.Rules{HeartbeatInterval: time.Hour},
		BatchSize: 4, BatchDelay: 20 * time.Millisecond, Logger: quietLog(),
	})
	if err != nil {
		t.Fatal(err)
	}
	in := make(chan *heartbeat.Message)
	var mu sync.Mutex
	var sizes []int
	finished := make(chan struct{})
	go func() {
		u.Run(context.Background(), in, func(r healthdb.BatchResult, err error) {
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			sizes = append(sizes, r.Messages)
			mu.Unlock()
		})
		close(finished)
	}()
	send := func(n int) {
		for range n {
			in <- memHeartbeat("amp-1")
		}
	}
	send(9)                 // two full batches of 4, then one waiting
	time.Sleep(time.Second) // the delay closes the batch of 1
	send(2)
	close(in) // closing the input ends Run; the last 2 are applied first
	<-finished
	mu.Lock()
	defer mu.Unlock()
	total := 0
	for _, n := range sizes {
		if n > 4 {
			t.Errorf("a batch of %d exceeds BatchSize 4", n)
		}
		total += n
	}
	if total != 11 || len(sizes) < 4 || sizes[0] != 4 || sizes[1] != 4 || sizes[2] != 1 {
		t.Errorf("batch sizes %v, want 4, 4, 1 then the last 2", sizes)
	}
	if _, ok := s.Health("amp-1"); !ok {
		t.Error("no health row written")
	}
}

// A batch the store refuses is reported and dropped; Run goes on with the
// next one.
func TestUpdaterRunGoesOnAfterAFailedBatch(t *testing.T) {
	s := memstore.New(nil)
	s.PutLoadBalancer(memstore.LoadBalancer{ID: "lb-1", ProvisioningStatus: "ACTIVE", OperatingStatus: "ONLINE", Enabled: true})
	s.PutAmphora(memstore.Amphora{ID: "amp-1", LoadBalancerID: "lb-1", Status: "ALLOCATED", ComputeID: "c-1"})
	down := errors.New("store down")
	s.SetFault(func(op string) error {
		if op == memstore.OpApply {
			return down
		}
		return nil
	})
	u, err := healthdb.NewUpdater(healthdb.UpdaterConfig{
		Store: s, Deleter: noCompute{}, Rules: healthdb.Rules{HeartbeatInterval: time.Hour},
		BatchSize: 1, Logger: quietLog(),
	})
	if err != nil {
		t.Fatal(err)
	}
	in := make(chan *heartbeat.Message)
	results := make(chan error, 2)
	finished := make(chan struct{})
	go func() {
		u.Run(context.Background(), in, func(_ healthdb.BatchResult, err error) { results <- err })
		close(finished)
	}()
	in <- memHeartbeat("amp-1")
	if err := <-results; !errors.Is(err, down) {
		t.Fatalf("first batch: %v; want the store's error", err)
	}
	if _, ok := s.Health("amp-1"); ok {
		t.Fatal("a refused batch wrote health")
	}
	s.SetFault(nil)
	in <- memHeartbeat("amp-1")
	if err := <-results; err != nil {
		t.Fatalf("second batch: %v", err)
	}
	close(in)
	<-finished
	if _, ok := s.Health("amp-1"); !ok {
		t.Error("the batch after the failure wrote no health")
	}
}
