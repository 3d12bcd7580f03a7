package healthdb_test

// Helpers of the updater and watcher tests that run on memstore: they
// test the logic around the store (batching, ordering, policy, backoff,
// dispatch), not SQL, and need no PostgreSQL. The SQL tests stay in the
// package's internal test files; healthdb/storetest holds the two stores
// to the same results.

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/octavia-vpp/health/healthdb"
	"github.com/octavia-vpp/health/healthdb/failover"
	"github.com/octavia-vpp/health/healthdb/failover/failovertest"
	"github.com/octavia-vpp/health/healthdb/memstore"
)

// clock is a settable test clock, shared by a store and the watcher or
// updater under test: the database's clock and the process's are one.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// memFleet is a memstore with helpers to seed amphorae.
type memFleet struct{ *memstore.Store }

func newMemFleet(now func() time.Time) memFleet { return memFleet{memstore.New(now)} }

// amphora adds an amphora on lbID whose health row was last updated age
// ago by the store's clock.
func (f memFleet) amphora(id, lbID, status string, age time.Duration, busy bool) {
	f.PutAmphora(memstore.Amphora{ID: id, LoadBalancerID: lbID, Status: status})
	f.PutHealth(id, memstore.Health{LastUpdate: f.Now().Add(-age), Busy: busy})
}

// heartbeat refreshes the health rows of the given amphorae, as a health
// batch does.
func (f memFleet) heartbeat(t *testing.T, ids ...string) {
	t.Helper()
	if err := f.Apply(context.Background(), &healthdb.Writes{Health: ids}); err != nil {
		t.Fatal(err)
	}
}

func (f memFleet) busy(t *testing.T, id string) bool {
	t.Helper()
	h, ok := f.Health(id)
	if !ok {
		t.Fatalf("%s: no health row", id)
	}
	return h.Busy
}

func (f memFleet) status(id string) string {
	a, _ := f.Amphora(id)
	return a.Status
}

func (f memFleet) countStatus(status string, ids ...string) int {
	n := 0
	for _, id := range ids {
		if f.status(id) == status {
			n++
		}
	}
	return n
}

func octaviaAPI(t *testing.T, fake *failovertest.Fake) failover.Driver {
	t.Helper()
	s, err := failover.NewSession(failover.AuthConfig{
		AuthURL: fake.AuthURL(), Username: failovertest.Username, Password: failovertest.Password,
		ProjectName: failovertest.Project, UserDomainName: failovertest.Domain, ProjectDomainName: failovertest.Domain,
		RequestTimeout: 10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &failover.OctaviaAPI{Session: s, Region: failovertest.Region, Interface: "public"}
}

// memWatcher builds a watcher on a memstore with a one-minute
// heartbeat_timeout, driven by calling Cycle (no start-up grace) on the
// given clock (nil: the real one).
func memWatcher(t *testing.T, store healthdb.WatcherStore, driver failover.Driver, clk *clock, change func(*healthdb.WatcherConfig)) *healthdb.Watcher {
	t.Helper()
	cfg := healthdb.WatcherConfig{
		Store: store, Driver: driver,
		HeartbeatTimeout: time.Minute, HealthCheckInterval: 50 * time.Millisecond,
		FailoverThreads: 10, Logger: quietLog(),
	}
	if clk != nil {
		cfg.Now = clk.Now
	}
	if change != nil {
		change(&cfg)
	}
	w, err := healthdb.NewWatcher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func cycle(t *testing.T, w *healthdb.Watcher) healthdb.CycleResult {
	t.Helper()
	res, err := w.Cycle(context.Background())
	if err != nil {
		t.Fatalf("cycle: %v", err)
	}
	w.Wait()
	return res
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
