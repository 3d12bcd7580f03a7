package manager_test

import (
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/octavia-vpp/health/healthdb/failover/failovertest"
	"github.com/octavia-vpp/health/healthdb/manager/managertest"
	"github.com/octavia-vpp/health/healthdb/memstore"
	"github.com/octavia-vpp/health/heartbeat"
	"github.com/octavia-vpp/health/internal/testproc"
	"github.com/octavia-vpp/health/statsdriver"
)

// These tests run the whole pipeline (the real UDP receiver, the queues,
// the updater, stats_db's aggregator, the watcher, reload) on
// healthdb/memstore and statsdriver.MemorySink: no PostgreSQL. What is
// about SQL (outages, SQLSTATEs, the clock skew check, the status page's
// queries) stays in the tests on PostgreSQL.

// memConfig is a configuration with no [database] section: the manager
// under test is given its stores.
const memConfig = `[health_manager]
heartbeat_key = k
failover_driver = noop
bind_ip = 127.0.0.1
bind_port = 0
metrics_bind =
max_heartbeat_bytes = 2048
health_batch_wait_ms = 5
stats_flush_interval_ms = 20
[controller_worker]
compute_driver = compute_noop_driver
statistics_drivers = stats_db
`

type memPipeline struct {
	*managertest.Running
	store *memstore.Store
	sink  *statsdriver.MemorySink
	udp   *net.UDPConn
}

// startMem runs the manager on MemStores with the configuration text
// conf; seed, when not nil, changes the store before the start.
func startMem(t *testing.T, conf string, seed func(*memstore.Store), opts managertest.Options) *memPipeline {
	t.Helper()
	store, sink, stores := managertest.MemStores()
	if seed != nil {
		seed(store)
	}
	opts.Stores = stores
	if opts.Files == nil {
		opts.Files = []string{testproc.WriteFile(t, "octavia.conf", []byte(conf))}
	}
	r := managertest.Start(t, opts)
	udp, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(r.ListenAddr()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { udp.Close() })
	return &memPipeline{Running: r, store: store, sink: sink, udp: udp}
}

func (p *memPipeline) send(t *testing.T, datagram []byte) {
	t.Helper()
	if _, err := p.udp.Write(datagram); err != nil {
		t.Fatal(err)
	}
}

