//go:build faults && linux

package faults

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/octavia-vpp/health/healthdb/failover/failovertest"
	"github.com/octavia-vpp/health/heartbeat"
	"github.com/octavia-vpp/health/internal/testproc"
	"github.com/octavia-vpp/health/test/pgtest"
)

// Listener statistics from VPP's counters to listener_statistics, exact
// across everything that can restart or fail on the way: amphora-agent runs
// as a process of its own against fakevppd (the project's fake VPP, also a
// process, with its binary API socket and a stats segment served through a
// real stats socket), with traffic, and heartbeats through a relay to the
// built octavia-health-manager, whose PostgreSQL connections go through a
// pgtest.Proxy. VPP, the agent and both are restarted in every order, the
// API socket is taken away while VPP keeps forwarding, and meanwhile the
// database goes away and statistics flushes lose their COMMIT or its
// answer. The heartbeats' deltas and listener_statistics must never exceed
// what VPP counted, and must end up equal to it after every step.

var (
	agentBin, fakeVPPBin string
	fakeVPPControlLine   = regexp.MustCompile(`fakevppd control=(\S+)`)
)

// buildAgentBinaries builds amphora-agent and fakevppd, once.
func buildAgentBinaries() error {
	var err error
	if agentBin, err = testproc.Build("github.com/octavia-vpp/health/cmd/amphora-agent"); err != nil {
		return err
	}
	fakeVPPBin, err = testproc.Build("github.com/octavia-vpp/health/vpp/internal/fakevpp/fakevppd")
	return err
}

// proc is a child process with its stderr kept.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	mu   sync.Mutex
	log  []string
}

func startProc(t *testing.T, name string, match *regexp.Regexp, args ...string) (*proc, string) {
	t.Helper()
	p := &proc{name: name, done: make(chan struct{})}
	p.cmd = exec.Command(args[0], args[1:]...)
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stdout = p.cmd.Stderr // the agent logs to stdout
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			if match != nil {
				if m := match.FindStringSubmatch(line); m != nil {
					select {
					case found <- m[1]:
					default:
					}
				}
			}
			p.mu.Lock()
			if len(p.log) > 2000 {
				p.log = p.log[1000:]
			}
			p.log = append(p.log, line)
			p.mu.Unlock()
		}
	}()
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			p.mu.Lock()
			tail := p.log[max(0, len(p.log)-30):]
			p.mu.Unlock()
			t.Logf("%s log tail:", name)
			for _, l := range tail {
				t.Log("  " + l)
			}
		}
	})
	if match == nil {
		return p, ""
	}
	select {
	case v := <-found:
		return p, v
	case <-p.done:
		t.Fatalf("%s exited at start", name)
	case <-time.After(20 * time.Second):
		t.Fatalf("%s did not start", name)
	}
	return p, ""
}

// kill is a crash: SIGKILL, nothing written on the way out.
func (p *proc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// statsRx sums what the heartbeats report, as the manager's stats driver
// would, and passes each heartbeat on to the manager.
type statsRx struct {
	mu                     sync.Mutex
	rx, tx, totConns, eReq int64
	heartbeats, listenerHB int
}

// sums are the deltas received so far, as listener_statistics would hold
// them.
func (s *statsRx) sums() (statsSums, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return statsSums{bytesIn: s.rx, bytesOut: s.tx, totalConns: s.totConns, requestErrors: s.eReq}, s.heartbeats
}

func receiveHeartbeats(t *testing.T, forward string) (*statsRx, string) {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	to, err := net.ResolveUDPAddr("udp", forward)
	if err != nil {
		t.Fatal(err)
	}
	kr, err := heartbeat.NewKeyring(heartbeat.KeyringConfig{Keys: []string{heartbeatKey}})
	if err != nil {
		t.Fatal(err)
	}
	s := &statsRx{}
	go func() {
		buf := make([]byte, 65536)
		for {
			n, _, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			m, _, err := kr.Open(buf[:n])
			if err != nil {
				continue
			}
			_, _ = conn.WriteTo(buf[:n], to)
			s.mu.Lock()
			s.heartbeats++
			for _, l := range m.Listeners {
				s.listenerHB++
				s.rx += l.Stats.RX
				s.tx += l.Stats.TX
				s.totConns += l.Stats.TotConns
				s.eReq += l.Stats.EReq
			}
			s.mu.Unlock()
		}
	}()
	return s, conn.LocalAddr().String()
}

// member accepts TCP connections while up: the TCP health monitor's
// target.
type member struct {
	t    *testing.T
	addr string
	mu   sync.Mutex
	ln   net.Listener
}

func memberServer(t *testing.T) *member {
	t.Helper()
	m := &member{t: t, addr: "127.0.0.1:0"}
	m.up()
	m.addr = m.ln.Addr().String()
	t.Cleanup(m.down)
	return m
}

// up listens again, on the same port.
func (m *member) up() {
	m.t.Helper()
	ln, err := net.Listen("tcp", m.addr)
	if err != nil {
		m.t.Fatal(err)
	}
	m.mu.Lock()
	m.ln = ln
	m.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
}

// down refuses connections, so the health monitor takes the member out.
func (m *member) down() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ln != nil {
		m.ln.Close()
		m.ln = nil
	}
}

