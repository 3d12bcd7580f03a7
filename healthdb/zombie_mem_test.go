package healthdb_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/octavia-vpp/health/healthdb"
	"github.com/octavia-vpp/health/healthdb/failover"
	"github.com/octavia-vpp/health/healthdb/failover/failovertest"
	"github.com/octavia-vpp/health/healthdb/memstore"
	"github.com/octavia-vpp/health/heartbeat"
)

// gauge reads an unlabelled gauge of a registry.
func gauge(t *testing.T, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, fam := range families {
		if fam.GetName() == name && len(fam.GetMetric()) == 1 {
			return fam.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return 0
}

func novaOn(t *testing.T, fake *failovertest.Fake) healthdb.ComputeDeleter {
	t.Helper()
	session, err := failover.NewSession(failover.AuthConfig{
		AuthURL: fake.AuthURL(), Username: failovertest.Username, Password: failovertest.Password,
		ProjectName: failovertest.Project, UserDomainName: failovertest.Domain, ProjectDomainName: failovertest.Domain,
	})
	if err != nil {
		t.Fatal(err)
	}
	nova, err := healthdb.NewComputeDeleterFor(healthdb.ComputeConfig{Driver: "compute_nova_driver", Session: session,
		Region: failovertest.Region, Timeout: time.Minute, Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	return nova
}

// The worker's bounds: deletes beyond the queue are not attempted and
// fall through as failed deletes; an amphora without a compute id is
// never sent to Nova and is counted.
func TestZombieQueueBoundsAndNullComputeID(t *testing.T) {
	s := memstore.New(nil)
	for i := range 4 {
		s.PutAmphora(memstore.Amphora{ID: fmt.Sprintf("zombie-%d", i), Status: "DELETED", ComputeID: fmt.Sprintf("vm-%d", i)})
	}
	s.PutAmphora(memstore.Amphora{ID: "zombie-null", Status: "DELETED"})
	fake := failovertest.New(t)
	fake.HangDeletes(true)
	reg := prometheus.NewRegistry()
	u, err := healthdb.NewUpdater(healthdb.UpdaterConfig{Store: s, Deleter: novaOn(t, fake),
		Rules: healthdb.Rules{HeartbeatInterval: time.Hour}, ZombieQueue: 1, ZombieWorkers: 1, Logger: quietLog(),
		Metrics: healthdb.NewUpdaterMetrics(reg, time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	defer u.CloseZombieDeletes()
	var msgs []*heartbeat.Message
	for _, id := range []string{"zombie-0", "zombie-null"} {
		msgs = append(msgs, &heartbeat.Message{AmphoraID: id, Version: 3, HasVersion: true, RecvTime: time.Now()})
	}
	res, err := u.ApplyBatch(context.Background(), msgs)
	if err != nil {
		t.Fatal(err)
	}
	if res.Health[healthdb.HealthSkipZombie] != 2 || res.ComputeDeletes != 1 {
		t.Fatalf("result %+v; want two zombies, one delete started", res)
	}
	waitUntil(t, "the worker to take zombie-0's delete", func() bool { return fake.Deletes()["vm-0"] == 1 })
	// One running (hung), one queued, the next ones refused.
	var batch []*heartbeat.Message
	for _, id := range []string{"zombie-1", "zombie-2", "zombie-3"} {
		batch = append(batch, &heartbeat.Message{AmphoraID: id, Version: 3, HasVersion: true, RecvTime: time.Now()})
	}
	if res, err = u.ApplyBatch(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	if res.ComputeDeletes != 1 || res.ComputeDeleteFailures != 2 || res.Health[healthdb.HealthWrite] != 2 {
		t.Errorf("result %+v; want one queued and two refused, falling through to a health write", res)
	}
	deletes := func(result string) float64 {
		return counter(t, reg, "octavia_hm_zombie_compute_deletes_total", "result", result)
	}
	if deletes(healthdb.ZombieQueueFull) != 2 || deletes(healthdb.ZombieNoComputeID) != 1 ||
		gauge(t, reg, "octavia_hm_zombie_delete_queue_length") != 1 {
		t.Errorf("queue_full %v, skipped_no_compute_id %v, queue length %v; want 2, 1, 1",
			deletes(healthdb.ZombieQueueFull), deletes(healthdb.ZombieNoComputeID), gauge(t, reg, "octavia_hm_zombie_delete_queue_length"))
	}
	if _, ok := s.Health("zombie-null"); ok {
		t.Error("zombie-null: health written; Octavia writes nothing once Nova says the server does not exist")
	}
	written := 0
	for _, id := range []string{"zombie-1", "zombie-2", "zombie-3"} {
		if _, ok := s.Health(id); ok {
			written++
		}
	}
	if written != 2 {
		t.Errorf("%d health rows of refused deletes written; want 2", written)
	}
	if got := fake.Deletes(); len(got) != 1 {
		t.Errorf("Nova deletes %v; want only vm-0 (no call without a compute id)", got)
	}
}

// gatedDeleter succeeds once gate is closed.
type gatedDeleter struct {
	gate  chan struct{}
	calls atomic.Int32
}

func (d *gatedDeleter) DeleteCompute(ctx context.Context, _ string) error {
	d.calls.Add(1)
	select {
	case <-d.gate:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// One compute id is deleted at most once per repeat interval; heartbeats
// in between get the outcome of the last delete, and one that arrives
// while the delete is under way waits for its outcome without a second
// call.
func TestZombieDeleteRepeatInterval(t *testing.T) {
	clk := newClock()
	s := memstore.New(clk.Now)
	s.PutAmphora(memstore.Amphora{ID: "zombie", Status: "DELETED", ComputeID: "vm-z"})
	deleter := &gatedDeleter{gate: make(chan struct{})}
	u, err := healthdb.NewUpdater(healthdb.UpdaterConfig{Store: s, Deleter: deleter,
		Rules: healthdb.Rules{HeartbeatInterval: time.Hour}, Now: clk.Now, Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	apply := func() healthdb.BatchResult {
		t.Helper()
		res, err := u.ApplyBatch(context.Background(), []*heartbeat.Message{
			{AmphoraID: "zombie", Version: 3, HasVersion: true, RecvTime: clk.Now()}})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	apply()
	clk.Advance(10 * time.Second)
	if res := apply(); res.ComputeDeletes != 0 { // under way: no second call
		t.Errorf("while the delete is under way: %d more deletes", res.ComputeDeletes)
	}
	close(deleter.gate)
	u.WaitZombieDeletes()
	steps := []struct {
		advance time.Duration
		calls   int
	}{
		{10 * time.Second, 1}, // the next heartbeat: not deleted again
		{39 * time.Second, 1}, // 59 s since the delete ended (at 10 s)
		{12 * time.Second, 2}, // more than a minute after it ended
		{10 * time.Second, 2},
	}
	for i, st := range steps {
		clk.Advance(st.advance)
		apply()
		u.WaitZombieDeletes()
		if got := deleter.calls.Load(); int(got) != st.calls {
			t.Errorf("step %d: %d deletes; want %d", i, got, st.calls)
		}
	}
	if _, ok := s.Health("zombie"); ok {
		t.Error("a zombie whose delete succeeded got a health row")
	}
}