func sealer(t *testing.T, key string) *heartbeat.Keyring {
	t.Helper()
	kr, err := heartbeat.NewKeyring(heartbeat.KeyringConfig{Keys: []string{key}})
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func memStatus(t *testing.T, s *memstore.Store, table, id string) string {
	t.Helper()
	status, _, ok := s.OperatingStatus(table, id)
	if !ok {
		t.Fatalf("no %s row %s", table, id)
	}
	return status
}

// A valid heartbeat sent to the real socket ends up as operating
// statuses, an amphora_health row and listener statistics.
func TestMemPipelineAppliesHeartbeat(t *testing.T) {
	for _, tc := range []struct {
		member                  string
		lb, listener, pool, mem string
	}{
		{member: "UP", lb: "ONLINE", listener: "ONLINE", pool: "ONLINE", mem: "ONLINE"},
		{member: "DOWN", lb: "DEGRADED", listener: "ONLINE", pool: "DEGRADED", mem: "ERROR"},
	} {
		t.Run("member "+tc.member, func(t *testing.T) {
			p := startMem(t, memConfig, nil, managertest.Options{})
			p.send(t, sealer(t, "k").SealMessage(managertest.TypicalHeartbeat("amp-1", tc.member)))
			testproc.WaitFor(t, "member "+tc.mem, func() bool {
				s, _, _ := p.store.OperatingStatus(memstore.TableMember, "m-1")
				return s == tc.mem
			})
			for _, c := range []struct{ table, id, want string }{
				{memstore.TableLoadBalancer, "lb-1", tc.lb}, {memstore.TableListener, "l-1", tc.listener},
				{memstore.TablePool, "pool-1", tc.pool},
			} {
				if got := memStatus(t, p.store, c.table, c.id); got != c.want {
					t.Errorf("%s %s = %s, want %s", c.table, c.id, got, c.want)
				}
			}
			if h, ok := p.store.Health("amp-1"); !ok || h.Busy || time.Since(h.LastUpdate) > time.Minute {
				t.Errorf("amphora_health amp-1 = %+v, %v; want a fresh, not busy row", h, ok)
			}
			if _, ok := p.store.Health("amp-2"); ok {
				t.Error("amphora_health has a row for amp-2, which sent nothing")
			}
			var row statsdriver.StoredStats
			testproc.WaitFor(t, "listener statistics flushed", func() bool {
				var ok bool
				row, ok = p.sink.Row("l-1", "amp-1")
				return ok
			})
			if want := (statsdriver.StoredStats{BytesIn: 20, BytesOut: 10, ActiveConnections: 1, TotalConnections: 2}); row != want {
				t.Errorf("listener statistics %+v, want %+v", row, want)
			}
			if err := p.Stop(); err != nil {
				t.Errorf("manager exit: %v", err)
			}
		})
	}
}

// A datagram the receiver refuses is counted under its reason and writes
// nothing.
func TestMemPipelineRejectsBadDatagrams(t *testing.T) {
	kr := sealer(t, "k")
	corrupt := kr.SealMessage(managertest.TypicalHeartbeat("amp-1", "DOWN"))
	corrupt[5] ^= 0xff
	for _, tc := range []struct {
		name, reason string
		datagram     []byte
	}{
		{"wrong key", "bad_mac", sealer(t, "other").SealMessage(managertest.TypicalHeartbeat("amp-1", "DOWN"))},
		{"corrupt", "bad_mac", corrupt},
		{"oversized", "too_large", kr.Seal([]byte(`{"id": "amp-1", "listeners": {}, "pools": {}, "ver": 3, "pad": "` +
			strings.Repeat("x", 4000) + `"}`))},
		{"not json", "not_json", kr.Seal([]byte(`amp-1 is fine`))},
		{"short", "short", []byte("x")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startMem(t, memConfig, nil, managertest.Options{})
			p.send(t, tc.datagram)
			testproc.WaitFor(t, tc.reason+" counted", func() bool {
				return familySum(t, p.Running, "octavia_hm_heartbeats_rejected_total", tc.reason) == 1
			})
			// Stopping drains the queues: whatever was let through is
			// written before Stop returns.
			if err := p.Stop(); err != nil {
				t.Errorf("manager exit: %v", err)
			}
			if got := familySum(t, p.Running, "octavia_hm_heartbeats_accepted_total", ""); got != 0 {
				t.Errorf("%v heartbeats accepted", got)
			}
			if _, ok := p.store.Health("amp-1"); ok {
				t.Error("a refused datagram wrote amphora_health")
			}
			if got := memStatus(t, p.store, memstore.TableMember, "m-1"); got != "OFFLINE" {
				t.Errorf("member m-1 = %s, want OFFLINE as seeded", got)
			}
			if _, ok := p.sink.Row("l-1", "amp-1"); ok {
				t.Error("a refused datagram wrote listener statistics")
			}
		})
	}
}

// failoverConfig uses failovertest's Octavia API, which records every
// failover request, with heartbeat_timeout and health_check_interval 1 s.
func failoverConfig(fake *failovertest.Fake) string {
	return `[health_manager]
heartbeat_key = k
bind_ip = 127.0.0.1
bind_port = 0
metrics_bind =
health_batch_wait_ms = 5
heartbeat_timeout = 1
health_check_interval = 1
[controller_worker]
compute_driver = compute_noop_driver
` + fake.ServiceAuthSection()
}

// amp-2 last heartbeated ten minutes ago; amp-1 has a fresh row.
func seedStale(s *memstore.Store) {
	s.PutHealth("amp-2", memstore.Health{LastUpdate: time.Now().Add(-10 * time.Minute)})
	s.PutHealth("amp-1", memstore.Health{LastUpdate: time.Now()})
}

// heartbeatEvery sends amp-1's heartbeat every 50 ms until the test ends.
func heartbeatEvery(t *testing.T, p *memPipeline) {
	datagram := sealer(t, "k").SealMessage(managertest.TypicalHeartbeat("amp-1", "UP"))
	stop, sent := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(sent)
		for {
			_, _ = p.udp.Write(datagram)
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-sent })
}

// The stale amphora is failed over once and stays claimed; the one that
// heartbeats is not.
func TestMemPipelineFailsOverStaleAmphora(t *testing.T) {
	fake := failovertest.New(t)
	p := startMem(t, failoverConfig(fake), seedStale, managertest.Options{})
	heartbeatEvery(t, p)
	testproc.WaitFor(t, "amp-2 failed over", func() bool { return fake.Failovers()["amp-2"] == 1 })
	// Two more health checks (health_check_interval = 1): nothing else is
	// called.
	checks := familySum(t, p.Running, "octavia_hm_health_checks_total", "")
	testproc.WaitFor(t, "two more health checks", func() bool {
		return familySum(t, p.Running, "octavia_hm_health_checks_total", "") >= checks+2
	})
	if got := fake.Failovers(); len(got) != 1 || got["amp-2"] != 1 {
		t.Errorf("failover calls %v; want amp-2 once and never amp-1", got)
	}
	if h, ok := p.store.Health("amp-2"); !ok || !h.Busy {
		t.Errorf("amp-2 health %+v, %v; want claimed (busy)", h, ok)
	}
	if h, _ := p.store.Health("amp-1"); h.Busy {
		t.Error("amp-1 claimed")
	}
}