type vppControl struct {
	t    *testing.T
	addr string
}

func (v vppControl) post(path string) []byte {
	v.t.Helper()
	resp, err := http.Post("http://"+v.addr+path, "", nil)
	if err != nil {
		v.t.Fatalf("fakevppd %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		v.t.Fatalf("fakevppd %s: %s %s", path, resp.Status, b)
	}
	return b
}

func TestListenerStatsAcrossRestarts(t *testing.T) {
	began := time.Now()
	since := func() time.Duration { return time.Since(began).Round(10 * time.Millisecond) }
	// Build while PostgreSQL starts.
	built := make(chan error, 1)
	go func() { built <- buildAgentBinaries() }()
	srv := pgtest.NewServer(t)
	if err := <-built; err != nil {
		t.Fatal(err)
	}
	seedAmphorae(t, srv.URL(), []string{"stats"})
	proxy, proxied := pgtest.NewProxy(t, srv.URL())
	fake := failovertest.New(t)
	hm := startHM(t, "hm", writeConfig(t, hmConfig{database: proxied, fake: fake}))
	d := db{t, srv.URL()}
	rx, controller := receiveHeartbeats(t, hm.udp.String())
	t.Logf("%v: manager started", since())

	dir := t.TempDir()
	apiSock := filepath.Join(dir, "api.sock")
	statsSock := filepath.Join(dir, "stats.sock")
	backend := memberServer(t)
	host, port, _ := net.SplitHostPort(backend.addr)

	// The ids seedAmphorae gave the load balancer "stats".
	lb := fmt.Sprintf(`{"loadbalancer_id": "lb-stats", "vip_addresses": ["192.0.2.10", "2001:db8::10"],
 "listeners": [{"id": "l-stats", "protocol": "TCP", "protocol_port": 80, "default_pool_id": "p-stats"}],
 "pools": [{"id": "p-stats", "members": [{"id": "m-stats", "address": %q, "protocol_port": %s, "weight": 1}],
   "healthmonitor": {"type": "TCP", "delay": 0.2, "timeout": 1, "max_retries": 1, "max_retries_down": 3}}]}`, host, port)
	lbPath := filepath.Join(dir, "lb.json")
	conf := filepath.Join(dir, "amphora-agent.conf")
	confText := fmt.Sprintf(`[amphora_agent]
amphora_id = amp-stats
status_bind =
[health_manager]
controller_ip_port_list = %s
heartbeat_interval = 1
heartbeat_key = %s
[haproxy_amphora]
base_path = %s
[vpp]
api_socket = %s
stats_socket = %s
lb_config_file = %s
ip4_src_address = 198.51.100.1
ip6_src_address = 2001:db8::1
startup_min_delay = 0
startup_max_delay = 2
sync_interval = 1
`, controller, heartbeatKey, dir, apiSock, statsSock, lbPath)
	for path, text := range map[string]string{lbPath: lb, conf: confText} {
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	_, ctl := startProc(t, "fakevppd", fakeVPPControlLine, fakeVPPBin, "-api", apiSock, "-stats", statsSock)
	vpp := vppControl{t, ctl}
	var ag *proc
	startAgent := func() { ag, _ = startProc(t, "amphora-agent", nil, agentBin, "--config-file", conf) }
	killAgent := func() { ag.kill() }

	// carried is what VPP counted, from fakevppd's replies, mapped as
	// docs/agent.md maps VPP's counters to a listener's statistics: route
	// bytes to bytes_in, first-session packets to total_connections,
	// no-server packets to request_errors, and bytes_out always 0.
	var carried statsSums
	traffic := func(flows int) (first, noServer int64) {
		t.Helper()
		var c struct {
			First      int64 `json:"first"`
			NoServer   int64 `json:"no_server"`
			RouteBytes int64 `json:"route_bytes"`
			VIPs       int   `json:"vips"`
		}
		if err := json.Unmarshal(vpp.post(fmt.Sprintf("/traffic?flows=%d&packets=3&bytes=100", flows)), &c); err != nil {
			t.Fatal(err)
		}
		if c.VIPs != 2 {
			t.Fatalf("traffic reached %d VIPs, want both of the dual-stack listener", c.VIPs)
		}
		carried.totalConns += c.First
		carried.requestErrors += c.NoServer
		carried.bytesIn += c.RouteBytes
		return c.First, c.NoServer
	}
	exceeds := func(got statsSums) bool {
		return got.bytesIn > carried.bytesIn || got.bytesOut > carried.bytesOut ||
			got.totalConns > carried.totalConns || got.requestErrors > carried.requestErrors
	}
	// settle waits until the heartbeats, then listener_statistics, hold
	// exactly what VPP counted; never more, at any time.
	settle := func(step string) (heartbeats, database time.Duration) {
		t.Helper()
		start := time.Now()
		for _, where := range []string{"heartbeats", "listener_statistics"} {
			for {
				var got statsSums
				if where == "heartbeats" {
					got, _ = rx.sums()
				} else {
					got = d.stats()
				}
				if exceeds(got) {
					// A retry applied twice may land after the step it
					// belongs to has settled, so this may be the step after.
					t.Fatalf("%s: %s hold %+v, VPP counted %+v: counted twice", step, where, got, carried)
				}
				if got == carried {
					break
				}
				if time.Since(start) > 30*time.Second {
					t.Fatalf("%s: %s hold %+v after 30 s, VPP counted %+v", step, where, got, carried)
				}
				time.Sleep(50 * time.Millisecond)
			}
			if where == "heartbeats" {
				heartbeats = time.Since(start)
			}
		}
		return heartbeats, time.Since(start)
	}
	waitVIPs := func() {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			var c struct {
				VIPs int `json:"vips"`
			}
			_ = json.Unmarshal(vpp.post("/traffic?flows=0"), &c)
			if c.VIPs == 2 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatal("the agent never pushed both VIPs")
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	pause := func() { time.Sleep(1500 * time.Millisecond) } // the agent notices
	// trafficUntil sends a flow at a time until VPP counts one as cond
	// says: the agent has reprogrammed VPP after a member changed state.
	trafficUntil := func(what string, cond func(first, noServer int64) bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !cond(traffic(1)) {
			if time.Now().After(deadline) {
				t.Fatalf("VPP never %s", what)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	// The database faults. A COMMIT cut is armed while no heartbeat is on
	// its way (the agent is down, or the database is), so that the flush
	// it cuts is the one carrying the deltas that piled up meanwhile.
	var cutsBefore, cutsAfter, outages int
	var outageTime time.Duration
	cut := func(afterReply bool) (wait func()) {
		time.Sleep(300 * time.Millisecond) // a flush under way ends
		fired := proxy.CutAtCommit(pgtest.CommitCut{AfterReply: afterReply, Mentioning: "listener_statistics"})
		return func() {
			t.Helper()
			select {
			case <-fired:
			case <-time.After(20 * time.Second):
				t.Fatalf("no statistics flush COMMIT to cut (after the reply: %v) in 20 s", afterReply)
			}
			if afterReply {
				cutsAfter++
			} else {
				cutsBefore++
			}
		}
	}
	var outageFrom time.Time
	dbDown := func() { srv.Stop(); outageFrom = time.Now() }
	// dbBack ends the outage, with the COMMIT of the flush holding its
	// backlog cut. It waits until the manager has received the step's
	// deltas, so that they are in that backlog.
	dbBack := func(afterReply bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for got, _ := rx.sums(); got != carried; got, _ = rx.sums() {
			if time.Now().After(deadline) {
				t.Fatalf("heartbeats hold %+v after 30 s of outage, VPP counted %+v", got, carried)
			}
			time.Sleep(50 * time.Millisecond)
		}
		wait := cut(afterReply)
		srv.Start()
		outages++
		outageTime += time.Since(outageFrom)
		back := time.Now()
		wait()
		t.Logf("outage of %v; the backlog's flush cut %v after the server was back",
			back.Sub(outageFrom).Round(10*time.Millisecond), time.Since(back).Round(10*time.Millisecond))
	}

	startAgent()
	waitVIPs()
	t.Logf("%v: agent pushed the VIPs", since())
	traffic(5)
	// New flows with no usable backend are request_errors.
	backend.down()
	trafficUntil("dropped a flow for want of a backend", func(_, noServer int64) bool { return noServer > 0 })
	traffic(2)
	backend.up()
	trafficUntil("forwarded a flow to the member again", func(first, _ int64) bool { return first > 0 })
	settle("first traffic, the member down and up")
	t.Logf("%v: first traffic settled", since())

	steps := []struct {
		name, dbFault string
		run           func()
	}{
		{"agent restart, traffic while down", "COMMIT cut before the server", func() {
			traffic(3)
			killAgent()
			wait := cut(false)
			traffic(2)
			startAgent()
			traffic(1)
			wait()
		}},
		{"VPP restart", "database outage, the answer to the backlog's COMMIT lost", func() {
			dbDown()
			vpp.post("/stop")
			pause()
			vpp.post("/start")
			waitVIPs()
			traffic(4)
			dbBack(true)
		}},
		{"VPP restart, then agent restart", "COMMIT answer lost after the server committed", func() {
			vpp.post("/stop")
			vpp.post("/start")
			waitVIPs()
			traffic(2)
			settle("after the VPP restart")
			traffic(3)
			killAgent()
			wait := cut(true)
			traffic(1)
			startAgent()
			traffic(1)
			wait()
		}},
		{"API socket away while VPP forwards", "database outage, the answer to the backlog's COMMIT lost", func() {
			vpp.post("/api-down")
			dbDown()
			traffic(3)
			pause()
			traffic(2)
			vpp.post("/api-up")
			traffic(1)
			dbBack(true)
		}},
		{"API socket away, then agent restart", "COMMIT cut before the server", func() {
			vpp.post("/api-down")
			traffic(2)
			vpp.post("/api-up")
			pause()
			killAgent()
			wait := cut(false)
			traffic(1)
			startAgent()
			traffic(1)
			wait()
		}},
		{"both down, agent first, VPP back first", "database outage, the backlog's COMMIT cut before the server", func() {
			dbDown()
			killAgent()
			vpp.post("/stop")
			vpp.post("/start")
			startAgent()
			waitVIPs()
			traffic(2)
			dbBack(false)
		}},
		{"both down, agent first, agent back first", "database outage, the answer to the backlog's COMMIT lost", func() {
			dbDown()
			killAgent()
			vpp.post("/stop")
			startAgent()
			pause()
			vpp.post("/start")
			waitVIPs()
			traffic(2)
			dbBack(true)
		}},
		{"both down, VPP first, agent back first", "database outage, the answer to the backlog's COMMIT lost", func() {
			dbDown()
			vpp.post("/stop")
			pause()
			killAgent()
			startAgent()
			pause()
			vpp.post("/start")
			waitVIPs()
			traffic(2)
			dbBack(true)
		}},
		{"both down, VPP first, VPP back first", "database outage, the backlog's COMMIT cut before the server", func() {
			dbDown()
			vpp.post("/stop")
			killAgent()
			vpp.post("/start")
			startAgent()
			waitVIPs()
			traffic(2)
			dbBack(false)
		}},
	}
	for _, s := range steps {
		start := time.Now()
		s.run()
		took := time.Since(start)
		hb, db := settle(s.name)
		t.Logf("%s (%s): took %v; heartbeats exact %v after it, listener_statistics %v",
			s.name, s.dbFault, took.Round(10*time.Millisecond), hb.Round(10*time.Millisecond), db.Round(10*time.Millisecond))
	}
	// Settled, and staying so: a late retry would show now.
	time.Sleep(time.Second)
	got := d.stats()
	if got != carried {
		t.Errorf("listener_statistics %+v a second after settling; VPP counted %+v", got, carried)
	}
	_, hbs := rx.sums()
	m := hm.scrape()
	recognised := hm.logCount("not applied again")
	// Each cut after the server committed leaves a flush whose retry must
	// find it committed.
	if recognised < cutsAfter {
		t.Errorf("%d retried flushes found already committed; the %d cuts after the server committed should give as many", recognised, cutsAfter)
	}
	if n := m.get("octavia_hm_stats_discarded_rows_total"); n != 0 {
		t.Errorf("%v statistics rows discarded", n)
	}
	fault(t, "listener_stats_restarts", "steps", len(steps), "heartbeats", hbs,
		"vpp_first_packets", carried.totalConns, "total_connections", got.totalConns,
		"vpp_route_bytes", carried.bytesIn, "bytes_in", got.bytesIn, "bytes_out", got.bytesOut,
		"vpp_no_server", carried.requestErrors, "request_errors", got.requestErrors,
		"outages", outages, "outage_s", outageTime.Seconds(),
		"commit_cuts_before", cutsBefore, "commit_cuts_after", cutsAfter,
		"flushes_found_committed", recognised,
		"flush_errors", m.get("octavia_hm_stats_flush_errors_total"),
		"discarded_rows", m.get("octavia_hm_stats_discarded_rows_total"),
		"failovers", len(fake.Failovers()))
	hm.stop()
}
