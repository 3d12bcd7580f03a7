package agent_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	agent "github.com/octavia-vpp/health/amphora-agent"
	"github.com/octavia-vpp/health/healthdb"
	"github.com/octavia-vpp/health/healthdb/pgstore"
	"github.com/octavia-vpp/health/heartbeat"
	"github.com/octavia-vpp/health/test/pgtest"
	"github.com/octavia-vpp/health/vpp"
	"github.com/octavia-vpp/health/vpp/sim"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const (
	e2eKey      = "e2e-heartbeat-key"
	e2eAmphora  = "amp-1"
	e2eLB       = "lb-1"
	e2eListener = "listener-1"
	e2ePool     = "pool-1"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// healthManager is an in-process health manager: a UDP socket that opens
// every datagram with the keyring and applies it to PostgreSQL as Octavia
// does.
type healthManager struct {
	conn *net.UDPConn
	mu   sync.Mutex
	msgs []*heartbeat.Message
	errs []error
}

func startHealthManager(t *testing.T, db *pgxpool.Pool) *healthManager {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	kr, err := heartbeat.NewKeyring(heartbeat.KeyringConfig{Keys: []string{e2eKey}})
	if err != nil {
		t.Fatal(err)
	}
	del, err := healthdb.NewComputeDeleter("compute_noop_driver", quiet())
	if err != nil {
		t.Fatal(err)
	}
	upd, err := healthdb.NewUpdater(healthdb.UpdaterConfig{
		Store: pgstore.New(db), Deleter: del,
		Rules: healthdb.Rules{HeartbeatInterval: 10 * time.Second}, Logger: quiet(),
	})
	if err != nil {
		t.Fatal(err)
	}
	hm := &healthManager{conn: conn}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			m, _, err := kr.Open(buf[:n])
			if err == nil {
				m.RecvTime = time.Now()
				_, err = upd.ApplyBatch(context.Background(), []*heartbeat.Message{m})
			}
			hm.mu.Lock()
			if err != nil {
				hm.errs = append(hm.errs, err)
			} else {
				hm.msgs = append(hm.msgs, m)
			}
			hm.mu.Unlock()
		}
	}()
	t.Cleanup(func() { conn.Close(); <-done })
	return hm
}

func (h *healthManager) messages() ([]*heartbeat.Message, []error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*heartbeat.Message(nil), h.msgs...), append([]error(nil), h.errs...)
}

// memberServer is a real HTTP server a member's probes reach.
type memberServer struct {
	addr string
	srv  *http.Server
}

func startMember(t *testing.T, addr string) *memberServer {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })}
	go srv.Serve(ln) //nolint:errcheck // ends with Close
	return &memberServer{addr: ln.Addr().String(), srv: srv}
}

func (m *memberServer) stop() { m.srv.Close() }

func status(t *testing.T, db *pgxpool.Pool, table, id string) string {
	t.Helper()
	var s string
	if err := db.QueryRow(context.Background(), `SELECT operating_status FROM `+table+` WHERE id = $1`, id).Scan(&s); err != nil {
		t.Fatalf("read %s %s: %v", table, id, err)
	}
	return s
}

