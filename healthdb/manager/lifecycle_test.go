package manager_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/octavia-vpp/health/healthdb"
	"github.com/octavia-vpp/health/healthdb/manager/managertest"
	"github.com/octavia-vpp/health/healthdb/memstore"
	"github.com/octavia-vpp/health/internal/testproc"
	"github.com/octavia-vpp/health/test/pgtest"
)

// probe answers the status code of GET path on the manager's metrics_bind
// and the decoded JSON body.
func probe(t *testing.T, addr net.Addr, path string) (int, map[string]any) {
	t.Helper()
	client := http.Client{Timeout: 3 * time.Second}
	resp, err := client.Get("http://" + addr.String() + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("GET %s: body: %v", path, err)
	}
	return resp.StatusCode, body
}

// /readyz fails within 2 s of the database stopping and recovers when it
// returns; /livez stays 200 throughout, /healthz answers as /readyz.
func TestReadyzFollowsDatabase(t *testing.T) {
	ctx := context.Background()
	srv := pgtest.NewServer(t)
	managertest.SeedOneLB(t, ctx, srv.URL()).Close(ctx)
	conf := testproc.WriteFile(t, "octavia.conf", []byte(fmt.Sprintf(`[database]
connection = %s
[health_manager]
heartbeat_key = k
failover_driver = noop
bind_ip = 127.0.0.1
bind_port = 0
metrics_bind = 127.0.0.1:0
health_batch_wait_ms = 5
[controller_worker]
compute_driver = compute_noop_driver
`, srv.URL())))
	r := managertest.Start(t, managertest.Options{Files: []string{conf}})
	addr := r.MetricsAddr()
	testproc.WaitFor(t, "/readyz 200 with the database up", func() bool {
		code, _ := probe(t, addr, "/readyz")
		return code == http.StatusOK
	})
	if code, _ := probe(t, addr, "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz %d while /readyz is 200", code)
	}

	srv.Stop()
	stopped := time.Now()
	var body map[string]any
	for {
		var code int
		code, body = probe(t, addr, "/readyz")
		if code == http.StatusServiceUnavailable {
			break
		}
		if time.Since(stopped) > 2*time.Second {
			t.Fatalf("/readyz still %d 2 s after the database stopped: %v", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("/readyz 503 %v after the database stopped: %v", time.Since(stopped).Round(time.Millisecond), body)
	if checks, _ := body["checks"].(map[string]any); checks["database"] == "ok" {
		t.Errorf("the database check passed while it is down: %v", body)
	}
	if code, _ := probe(t, addr, "/healthz"); code != http.StatusServiceUnavailable {
		t.Errorf("/healthz %d while the database is down", code)
	}
	if code, body := probe(t, addr, "/livez"); code != http.StatusOK {
		t.Errorf("/livez %d while only the database is down: %v", code, body)
	}

	srv.Start()
	testproc.WaitFor(t, "/readyz 200 after the database returned", func() bool {
		code, _ := probe(t, addr, "/readyz")
		return code == http.StatusOK
	})
	if err := r.Stop(); err != nil {
		t.Errorf("manager exit: %v", err)
	}
}

// gatedStore is a memstore whose updater calls wait while the gate is
// closed: an updater stuck on its store.
type gatedStore struct {
	*memstore.Store
	mu   sync.Mutex
	open chan struct{}
}

func (g *gatedStore) wait(ctx context.Context) error {
	g.mu.Lock()
	ch := g.open
	g.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *gatedStore) setOpen(open bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if open {
		close(g.open)
	} else {
		g.open = make(chan struct{})
	}
}

func (g *gatedStore) LoadTopologies(ctx context.Context, ids []string) (map[string]*healthdb.Topology, error) {
	if err := g.wait(ctx); err != nil {
		return nil, err
	}
	return g.Store.LoadTopologies(ctx, ids)
}

func (g *gatedStore) Apply(ctx context.Context, w *healthdb.Writes) error {
	if err := g.wait(ctx); err != nil {
		return err
	}
	return g.Store.Apply(ctx, w)
}

// The manager tells a (fake) systemd READY=1, then WATCHDOG=1 while the
// pipeline progresses; the pings stop while the updater is stuck with
// heartbeats waiting, and resume when it moves again; STOPPING=1 at
// shutdown. /readyz fails while the batches are stuck.
func TestSystemdNotifications(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	t.Setenv("WATCHDOG_USEC", "200000") // a ping every 100 ms
	t.Setenv("WATCHDOG_PID", "")

	store, _, stores := managertest.MemStores()
	gated := &gatedStore{Store: store, open: make(chan struct{})}
	close(gated.open)
	stores.Updater = gated
	conf := testproc.WriteFile(t, "octavia.conf", []byte(strings.Replace(memConfig,
		"metrics_bind =\n", "metrics_bind = 127.0.0.1:0\nhealth_check_interval = 1\n", 1)))
	r := managertest.Start(t, managertest.Options{Files: []string{conf}, Stores: stores})
	udp, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(r.ListenAddr()))
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	kr := sealer(t, "k")
	seq := int64(0)
	send := func() {
		seq++
		m := managertest.TypicalHeartbeat("amp-1", "UP")
		m.Seq = seq
		if _, err := udp.Write(kr.SealMessage(m)); err != nil {
			t.Fatal(err)
		}
	}

	buf := make([]byte, 256)
	// next returns the next notification, or "" after wait without one.
	next := func(wait time.Duration) string {
		_ = conn.SetReadDeadline(time.Now().Add(wait))
		n, err := conn.Read(buf)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return ""
		}
		if err != nil {
			t.Fatal(err)
		}
		return string(buf[:n])
	}
	if got := next(10 * time.Second); got != "READY=1" {
		t.Fatalf("first notification %q, want READY=1", got)
	}
	for i := 0; i < 3; i++ {
		send()
		if got := next(10 * time.Second); got != "WATCHDOG=1" {
			t.Fatalf("notification %q while the pipeline runs, want WATCHDOG=1", got)
		}
	}

	// The updater sticks; heartbeats keep arriving and wait. Within a
	// few periods the pings stop: wait for a second of silence.
	gated.setOpen(false)
	silent := false
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		send()
		send()
		got := next(time.Second)
		if got == "" {
			silent = true
			break
		}
		if got != "WATCHDOG=1" {
			t.Fatalf("notification %q while stuck", got)
		}
	}
	if !silent {
		t.Fatal("WATCHDOG=1 kept coming while the updater was stuck with heartbeats waiting")
	}
	testproc.WaitFor(t, "/readyz 503 while batches are stuck", func() bool {
		send()
		code, _ := probe(t, r.MetricsAddr(), "/readyz")
		return code == http.StatusServiceUnavailable
	})
	if code, _ := probe(t, r.MetricsAddr(), "/livez"); code != http.StatusOK {
		t.Errorf("/livez %d: the main loop still turns", code)
	}

	gated.setOpen(true)
	if got := next(10 * time.Second); got != "WATCHDOG=1" {
		t.Fatalf("notification %q after the updater moved again, want WATCHDOG=1", got)
	}
	testproc.WaitFor(t, "/readyz 200 again", func() bool {
		code, _ := probe(t, r.MetricsAddr(), "/readyz")
		return code == http.StatusOK
	})

	if err := r.Stop(); err != nil {
		t.Errorf("manager exit: %v", err)
	}
	for {
		got := next(5 * time.Second)
		if got == "STOPPING=1" {
			break
		}
		if got != "WATCHDOG=1" {
			t.Fatalf("notification %q at shutdown, want STOPPING=1", got)
		}
	}
}

