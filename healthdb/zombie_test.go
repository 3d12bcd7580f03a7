package healthdb

import (
	"context"
	"fmt"
	"sync"
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
		round    = time.Second // every amphora sends one heartbeat a round; long enough that a loaded machine's scheduling jitter stays well under it
		rounds   = 5
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