// waitFor polls until every want[table/id] status holds, up to limit.
func waitFor(t *testing.T, db *pgxpool.Pool, limit time.Duration, what string, want map[[2]string]string) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		ok := true
		got := map[string]string{}
		for k, v := range want {
			s := status(t, db, k[0], k[1])
			got[k[1]] = s
			if s != v {
				ok = false
			}
		}
		if ok {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			t.Fatalf("%s: after %v statuses are %v, want %v", what, limit, got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func exec(t *testing.T, db *pgxpool.Pool, sql string, args ...any) {
	t.Helper()
	if _, err := db.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func weights(t *testing.T, dp *sim.Sim, key vpp.VIPKey) map[string]uint8 {
	t.Helper()
	vips, err := dp.VIPs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]uint8{}
	for _, v := range vips {
		if v.Key == key {
			for _, b := range v.Backends {
				if b.Active {
					out[b.Addr.String()] = b.Weight
				}
			}
		}
	}
	return out
}

type runningAgent struct {
	a      *agent.Agent
	cancel context.CancelFunc
	done   chan error
}

func startAgent(t *testing.T, cfg *agent.Config, dp vpp.Dataplane) *runningAgent {
	t.Helper()
	a, err := agent.New(agent.Options{Config: cfg, Dataplane: dp, Logger: quiet(), Tick: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &runningAgent{a: a, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- a.Run(ctx) }()
	return r
}

func (r *runningAgent) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			t.Fatalf("agent Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("agent did not stop")
	}
}

func TestEndToEnd(t *testing.T) {
	pool := pgtest.NewPool(t)
	exec(t, pool, `INSERT INTO load_balancer (id, provisioning_status, operating_status, enabled) VALUES ($1, 'ACTIVE', 'OFFLINE', true)`, e2eLB)
	exec(t, pool, `INSERT INTO amphora (id, load_balancer_id, status, compute_id, cert_busy) VALUES ($1, $2, 'ALLOCATED', 'compute-1', false)`, e2eAmphora, e2eLB)
	exec(t, pool, `INSERT INTO pool (id, load_balancer_id, protocol, lb_algorithm, operating_status, enabled, provisioning_status)
		VALUES ($1, $2, 'HTTP', 'ROUND_ROBIN', 'OFFLINE', true, 'ACTIVE')`, e2ePool, e2eLB)
	exec(t, pool, `INSERT INTO listener (id, load_balancer_id, protocol, protocol_port, provisioning_status, operating_status, enabled, default_pool_id)
		VALUES ($1, $2, 'HTTP', 80, 'ACTIVE', 'OFFLINE', true, $3)`, e2eListener, e2eLB, e2ePool)
	for i, id := range []string{"m1", "m2"} {
		exec(t, pool, `INSERT INTO member (id, pool_id, ip_address, protocol_port, operating_status, enabled, provisioning_status, backup)
			VALUES ($1, $2, $3, 80, 'OFFLINE', true, 'ACTIVE', false)`, id, e2ePool, fmt.Sprintf("10.0.0.%d", i+1))
	}
	hm := startHealthManager(t, pool)
	srv1 := startMember(t, "127.0.0.1:0")
	defer srv1.stop()
	srv2 := startMember(t, "127.0.0.1:0")

	dir := t.TempDir()
	lbFile := filepath.Join(dir, "lb.json")
	port := func(addr string) int { return int(netip.MustParseAddrPort(addr).Port()) }
	lbJSON := fmt.Sprintf(`{
	  "loadbalancer_id": %q, "vip_addresses": ["192.0.2.10"],
	  "listeners": [{"id": %q, "protocol": "HTTP", "protocol_port": 80, "default_pool_id": %q}],
	  "pools": [{"id": %q, "members": [
	      {"id": "m1", "address": "10.0.0.1", "protocol_port": 80, "weight": 256, "monitor_address": "127.0.0.1", "monitor_port": %d},
	      {"id": "m2", "address": "10.0.0.2", "protocol_port": 80, "weight": 128, "monitor_address": "127.0.0.1", "monitor_port": %d}],
	    "healthmonitor": {"type": "HTTP", "delay": 0.1, "timeout": 0.5, "max_retries": 2, "max_retries_down": 2,
	      "url_path": "/", "expected_codes": "200", "fast_delay": 0.05, "down_delay": 0.1}}]
	}`, e2eLB, e2eListener, e2ePool, e2ePool, port(srv1.addr), port(srv2.addr))
	if err := os.WriteFile(lbFile, []byte(lbJSON), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := agent.DefaultConfig()
	cfg.AmphoraID = e2eAmphora
	cfg.HeartbeatKey = e2eKey
	cfg.HeartbeatInterval = 100 * time.Millisecond
	cfg.Controllers = []string{hm.conn.LocalAddr().String()}
	cfg.BasePath = dir
	cfg.SpoolDir = filepath.Join(dir, "marks")
	cfg.StatusBind = ""
	cfg.VPP.Dataplane = "sim"
	cfg.VPP.LBConfigFile = lbFile
	cfg.VPP.StartupMinDelay = 0
	cfg.VPP.StartupMaxDelay = 5 * time.Second
	cfg.VPP.SyncInterval = time.Second
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}

	dp := sim.New(sim.Config{Logger: quiet()})
	key := vpp.VIPKey{Prefix: netip.MustParsePrefix("192.0.2.10/32"), Protocol: vpp.ProtoTCP, Port: 80}
	ag := startAgent(t, &cfg, dp)

	all := func(m1, m2, pl, l string) map[[2]string]string {
		lb := "ONLINE"
		if pl == "DEGRADED" {
			lb = "DEGRADED"
		}
		return map[[2]string]string{
			{"member", "m1"}: m1, {"member", "m2"}: m2, {"pool", e2ePool}: pl, {"listener", e2eListener}: l,
			{"load_balancer", e2eLB}: lb,
		}
	}
	waitFor(t, pool, 10*time.Second, "start", all("ONLINE", "ONLINE", "ONLINE", "ONLINE"))
	if w := weights(t, dp, key); w["10.0.0.1"] != 100 || w["10.0.0.2"] != 50 {
		t.Errorf("weights after start %v, want 100 and 50", w)
	}
	if err := dp.SendFlows(key, 10, 3, 100); err != nil {
		t.Fatal(err)
	}

	// Kill member 2's server. The configured rise/fall time is at most
	// fall probes, each after up to delay (+10% jitter) and lasting up to
	// the timeout, plus one heartbeat interval to report it; a slack of
	// 3 s absorbs a loaded test machine.
	const delay, timeout, fall = 110 * time.Millisecond, 500 * time.Millisecond, 2
	riseFall := fall*(delay+timeout) + cfg.HeartbeatInterval + 3*time.Second
	srv2.stop()
	took := waitFor(t, pool, riseFall, "member 2 killed", all("ONLINE", "ERROR", "DEGRADED", "ONLINE"))
	t.Logf("member ERROR / pool DEGRADED after %v", took)
	if w := weights(t, dp, key); w["10.0.0.2"] != 0 {
		t.Errorf("weights after kill %v, want 10.0.0.2 at 0", w)
	}
	if err := dp.SendFlows(key, 7, 2, 50); err != nil {
		t.Fatal(err)
	}

	srv2 = startMember(t, srv2.addr)
	defer srv2.stop()
	took = waitFor(t, pool, riseFall, "member 2 restarted", all("ONLINE", "ONLINE", "ONLINE", "ONLINE"))
	t.Logf("member ONLINE again after %v", took)

	// Drain m1 with an operator mark.
	if err := (agent.Spool{Dir: cfg.SpoolDir}).Put(agent.Mark{Target: "m1", Kind: "drain", Reason: "e2e", Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, pool, 5*time.Second, "drain mark", all("DRAINING", "ONLINE", "ONLINE", "ONLINE"))
	if w := weights(t, dp, key); w["10.0.0.1"] != 0 || w["10.0.0.2"] != 50 {
		t.Errorf("weights after drain %v, want 0 and 50", w)
	}

	// Restart the agent: the counter file carries the deltas over, and
	// the new agent must not push weight 0 while it warms up.
	ag.stop(t)
	if err := dp.SendFlows(key, 5, 4, 10); err != nil {
		t.Fatal(err)
	}
	ag = startAgent(t, &cfg, dp)
	deadline := time.Now().Add(500 * time.Millisecond)
	for time.Now().Before(deadline) {
		if w := weights(t, dp, key); w["10.0.0.2"] != 50 {
			t.Fatalf("weights during the new agent's warm-up %v: member 2 lost its weight", w)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := dp.SendFlows(key, 3, 1, 1000); err != nil {
		t.Fatal(err)
	}
	// Remove the mark: m1 comes back.
	if err := (agent.Spool{Dir: cfg.SpoolDir}).Remove("m1"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, pool, 5*time.Second, "mark removed", all("ONLINE", "ONLINE", "ONLINE", "ONLINE"))

	want, ok := dp.Counters().VIP(key)
	if !ok {
		t.Fatal("no counters for the VIP")
	}
	var sum heartbeat.Stats
	start := time.Now()
	for {
		msgs, errs := hm.messages()
		if len(errs) > 0 {
			t.Fatalf("health manager errors: %v", errs)
		}
		sum = heartbeat.Stats{}
		for _, m := range msgs {
			if m.Version != 3 || !m.HasVersion || m.AmphoraID != e2eAmphora || len(m.Listeners) != 1 || len(m.Pools) != 1 {
				raw, _ := json.Marshal(m)
				t.Fatalf("not the expected V3 message: %s", raw)
			}
			if !m.StatsAreDeltas() {
				t.Fatal("stats are not deltas")
			}
			if m.Pools[0].Key != e2ePool+":"+e2eListener {
				t.Errorf("pool key %q", m.Pools[0].Key)
			}
			s := m.Listeners[0].Stats
			if s.TX != 0 {
				t.Errorf("tx %d, want 0", s.TX)
			}
			sum.RX += s.RX
			sum.TotConns += s.TotConns
			sum.EReq += s.EReq
		}
		if sum.RX == int64(want.RouteBytes) && sum.TotConns == int64(want.FirstPackets) && sum.EReq == int64(want.NoServerPackets) {
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("summed deltas rx=%d totconns=%d ereq=%d, simulator counted bytes=%d first=%d no-server=%d",
				sum.RX, sum.TotConns, sum.EReq, want.RouteBytes, want.FirstPackets, want.NoServerPackets)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if sum.RX != 10*3*100+7*2*50+5*4*10+3*1*1000 {
		t.Errorf("rx sum %d does not match the flows sent", sum.RX)
	}
	var lastUpdate time.Time
	if err := pool.QueryRow(context.Background(), `SELECT last_update FROM amphora_health WHERE amphora_id = $1`, e2eAmphora).Scan(&lastUpdate); err != nil {
		t.Errorf("amphora_health: %v", err)
	}
	ag.stop(t)
	if h := ag.a.Sensor().Record(); h.ShutdownFrom.IsZero() || h.LastSend.IsZero() || h.LastConfig.IsZero() {
		t.Errorf("sensor record %+v", h)
	}
	c, err := agent.LoadCounters(cfg.CounterFile())
	if err != nil {
		t.Fatalf("counter file: %v", err)
	}
	if c[e2eListener].Bin != int64(want.RouteBytes) {
		t.Errorf("counter file %v, want bin %d", c, want.RouteBytes)
	}
}
