package healthdb

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/octavia-vpp/health/healthdb/failover/failovertest"
	"github.com/octavia-vpp/health/heartbeat"
	"github.com/octavia-vpp/health/internal/testproc"
	"github.com/octavia-vpp/health/test/pgtest"
)

const skewWarning = "this health manager's clock differs from the database server's"

func newSkewCheck(t *testing.T, db *pgxpool.Pool) (*ClockSkewCheck, prometheus.Gatherer, *testproc.Output) {
	t.Helper()
	var out testproc.Output
	reg := prometheus.NewRegistry()
	c, err := NewClockSkewCheck(ClockSkewConfig{Pool: db, Registerer: reg, Logger: slog.New(slog.NewTextHandler(&out, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return c, reg, &out
}

// A health manager on the same clock as its database sets the gauge and
// warns of nothing.
func TestClockSkewCheckSameClock(t *testing.T) {
	db := openDB(t)
	c, reg, out := newSkewCheck(t, db)
	skew, err := c.Check(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if skew > time.Second || skew < -time.Second {
		t.Errorf("skew %v with the database on this machine's clock", skew)
	}
	if n, err := testutil.GatherAndCount(reg, "octavia_hm_clock_skew_seconds"); err != nil || n != 1 {
		t.Errorf("octavia_hm_clock_skew_seconds: %d series, %v; want it set", n, err)
	}
	if strings.Contains(out.String(), "WARN") {
		t.Errorf("warned with no skew:\n%s", out)
	}
}

// TestDatabaseClockDecides runs PostgreSQL with its clock 300 s ahead of,
// then 300 s behind, this process's (libfaketime in the server only), and
// the watcher as a third controller whose clock is 90 s off again. Health
// is written and judged on the database's clock: last_update is the
// database's time, the heartbeating amphorae are never failed over, a
// silent one is once heartbeat_timeout has passed, and the skew is
// reported on the gauge and in a warning.
func TestDatabaseClockDecides(t *testing.T) {
	for _, offset := range []time.Duration{300 * time.Second, -300 * time.Second} {
		t.Run(fmt.Sprintf("database%+ds", int(offset.Seconds())), func(t *testing.T) {
			testDatabaseClockDecides(t, offset)
		})
	}
}

func testDatabaseClockDecides(t *testing.T, offset time.Duration) {
	ctx := context.Background()
	srv := pgtest.NewServer(t, pgtest.ClockOffset(offset))
	db, err := pgxpool.New(ctx, srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	f := &fixture{t: t, db: db}

	// The skew is measured and reported.
	check, reg, out := newSkewCheck(t, db)
	skew, err := check.Check(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d := skew - offset; d > 2*time.Second || d < -2*time.Second {
		t.Errorf("measured skew %v; want %v", skew, offset)
	}
	if g := testutil.ToFloat64(check.gauge); g != skew.Seconds() {
		t.Errorf("octavia_hm_clock_skew_seconds %v; want %v", g, skew.Seconds())
	}
	if n, err := testutil.GatherAndCount(reg, "octavia_hm_clock_skew_seconds"); err != nil || n != 1 {
		t.Errorf("octavia_hm_clock_skew_seconds gathered %d, %v", n, err)
	}
	wantLog := fmt.Sprintf("level=WARN msg=%q skew=%v", skewWarning+
		"; amphora health is written and judged on the database's clock, but check NTP on both", skew.Round(time.Millisecond))
	if !strings.Contains(out.String(), wantLog) {
		t.Errorf("log lacks %s:\n%s", wantLog, out)
	}

	f.lb("lb-1", "ACTIVE", "OFFLINE", true)
	live := []string{"live-1", "live-2", "live-3", "live-4"}
	for _, id := range append([]string{"silent"}, live...) {
		f.amphora(id, "lb-1", "ALLOCATED", "c-"+id)
	}
	u, err := NewUpdater(UpdaterConfig{Store: NewStore(db), Deleter: &recordingDeleter{}, Rules: rules, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	beat := func(ids ...string) {
		t.Helper()
		msgs := make([]*heartbeat.Message, len(ids))
		for i, id := range ids {
			msgs[i] = hb(id, nil)
			msgs[i].RecvTime = time.Now()
		}
		res, err := u.ApplyBatch(ctx, msgs)
		if err != nil {
			t.Fatal(err)
		}
		if res.Health[HealthWrite] != len(ids) {
			t.Fatalf("health outcomes %v; want %d written", res.Health, len(ids))
		}
	}

	// last_update and updated_at are the database's time.
	before := f.dbClock()
	silentSent := time.Now()
	beat(append([]string{"silent"}, live...)...)
	after := f.dbClock()
	var last, dbNow time.Time
	if err := db.QueryRow(ctx, `SELECT max(last_update), now() AT TIME ZONE 'UTC' FROM amphora_health`).Scan(&last, &dbNow); err != nil {
		t.Fatal(err)
	}
	if last.Before(before) || last.After(after) || dbNow.Sub(last) > time.Second {
		t.Errorf("last_update %v; want the database's time, in [%v, %v], within a second of its now() %v", last, before, after, dbNow)
	}
	if local := time.Now().UTC(); last.Sub(local) < offset-2*time.Second || last.Sub(local) > offset+2*time.Second {
		t.Errorf("last_update %v is %v from this process's clock; want %v", last, last.Sub(local), offset)
	}
	if status, updated := f.statusOf("load_balancer", "lb-1"); status != "ONLINE" || updated == nil ||
		updated.Before(before) || updated.After(after) {
		t.Errorf("load balancer %s, updated_at %v; want ONLINE at the database's time, in [%v, %v]", status, updated, before, after)
	}

	// A watcher on yet another clock: the old code compared its clock with
	// the writer's and failed every amphora over.
	fake := failovertest.New(t)
	const timeout = 3 * time.Second
	w := watcherFor(t, db, octaviaAPI(t, fake), nil, func(c *WatcherConfig) {
		c.HeartbeatTimeout = timeout
		c.Now = func() time.Time { return time.Now().Add(90 * time.Second) }
	})
	deadline := time.Now().Add(timeout + 30*time.Second)
	for fake.Failovers()["silent"] == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the silent amphora was not failed over within %v of heartbeat_timeout", deadline.Sub(silentSent)-timeout)
		}
		beat(live...)
		res := cycle(t, w)
		if res.Dispatched > 0 {
			if silence := time.Since(silentSent); silence < timeout {
				t.Errorf("failed over after %v of silence; heartbeat_timeout is %v", silence, timeout)
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	if got := fake.Failovers(); len(got) != 1 || got["silent"] != 1 {
		t.Errorf("failover calls %v; want only the silent amphora, once", got)
	}
}
