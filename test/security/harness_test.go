// Package security runs the built octavia-health-manager and amphora-agent
// binaries together, on a throwaway PostgreSQL and VPP's simulator, to test
// replay protection and heartbeat key rotation as an operator would see
// them: processes, config files, SIGHUP and /metrics.
package security

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/octavia-vpp/health/internal/testproc"
	"github.com/octavia-vpp/health/test/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func binary(t *testing.T, name string) string {
	t.Helper()
	return testproc.Binary(t, "github.com/octavia-vpp/health/cmd/"+name)
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond until it holds or 30 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testproc.WaitWithin(t, 30*time.Second, what, cond)
}

// process is a running child: its log, and a stop that fails the test
// when it does not exit cleanly on SIGTERM.
type process struct {
	name string
	cmd  *exec.Cmd
	log  *testproc.Output
	done chan error
}

func start(t *testing.T, name string, args ...string) *process {
	t.Helper()
	p := &process{name: name, cmd: exec.Command(binary(t, name), args...), log: &testproc.Output{}, done: make(chan error, 1)}
	p.cmd.Stderr = p.log
	p.cmd.Stdout = p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		select {
		case <-p.done: // stopped by the test
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

func (p *process) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("%s: %v", p.name, err)
	}
}

func (p *process) stop(t *testing.T) {
	t.Helper()
	p.signal(t, syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.done <- err // for the cleanup
		if err != nil {
			t.Errorf("%s exited with %v\n%s", p.name, err, p.log.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: no exit after SIGTERM", p.name)
	}
}

// healthManager is a running octavia-health-manager with its config file.
type healthManager struct {
	*process
	conf    string
	base    string // the config without the options a test changes
	udp     string // heartbeat address
	metrics string
}

// startHealthManager starts serve with heartbeat_timeout seconds and the
// given extra [health_manager] lines, and waits for /healthz.
func startHealthManager(t *testing.T, dbURL string, heartbeatTimeout int, extra string) *healthManager {
	t.Helper()
	udpPort, metricsPort := testproc.FreePort(t, "udp"), testproc.FreePort(t, "tcp")
	hm := &healthManager{
		conf:    filepath.Join(t.TempDir(), "octavia.conf"),
		udp:     fmt.Sprintf("127.0.0.1:%d", udpPort),
		metrics: fmt.Sprintf("127.0.0.1:%d", metricsPort),
	}
	hm.base = fmt.Sprintf("[database]\nconnection = %s\n[controller_worker]\ncompute_driver = compute_noop_driver\n"+
		"[health_manager]\nbind_ip = 127.0.0.1\nbind_port = %d\nmetrics_bind = %s\nhealth_batch_wait_ms = 5\n"+
		"failover_driver = noop\nheartbeat_timeout = %d\nhealth_check_interval = 1\nreceive_sockets = 1\n",
		dbURL, udpPort, hm.metrics, heartbeatTimeout)
	writeFile(t, hm.conf, hm.base+extra)
	hm.process = start(t, "octavia-health-manager", "--config-file", hm.conf, "serve")
	waitFor(t, "the health manager's /healthz", func() bool {
		resp, err := http.Get("http://" + hm.metrics + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return hm
}

// reload rewrites the changing options and sends SIGHUP, then waits for
// the daemon to log the reload.
func (hm *healthManager) reload(t *testing.T, extra string) {
	t.Helper()
	before := strings.Count(hm.log.String(), "configuration reloaded")
	writeFile(t, hm.conf, hm.base+extra)
	hm.signal(t, syscall.SIGHUP)
	waitFor(t, "the reload", func() bool { return strings.Count(hm.log.String(), "configuration reloaded") > before })
}

// scrape returns every sample of /metrics by series, labels included.
func (hm *healthManager) scrape(t *testing.T) map[string]float64 {
	t.Helper()
	m, err := hm.scrapeQuiet()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// scrapeQuiet is scrape for goroutines other than the test's.
func (hm *healthManager) scrapeQuiet() (map[string]float64, error) {
	resp, err := http.Get("http://" + hm.metrics + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out, nil
}

// sum adds the samples of a metric over all its label sets; a name with
// the first labels, such as `m{key="previous"`, adds those series only.
func sum(samples map[string]float64, name string) float64 {
	prefix := name + "{"
	if strings.Contains(name, "{") {
		prefix = name
	}
	var s float64
	for series, v := range samples {
		if series == name || strings.HasPrefix(series, prefix) {
			s += v
		}
	}
	return s
}

func rejected(reason string) string {
	return `octavia_hm_heartbeats_rejected_total{reason="` + reason + `"}`
}

// amphora is one seeded load balancer with its amphora, listener, pool
// and member, and the LB description its agent reads.
type amphora struct {
	id, lb, listener, pool, member string
}

// newDB returns a fresh migrated database's URL and a pool on it.
func newDB(t *testing.T) (string, *pgxpool.Pool) {
	t.Helper()
	url := pgtest.NewDB(t)
	db, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	return url, db
}

func seedAmphorae(t *testing.T, db *pgxpool.Pool, n int) []amphora {
	t.Helper()
	ctx := context.Background()
	var out []amphora
	for i := range n {
		a := amphora{id: fmt.Sprintf("amp-%d", i), lb: fmt.Sprintf("lb-%d", i), listener: fmt.Sprintf("listener-%d", i),
			pool: fmt.Sprintf("pool-%d", i), member: fmt.Sprintf("member-%d", i)}
		for _, q := range []struct {
			sql  string
			args []any
		}{
			{`INSERT INTO load_balancer (id, provisioning_status, operating_status, enabled) VALUES ($1, 'ACTIVE', 'OFFLINE', true)`, []any{a.lb}},
			{`INSERT INTO amphora (id, load_balancer_id, status, compute_id, cert_busy) VALUES ($1, $2, 'ALLOCATED', $3, false)`, []any{a.id, a.lb, "compute-" + a.id}},
			{`INSERT INTO pool (id, load_balancer_id, protocol, lb_algorithm, operating_status, enabled, provisioning_status)
				VALUES ($1, $2, 'TCP', 'ROUND_ROBIN', 'OFFLINE', true, 'ACTIVE')`, []any{a.pool, a.lb}},
			{`INSERT INTO listener (id, load_balancer_id, protocol, protocol_port, provisioning_status, operating_status, enabled, default_pool_id)
				VALUES ($1, $2, 'TCP', 80, 'ACTIVE', 'OFFLINE', true, $3)`, []any{a.listener, a.lb, a.pool}},
			{`INSERT INTO member (id, pool_id, ip_address, protocol_port, operating_status, enabled, provisioning_status, backup)
				VALUES ($1, $2, '10.0.0.1', 80, 'OFFLINE', true, 'ACTIVE', false)`, []any{a.member, a.pool}},
		} {
			if _, err := db.Exec(ctx, q.sql, q.args...); err != nil {
				t.Fatalf("%s: %v", q.sql, err)
			}
		}
		out = append(out, a)
	}
	return out
}

// agent is one amphora-agent process on VPP's simulator, with the files
// it reads.
type agent struct {
	*process
	amp  amphora
	dir  string
	conf string
}

func (a *agent) writeConf(t *testing.T, key, controller string) {
	t.Helper()
	writeFile(t, a.conf, fmt.Sprintf("[amphora_agent]\namphora_id = %s\nstatus_bind =\n"+
		"[health_manager]\nheartbeat_key = %s\ncontroller_ip_port_list = %s\nheartbeat_interval = 0.2\n"+
		"[haproxy_amphora]\nbase_path = %s\n[vpp]\ndataplane = sim\nlb_config_file = %s\n"+
		"startup_min_delay = 0\nstartup_max_delay = 1\n",
		a.amp.id, key, controller, a.dir, filepath.Join(a.dir, "lb.json")))
}

func startAgent(t *testing.T, amp amphora, key, controller string) *agent {
	t.Helper()
	a := &agent{amp: amp, dir: t.TempDir()}
	a.conf = filepath.Join(a.dir, "amphora-agent.conf")
	// No health monitor: the member is reported without probes.
	writeFile(t, filepath.Join(a.dir, "lb.json"), fmt.Sprintf(`{"loadbalancer_id": %q, "vip_addresses": ["192.0.2.10"],
 "listeners": [{"id": %q, "protocol": "TCP", "protocol_port": 80, "default_pool_id": %q}],
 "pools": [{"id": %q, "members": [{"id": %q, "address": "10.0.0.1", "protocol_port": 80}]}]}`,
		amp.lb, amp.listener, amp.pool, amp.pool, amp.member))
	a.writeConf(t, key, controller)
	a.restart(t)
	return a
}

// restart starts the agent (again) on its current files.
func (a *agent) restart(t *testing.T) {
	t.Helper()
	a.process = start(t, "amphora-agent", "--config-file", a.conf, "run")
}