// While the store fails, the observer suspends failovers even of an
// amphora that is really stale; once it works again for
// heartbeat_timeout, the stale amphora is failed over, once.
func TestMemPipelineFailingStoreSuspendsFailovers(t *testing.T) {
	for _, tc := range []struct {
		name string
		ops  []string // operations that fail
	}{
		{"health writes fail", []string{memstore.OpApply}},
		{"every operation fails", []string{memstore.OpLoadTopologies, memstore.OpApply, memstore.OpCandidatesExist,
			memstore.OpClaimStale, memstore.OpUnclaim, memstore.OpLoadBalancerOfClaim}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := failovertest.New(t)
			failing := map[string]bool{}
			for _, op := range tc.ops {
				failing[op] = true
			}
			p := startMem(t, failoverConfig(fake), func(s *memstore.Store) {
				seedStale(s)
				s.SetFault(func(op string) error {
					if failing[op] {
						return errors.New("injected: connection refused")
					}
					return nil
				})
			}, managertest.Options{})
			heartbeatEvery(t, p)
			testproc.WaitFor(t, "two suppressed health checks", func() bool {
				return familySum(t, p.Running, "octavia_hm_health_checks_suppressed_total", "") >= 2
			})
			if got := fake.Failovers(); len(got) != 0 {
				t.Fatalf("failover calls %v while the store fails", got)
			}
			if v := testutilValue(t, p.Manager, `octavia_hm_failover_suppressed`); v != 1 {
				t.Errorf("octavia_hm_failover_suppressed = %v; want 1", v)
			}
			p.store.SetFault(nil)
			testproc.WaitFor(t, "amp-2 failed over after recovery", func() bool { return fake.Failovers()["amp-2"] == 1 })
			if got := fake.Failovers(); len(got) != 1 {
				t.Errorf("failover calls %v; want amp-2 once", got)
			}
		})
	}
}

// Reload (SIGHUP's path) rotates keys on the same socket, on memstore.
func TestMemPipelineReloadRotatesKeys(t *testing.T) {
	config := func(keys string) []byte {
		return []byte(strings.Replace(memConfig, "heartbeat_key = k", keys, 1))
	}
	conf := testproc.WriteFile(t, "octavia.conf", config("heartbeat_key = old"))
	reload := make(chan struct{})
	p := startMem(t, "", nil, managertest.Options{Files: []string{conf}, Reload: reload})
	sent := 0
	expect := func(key string, accept bool) {
		t.Helper()
		accepted := func() float64 { return familySum(t, p.Running, "octavia_hm_heartbeats_accepted_total", "") }
		badMAC := func() float64 { return familySum(t, p.Running, "octavia_hm_heartbeats_rejected_total", "bad_mac") }
		a, b := accepted(), badMAC()
		sent++
		msg := managertest.TypicalHeartbeat("amp-1", "UP")
		msg.Seq = int64(sent)
		p.send(t, sealer(t, key).SealMessage(msg))
		if accept {
			testproc.WaitFor(t, key+" accepted", func() bool { return accepted() > a })
			testproc.WaitFor(t, key+" applied", func() bool {
				return familySum(t, p.Running, "octavia_hm_heartbeats_applied_total", "written") >= a+1
			})
		} else {
			testproc.WaitFor(t, key+" refused", func() bool { return badMAC() > b })
		}
	}
	rewrite := func(text []byte) {
		t.Helper()
		if err := os.WriteFile(conf, text, 0o600); err != nil {
			t.Fatal(err)
		}
		// The second send returns once the first reload is done.
		reload <- struct{}{}
		reload <- struct{}{}
	}
	expect("old", true)
	expect("new", false)
	rewrite(config("heartbeat_key = new\nheartbeat_key_previous = old"))
	expect("new", true)
	expect("old", true)
	rewrite(config("heartbeat_key = \nheartbeat_key_previous = old")) // refused: keeps both keys
	expect("new", true)
	expect("old", true)
	rewrite(config("heartbeat_key = new"))
	expect("old", false)
	expect("new", true)
	if s := memStatus(t, p.store, memstore.TableMember, "m-1"); s != "ONLINE" {
		t.Errorf("member m-1 = %s after accepted heartbeats, want ONLINE", s)
	}
	if err := p.Stop(); err != nil {
		t.Errorf("manager exit: %v", err)
	}
}