// Every counter family is exported from the start, with each label value
// known in advance at zero, so that rate() answers before the first
// event. The exceptions are series per listener (unknown until heard of)
// and what only exists with PostgreSQL.
func TestCountersExistBeforeTheFirstEvent(t *testing.T) {
	golden, err := os.ReadFile("../../cmd/octavia-health-manager/testdata/metric-names.golden")
	if err != nil {
		t.Fatal(err)
	}
	p := startMem(t, memConfig, nil, managertest.Options{})
	families, err := p.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	series := map[string]int{}
	for _, f := range families {
		series[f.GetName()] = len(f.GetMetric())
	}
	for _, line := range strings.Split(strings.TrimSpace(string(golden)), "\n") {
		name, kind, _ := strings.Cut(line, " ")
		if kind != "counter" || strings.HasPrefix(name, "octavia_hm_listener_") || strings.HasPrefix(name, "octavia_hm_db_pool_") {
			continue
		}
		if series[name] == 0 {
			t.Errorf("%s has no series before the first event", name)
		}
	}
	for name, want := range map[string]int{
		"octavia_hm_heartbeats_accepted_total": 4, // primary/previous x hex/raw
		"octavia_hm_config_reloads_total":      2, // success, failure
		"octavia_hm_status_changes_total":      16,
	} {
		if series[name] != want {
			t.Errorf("%s: %d series, want %d", name, series[name], want)
		}
	}
}

// With failover_driver = noop, the stale amphora is "would fail over"
// once while it stays silent, its row left unclaimed; after its heartbeat
// is committed, a new silence is a second episode.
func TestMemPipelineDryRunCountsOneEpisodeOnce(t *testing.T) {
	conf := `[health_manager]
heartbeat_key = k
failover_driver = noop
bind_ip = 127.0.0.1
bind_port = 0
metrics_bind =
health_batch_wait_ms = 5
heartbeat_timeout = 1
health_check_interval = 1
[controller_worker]
compute_driver = compute_noop_driver
`
	p := startMem(t, conf, seedStale, managertest.Options{})
	heartbeatEvery(t, p)
	dryRuns := func() float64 { return familySum(t, p.Running, "octavia_hm_failovers_total", "dry_run") }
	testproc.WaitFor(t, "amp-2 would be failed over", func() bool { return dryRuns() == 1 })
	checks := familySum(t, p.Running, "octavia_hm_health_checks_total", "")
	testproc.WaitFor(t, "three more health checks", func() bool {
		return familySum(t, p.Running, "octavia_hm_health_checks_total", "") >= checks+3
	})
	if got := dryRuns(); got != 1 {
		t.Fatalf("%v dry-run failovers for one stale episode, want 1", got)
	}
	if h, _ := p.store.Health("amp-2"); h.Busy {
		t.Error("a dry run left amp-2 claimed (busy)")
	}

	// amp-2 heartbeats once, then falls silent again: a second episode.
	hb := managertest.TypicalHeartbeat("amp-2", "UP")
	hb.Seq = 100
	p.send(t, sealer(t, "k").SealMessage(hb))
	testproc.WaitFor(t, "a second episode counted", func() bool { return dryRuns() == 2 })
}
