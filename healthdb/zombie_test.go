package healthdb

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/octavia-vpp/health/healthdb/failover/failovertest"
	"github.com/octavia-vpp/health/heartbeat"
)

// A Nova that takes the zombie's delete and never answers must not hold
// up anyone's heartbeat: the live amphorae's last_update never lags by
// more than two heartbeat rounds, and the watcher fails nothing over.
// (With the delete inside the batch, the first batch holding the zombie
// waited out Nova's 10 s timeout and every amphora went stale.)
func TestHungNovaDoesNotDelayHeartbeats(t *testing.T) {
	const (
		live     = 50
		round    = 400 * time.Millisecond // every amphora sends one heartbeat a round
		rounds   = 8
		maxLag   = 2 * round
		hbTimout = 5 * round
	)
	db := openDB(t)
	f := &fixture{t: t, db: db}
	f.lb("lb-1", "ACTIVE", "ONLINE", true) // no listeners: an empty heartbeat is healthy
	var ids []string
	for i := range live {
		id := fmt.Sprintf("amp-%02d", i)
		ids = append(ids, id)
		f.amphora(id, "lb-1", "ALLOCATED", "vm-"+id)
		f.healthRow(id, 0, false)
	}
	f.amphora("zombie", "", "DELETED", "vm-zombie")

	fake := failovertest.New(t)
	fake.HangDeletes(true)
	nova, err := NewComputeDeleterFor(ComputeConfig{Driver: "compute_nova_driver", Session: fakeSession(t, fake),
		Region: failovertest.Region, Logger: quietLog()}) // Nova's default 10 s timeout outlasts the test
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	metrics := NewUpdaterMetrics(reg, time.Minute)
	u, err := NewUpdater(UpdaterConfig{Store: NewStore(db), Deleter: nova, Rules: Rules{HeartbeatInterval: round},
		Logger: quietLog(), Metrics: metrics})
	if err != nil {
		t.Fatal(err)
	}
	w := watcherFor(t, db, octaviaAPI(t, fake), nil, func(c *WatcherConfig) { c.HeartbeatTimeout = hbTimout })

	ctx, cancel := context.WithCancel(context.Background())
	in := make(chan *heartbeat.Message, 2*(live+1))
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		u.Run(ctx, in, nil)
	}()
	go func() { // the watcher, without its start-up grace
		defer wg.Done()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				_, _ = w.Cycle(ctx)
			}
		}
	}()

	oldest := func() time.Time {
		var at time.Time
		if err := db.QueryRow(context.Background(), `SELECT min(last_update) FROM amphora_health WHERE amphora_id LIKE 'amp-%'`).
			Scan(&at); err != nil {
			t.Fatal(err)
		}
		return at
	}
	var worst time.Duration
	deadline := time.Now().Add(rounds * round)
	next := time.Now()
	for time.Now().Before(deadline) {
		if !time.Now().Before(next) {
			recv := time.Now()
			in <- &heartbeat.Message{AmphoraID: "zombie", Version: 3, HasVersion: true, RecvTime: recv}
			for _, id := range ids {
				in <- &heartbeat.Message{AmphoraID: id, Version: 3, HasVersion: true, RecvTime: recv}
			}
			next = next.Add(round)
		}
		if lag := time.Since(oldest()); lag > worst {
			worst = lag
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	w.Wait()

	if worst > maxLag {
		t.Errorf("live amphorae's last_update lagged up to %v; want at most %v (two rounds)", worst, maxLag)
	}
	if got := fake.Failovers(); len(got) != 0 {
		t.Errorf("failover calls %v; want none", got)
	}
	if got := fake.Deletes(); got["vm-zombie"] != 1 {
		t.Errorf("Nova deletes %v; want the zombie's once (then remembered as under way)", got)
	}
	if _, _, ok := f.health("zombie"); ok {
		t.Error("the zombie got a health row although its delete never ended")
	}
	if got := testutil.ToFloat64(metrics.outcomes.WithLabelValues(HealthSkipZombie.String())); got < rounds-1 {
		t.Errorf("zombie heartbeats applied %v; want one a round", got)
	}
	t.Logf("worst last_update lag of %d live amphorae with Nova hung: %v", live, worst)
}

// The worker's bounds: deletes beyond the queue are not attempted and
// fall through as failed deletes; a NULL compute id is never sent to
// Nova and is counted.
func TestZombieQueueBoundsAndNullComputeID(t *testing.T) {
	db := openDB(t)
	f := &fixture{t: t, db: db}
	for i := range 4 {
		f.amphora(fmt.Sprintf("zombie-%d", i), "", "DELETED", fmt.Sprintf("vm-%d", i))
	}
	f.amphora("zombie-null", "", "DELETED", "")
	f.exec(`INSERT INTO amphora (id, status, compute_id, cert_busy) VALUES ('zombie-empty', 'DELETED', '', false)`)
	fake := failovertest.New(t)
	fake.HangDeletes(true)
	nova, err := NewComputeDeleterFor(ComputeConfig{Driver: "compute_nova_driver", Session: fakeSession(t, fake),
		Region: failovertest.Region, Timeout: time.Minute, Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	metrics := NewUpdaterMetrics(reg, time.Minute)
	u, err := NewUpdater(UpdaterConfig{Store: NewStore(db), Deleter: nova, Rules: Rules{HeartbeatInterval: time.Hour},
		ZombieQueue: 1, ZombieWorkers: 1, Logger: quietLog(), Metrics: metrics})
	if err != nil {
		t.Fatal(err)
	}
	defer u.zombies.close()
	var msgs []*heartbeat.Message
	for _, id := range []string{"zombie-0", "zombie-null", "zombie-empty"} {
		msgs = append(msgs, &heartbeat.Message{AmphoraID: id, Version: 3, HasVersion: true, RecvTime: time.Now()})
	}
	res, err := u.ApplyBatch(context.Background(), msgs)
	if err != nil {
		t.Fatal(err)
	}
	if res.Health[HealthSkipZombie] != 3 || res.ComputeDeletes != 1 {
		t.Fatalf("result %+v; want three zombies, one delete started", res)
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
	if res.ComputeDeletes != 1 || res.ComputeDeleteFailures != 2 || res.Health[HealthWrite] != 2 {
		t.Errorf("result %+v; want one queued and two refused, falling through to a health write", res)
	}
	deletes := func(result string) float64 { return testutil.ToFloat64(metrics.deletes.WithLabelValues(result)) }
	if deletes(ZombieQueueFull) != 2 || deletes(ZombieNoComputeID) != 2 || testutil.ToFloat64(metrics.zombieQueue) != 1 {
		t.Errorf("queue_full %v, skipped_no_compute_id %v, queue length %v; want 2, 2, 1",
			deletes(ZombieQueueFull), deletes(ZombieNoComputeID), testutil.ToFloat64(metrics.zombieQueue))
	}
	for _, id := range []string{"zombie-null", "zombie-empty"} {
		if _, _, ok := f.health(id); ok {
			t.Errorf("%s: health written; Octavia writes nothing once Nova says the server does not exist", id)
		}
	}
	if got := fake.Deletes(); len(got) != 1 {
		t.Errorf("Nova deletes %v; want only vm-0 (no call for an empty compute id)", got)
	}
}

// One compute id is deleted at most once per repeat interval; heartbeats
// in between get the outcome of the last delete, and one that arrives
// while the delete is under way waits for its outcome without a second
// call.
func TestZombieDeleteRepeatInterval(t *testing.T) {
	db := openDB(t)
	f := &fixture{t: t, db: db}
	f.amphora("zombie", "", "DELETED", "vm-z")
	clk := newClock()
	deleter := &gatedDeleter{gate: make(chan struct{})}
	u, err := NewUpdater(UpdaterConfig{Store: NewStore(db), Deleter: deleter, Rules: Rules{HeartbeatInterval: time.Hour},
		Now: clk.Now, Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	apply := func() BatchResult {
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
	u.zombies.wait()
	steps := []struct {
		advance time.Duration
		calls   int
	}{
		{10 * time.Second, 1}, // the next heartbeat: not deleted again
		{39 * time.Second, 1}, // 59 s since the delete ended (at 10 s)
		{12 * time.Second, 2}, // more than a minute after it ended
		{10 * time.Second, 2},
	}
	for i, s := range steps {
		clk.Advance(s.advance)
		apply()
		u.zombies.wait()
		if got := deleter.calls.Load(); int(got) != s.calls {
			t.Errorf("step %d: %d deletes; want %d", i, got, s.calls)
		}
	}
	if _, _, ok := f.health("zombie"); ok {
		t.Error("a zombie whose delete succeeded got a health row")
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
