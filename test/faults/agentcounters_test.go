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

	"github.com/octavia-vpp/health/heartbeat"
	"github.com/octavia-vpp/health/internal/testproc"
)

// The agent side of listener statistics across restarts: amphora-agent
// runs as a process of its own against fakevppd (the project's fake VPP,
// also a process, with its binary API socket and a stats segment served
// through a real stats socket), with traffic. VPP, the agent and both are
// restarted in every order, and the API socket is taken away while VPP
// keeps forwarding. The heartbeats' deltas, summed as a health manager
// would, must never exceed what VPP counted and must end up equal to it.

var (
	agentBin, fakeVPPBin      string
	fakeVPPControlLine        = regexp.MustCompile(`fakevppd control=(\S+)`)
	agentCountersHeartbeatKey = "faults-key"
)

func buildAgentBins(t *testing.T) {
	t.Helper()
	agentBin = testproc.Binary(t, "github.com/octavia-vpp/health/cmd/amphora-agent")
	fakeVPPBin = testproc.Binary(t, "github.com/octavia-vpp/health/vpp/internal/fakevpp/fakevppd")
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
// would.
type statsRx struct {
	mu                     sync.Mutex
	rx, totConns, eReq     int64
	heartbeats, listenerHB int
}

func (s *statsRx) sums() (rx, totConns, eReq int64, heartbeats int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rx, s.totConns, s.eReq, s.heartbeats
}

func receiveHeartbeats(t *testing.T) (*statsRx, string) {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	kr, err := heartbeat.NewKeyring(heartbeat.KeyringConfig{Keys: []string{agentCountersHeartbeatKey}})
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
			s.mu.Lock()
			s.heartbeats++
			for _, l := range m.Listeners {
				s.listenerHB++
				s.rx += l.Stats.RX
				s.totConns += l.Stats.TotConns
				s.eReq += l.Stats.EReq
			}
			s.mu.Unlock()
		}
	}()
	return s, conn.LocalAddr().String()
}

// memberServer accepts TCP connections: the TCP health monitor's target.
func memberServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return ln.Addr().String()
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

func TestAgentCountersAcrossRestarts(t *testing.T) {
	buildAgentBins(t)
	dir := t.TempDir()
	apiSock := filepath.Join(dir, "api.sock")
	statsSock := filepath.Join(dir, "stats.sock")
	rx, controller := receiveHeartbeats(t)
	member := memberServer(t)
	host, port, _ := net.SplitHostPort(member)

	lb := fmt.Sprintf(`{"loadbalancer_id": "lb", "vip_addresses": ["192.0.2.10", "2001:db8::10"],
 "listeners": [{"id": "l1", "protocol": "TCP", "protocol_port": 80, "default_pool_id": "p1"}],
 "pools": [{"id": "p1", "members": [{"id": "m1", "address": %q, "protocol_port": %s, "weight": 1}],
   "healthmonitor": {"type": "TCP", "delay": 0.2, "timeout": 1, "max_retries": 1, "max_retries_down": 3}}]}`, host, port)
	lbPath := filepath.Join(dir, "lb.json")
	conf := filepath.Join(dir, "amphora-agent.conf")
	confText := fmt.Sprintf(`[amphora_agent]
amphora_id = faults-amphora
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
`, controller, agentCountersHeartbeatKey, dir, apiSock, statsSock, lbPath)
	for path, text := range map[string]string{lbPath: lb, conf: confText} {
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	vppProc, ctl := startProc(t, "fakevppd", fakeVPPControlLine, fakeVPPBin, "-api", apiSock, "-stats", statsSock)
	_ = vppProc
	vpp := vppControl{t, ctl}
	var ag *proc
	startAgent := func() { ag, _ = startProc(t, "amphora-agent", nil, agentBin, "--config-file", conf) }
	killAgent := func() { ag.kill() }

	// carried is what VPP counted, from fakevppd's replies.
	var carried struct{ first, noServer, bytes int64 }
	traffic := func(flows int) {
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
		carried.first += c.First
		carried.noServer += c.NoServer
		carried.bytes += c.RouteBytes
	}
	// never more than VPP counted, at any time
	check := func() bool {
		t.Helper()
		r, tc, e, _ := rx.sums()
		if r > carried.bytes || tc > carried.first || e > carried.noServer {
			t.Fatalf("reported rx=%d totconns=%d ereq=%d, VPP counted bytes=%d first=%d no-server=%d: counted twice",
				r, tc, e, carried.bytes, carried.first, carried.noServer)
		}
		return r == carried.bytes && tc == carried.first && e == carried.noServer
	}
	settle := func(step string) time.Duration {
		t.Helper()
		start := time.Now()
		for !check() {
			if time.Since(start) > 30*time.Second {
				r, tc, e, _ := rx.sums()
				t.Fatalf("%s: reported rx=%d totconns=%d ereq=%d, VPP counted bytes=%d first=%d no-server=%d",
					step, r, tc, e, carried.bytes, carried.first, carried.noServer)
			}
			time.Sleep(50 * time.Millisecond)
		}
		return time.Since(start)
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

	startAgent()
	waitVIPs()
	traffic(5)
	settle("first traffic")

	steps := []struct {
		name string
		run  func()
	}{
		{"agent restart, traffic while down", func() {
			traffic(3)
			killAgent()
			traffic(2)
			startAgent()
			traffic(1)
		}},
		{"VPP restart", func() {
			vpp.post("/stop")
			pause()
			vpp.post("/start")
			waitVIPs()
			traffic(4)
		}},
		{"VPP restart, then agent restart", func() {
			vpp.post("/stop")
			vpp.post("/start")
			waitVIPs()
			traffic(2)
			settle("after the VPP restart")
			traffic(3)
			killAgent()
			startAgent()
			traffic(1)
		}},
		{"API socket away while VPP forwards", func() {
			vpp.post("/api-down")
			traffic(3)
			pause()
			traffic(2)
			vpp.post("/api-up")
			traffic(1)
		}},
		{"API socket away, then agent restart", func() {
			vpp.post("/api-down")
			traffic(2)
			vpp.post("/api-up")
			pause()
			killAgent()
			traffic(1)
			startAgent()
			traffic(1)
		}},
		{"both down, agent first, VPP back first", func() {
			killAgent()
			vpp.post("/stop")
			vpp.post("/start")
			startAgent()
			waitVIPs()
			traffic(2)
		}},
		{"both down, agent first, agent back first", func() {
			killAgent()
			vpp.post("/stop")
			startAgent()
			pause()
			vpp.post("/start")
			waitVIPs()
			traffic(2)
		}},
		{"both down, VPP first, agent back first", func() {
			vpp.post("/stop")
			pause()
			killAgent()
			startAgent()
			pause()
			vpp.post("/start")
			waitVIPs()
			traffic(2)
		}},
		{"both down, VPP first, VPP back first", func() {
			vpp.post("/stop")
			killAgent()
			vpp.post("/start")
			startAgent()
			waitVIPs()
			traffic(2)
		}},
	}
	for _, s := range steps {
		s.run()
		took := settle(s.name)
		t.Logf("%s: settled %v after the last step", s.name, took.Round(10*time.Millisecond))
	}
	r, tc, e, hbs := rx.sums()
	fault(t, "agent counters across restarts",
		"steps", len(steps), "heartbeats", hbs,
		"vpp_first_packets", carried.first, "reported_totconns", tc,
		"vpp_route_bytes", carried.bytes, "reported_rx", r,
		"vpp_no_server", carried.noServer, "reported_ereq", e)
}
