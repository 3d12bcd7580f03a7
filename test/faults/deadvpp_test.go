//go:build faults

package faults

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/octavia-vpp/health/healthdb/failover/failovertest"
	"github.com/octavia-vpp/health/heartbeat"
	"github.com/octavia-vpp/health/internal/testproc"
	"github.com/octavia-vpp/health/test/pgtest"
)

// Timing of the dead-dataplane scenario. The agents heartbeat every
// agentInterval; vppUnreachableLimit is short enough for the test and
// long enough for the agent to reconnect to a VPP that is back after
// vppDownBriefly (its reconnect backoff is 0.25, 0.5, 1, 2 s).
const (
	agentInterval       = 500 * time.Millisecond
	vppUnreachableLimit = 6 * time.Second
	vppDownBriefly      = 3 * time.Second
)

// TestDeadDataplane runs three amphora-agent processes, each on a fake VPP
// process of its own (a real unix api.sock), heartbeating through a relay
// that timestamps every datagram to one octavia-health-manager serve on
// PostgreSQL, with a fake Octavia API counting failovers:
//
//   - dead: VPP exits and stays away past vpp_unreachable_limit. The agent
//     leaves its listener out of the heartbeat, the manager marks the
//     listener ERROR and stops refreshing amphora_health, and the amphora
//     is failed over.
//   - back: VPP exits and comes back within the limit. The listener is
//     never left out, and the amphora is not failed over.
//   - hung: VPP keeps the socket but answers nothing, so the agent's VPP
//     programming waits 5 s per call. Heartbeats keep their interval
//     throughout; a hung VPP is a dead dataplane, so it is failed over too.
func TestDeadDataplane(t *testing.T) {
	// Build while PostgreSQL starts.
	built := make(chan error, 1)
	var bins agentBinaries
	go func() { built <- bins.build() }()
	srv := pgtest.NewServer(t)
	if err := <-built; err != nil {
		t.Fatal(err)
	}
	d := db{t, srv.URL()}
	cases := []string{"dead", "back", "hung"}
	seedAmphorae(t, srv.URL(), cases)
	fake := failovertest.New(t)
	hm := startHM(t, "hm", writeConfig(t, hmConfig{database: srv.URL(), fake: fake}))

	amps := map[string]*amphoraProcess{}
	for _, name := range cases {
		amps[name] = startAmphora(t, bins, name, hm.udp.String())
	}
	waitUntil(t, 30*time.Second, "every amphora's health row", func() bool {
		rows, fresh := d.healthRows(time.Now().Add(-2 * agentInterval))
		return rows == len(cases) && fresh == len(cases)
	})
	for _, name := range cases {
		if got := listenerStatus(d, name); got != "ONLINE" {
			t.Fatalf("%s: listener %s before the fault; want ONLINE", name, got)
		}
	}

	faultAt := time.Now()
	amps["dead"].vpp.command(t, "stop")
	amps["back"].vpp.command(t, "stop")
	amps["hung"].vpp.command(t, "hung")
	time.Sleep(vppDownBriefly)
	amps["back"].vpp.command(t, "resume")
	resumed := time.Now()

	// The dead one: at most a VPP ping interval (5 s) to notice, the limit,
	// heartbeat_timeout and a check.
	deadline := 5*time.Second + vppUnreachableLimit + heartbeatTimeout + 15*time.Second
	waitUntil(t, deadline, "amp-dead failed over", func() bool { return fake.Failovers()["amp-dead"] == 1 })
	deadAfter := time.Since(faultAt)
	if got := listenerStatus(d, "dead"); got != "ERROR" {
		t.Errorf("dead: listener %s after the failover; want ERROR", got)
	}
	if first := amps["dead"].relay.firstEmpty(); first.IsZero() || first.Sub(faultAt) < vppUnreachableLimit {
		t.Errorf("dead: listener first left out at %v after the fault; want after vpp_unreachable_limit (%v)",
			first.Sub(faultAt), vppUnreachableLimit)
	}
	// The hung one: a ping may wait 5 s more for its answer.
	waitUntil(t, deadline+5*time.Second, "amp-hung failed over", func() bool { return fake.Failovers()["amp-hung"] == 1 })
	hungAfter := time.Since(faultAt)

	// The one that came back: give it the limit, heartbeat_timeout and a
	// few checks after it was back.
	if wait := time.Until(resumed.Add(vppUnreachableLimit + heartbeatTimeout + 3*healthCheckInterval)); wait > 0 {
		time.Sleep(wait)
	}
	if n := fake.Failovers()["amp-back"]; n != 0 {
		t.Errorf("back: %d failover calls for an amphora whose VPP was away %v (limit %v)", n, vppDownBriefly, vppUnreachableLimit)
	}
	if first := amps["back"].relay.firstEmpty(); !first.IsZero() {
		t.Errorf("back: listener left out at %v after the fault, with VPP away %v (limit %v)",
			first.Sub(faultAt), vppDownBriefly, vppUnreachableLimit)
	}
	if got := listenerStatus(d, "back"); got != "ONLINE" {
		t.Errorf("back: listener %s; want ONLINE", got)
	}
	_, fresh := d.healthRows(time.Now().Add(-2 * time.Second))
	if fresh < 1 {
		t.Errorf("back: amphora_health not refreshed")
	}

	// Heartbeats kept their interval while VPP was hung, from the fault
	// until its failover.
	n, maxGap := amps["hung"].relay.gaps(faultAt, faultAt.Add(hungAfter))
	if n < int(hungAfter/agentInterval)/2 || maxGap > 3*agentInterval {
		t.Errorf("hung: %d heartbeats in %v, largest gap %v; want one every %v", n, hungAfter.Round(time.Millisecond),
			maxGap.Round(time.Millisecond), agentInterval)
	}
	// The window proves something only if the agent's VPP programming
	// did wait on the hung VPP in it.
	if waited := amps["hung"].agentLines("vip sync failed", "deadline exceeded"); waited == 0 {
		t.Errorf("hung: no VIP sync waited for its deadline; the log:\n%s", amps["hung"].agentLog.String())
	}
	// And the one that came back was noticed gone, and reconnected.
	if amps["back"].agentLines("vpp unreachable, reconnecting") == 0 || amps["back"].agentLines("vpp connected") < 2 {
		t.Errorf("back: the agent did not see VPP go and come back; the log:\n%s", amps["back"].agentLog.String())
	}
	if got := fake.Failovers(); len(got) != 2 {
		t.Errorf("failover calls %v; want amp-dead and amp-hung once each", got)
	}
	fault(t, "dead-dataplane", "dead_failed_over_after_s", deadAfter.Seconds(), "hung_failed_over_after_s", hungAfter.Seconds(),
		"hung_heartbeats", n, "hung_max_gap_ms", maxGap.Milliseconds(), "back_failovers", fake.Failovers()["amp-back"])
}

type agentBinaries struct{ agent, fakevpp string }

func (b *agentBinaries) build() error {
	var err error
	if b.agent, err = testproc.Build("github.com/octavia-vpp/health/cmd/amphora-agent"); err != nil {
		return err
	}
	b.fakevpp, err = testproc.Build("github.com/octavia-vpp/health/vpp/internal/fakevpp/cmd/fakevpp")
	return err
}

// seedAmphorae seeds one load balancer per name: amphora amp-<name>,
// listener l-<name>, pool p-<name> with member m-<name>.
func seedAmphorae(t *testing.T, url string, names []string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, n := range names {
		for _, sql := range []string{
			`INSERT INTO load_balancer (id, provisioning_status, operating_status, enabled) VALUES ('lb-` + n + `', 'ACTIVE', 'ONLINE', true)`,
			`INSERT INTO amphora (id, load_balancer_id, status, compute_id, cert_busy, role) VALUES ('amp-` + n + `', 'lb-` + n + `', 'ALLOCATED', 'c-` + n + `', false, 'STANDALONE')`,
			`INSERT INTO pool (id, load_balancer_id, protocol, lb_algorithm, operating_status, enabled, provisioning_status) VALUES ('p-` + n + `', 'lb-` + n + `', 'TCP', 'ROUND_ROBIN', 'ONLINE', true, 'ACTIVE')`,
			`INSERT INTO member (id, pool_id, ip_address, protocol_port, operating_status, enabled, provisioning_status, backup) VALUES ('m-` + n + `', 'p-` + n + `', '10.0.0.1', 80, 'ONLINE', true, 'ACTIVE', false)`,
			`INSERT INTO listener (id, load_balancer_id, protocol, protocol_port, provisioning_status, operating_status, enabled, default_pool_id) VALUES ('l-` + n + `', 'lb-` + n + `', 'TCP', 80, 'ACTIVE', 'ONLINE', true, 'p-` + n + `')`,
		} {
			if _, err := conn.Exec(ctx, sql); err != nil {
				t.Fatalf("%s: %v", sql, err)
			}
		}
	}
}

func listenerStatus(d db, name string) string {
	var s string
	d.mustQuery(`SELECT operating_status FROM listener WHERE id = $1`, []any{"l-" + name}, &s)
	return s
}

// fakeVPP is a fakevpp process driven over its stdin.
type fakeVPP struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Scanner
}

func startFakeVPP(t *testing.T, bin, socket string) *fakeVPP {
	t.Helper()
	f := &fakeVPP{cmd: exec.Command(bin, "-socket", socket)}
	f.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var err error
	if f.stdin, err = f.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := f.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	f.cmd.Stderr = os.Stderr
	if err := f.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		f.stdin.Close() // it exits at the end of stdin
		done := make(chan struct{})
		go func() { f.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			f.cmd.Process.Kill()
			<-done
		}
	})
	f.out = bufio.NewScanner(stdout)
	if !f.out.Scan() || f.out.Text() != "ready" {
		t.Fatalf("fakevpp did not start: %q %v", f.out.Text(), f.out.Err())
	}
	return f
}

func (f *fakeVPP) command(t *testing.T, cmd string) {
	t.Helper()
	if _, err := fmt.Fprintln(f.stdin, cmd); err != nil {
		t.Fatal(err)
	}
	if !f.out.Scan() || f.out.Text() != "ok "+cmd {
		t.Fatalf("fakevpp %s: %q %v", cmd, f.out.Text(), f.out.Err())
	}
}

// relay receives an agent's heartbeats, notes when each arrived and how
// many listeners it reported, and passes it on to the manager.
type relay struct {
	conn *net.UDPConn

	mu       sync.Mutex
	arrivals []time.Time
	empty    []time.Time // arrivals that reported no listener
}

func startRelay(t *testing.T, to string) *relay {
	t.Helper()
	in, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	dst, err := net.ResolveUDPAddr("udp", to)
	if err != nil {
		t.Fatal(err)
	}
	out, err := net.DialUDP("udp", nil, dst)
	if err != nil {
		t.Fatal(err)
	}
	kr, err := heartbeat.NewKeyring(heartbeat.KeyringConfig{Keys: []string{heartbeatKey}})
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{conn: in}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			n, err := in.Read(buf)
			if err != nil {
				return
			}
			now := time.Now()
			m, _, err := kr.Open(buf[:n])
			if err != nil {
				continue
			}
			r.mu.Lock()
			r.arrivals = append(r.arrivals, now)
			if len(m.Listeners) == 0 {
				r.empty = append(r.empty, now)
			}
			r.mu.Unlock()
			_, _ = out.Write(buf[:n])
		}
	}()
	t.Cleanup(func() { in.Close(); <-done; out.Close() })
	return r
}

func (r *relay) firstEmpty() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.empty) == 0 {
		return time.Time{}
	}
	return r.empty[0]
}

// gaps counts the heartbeats that arrived between from and to, and the
// largest gap between two arrivals there (from and to count as arrivals).
func (r *relay) gaps(from, to time.Time) (n int, largest time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	prev := from
	for _, a := range r.arrivals {
		if a.Before(from) || a.After(to) {
			continue
		}
		n++
		largest = max(largest, a.Sub(prev))
		prev = a
	}
	return n, max(largest, to.Sub(prev))
}

// amphoraProcess is one amphora: a fake VPP, an agent and its relay.
type amphoraProcess struct {
	vpp      *fakeVPP
	relay    *relay
	agentLog testproc.Output
}

// agentLines counts the agent's log lines that hold every one of subs.
func (a *amphoraProcess) agentLines(subs ...string) int {
	n := 0
	for _, line := range strings.Split(a.agentLog.String(), "\n") {
		all := true
		for _, s := range subs {
			all = all && strings.Contains(line, s)
		}
		if all {
			n++
		}
	}
	return n
}

func startAmphora(t *testing.T, bins agentBinaries, name, hm string) *amphoraProcess {
	t.Helper()
	dir := t.TempDir()
	a := &amphoraProcess{relay: startRelay(t, hm)}
	socket := filepath.Join(dir, "api.sock")
	a.vpp = startFakeVPP(t, bins.fakevpp, socket)
	// Three VIP addresses: a full sync on a hung VPP waits 5 s on each.
	lb := fmt.Sprintf(`{"loadbalancer_id": "lb-%[1]s", "vip_addresses": ["192.0.2.10", "192.0.2.11", "192.0.2.12"],
 "listeners": [{"id": "l-%[1]s", "protocol": "TCP", "protocol_port": 80, "default_pool_id": "p-%[1]s"}],
 "pools": [{"id": "p-%[1]s", "members": [{"id": "m-%[1]s", "address": "10.0.0.1", "protocol_port": 80}]}]}`, name)
	lbPath := filepath.Join(dir, "lb.json")
	if err := os.WriteFile(lbPath, []byte(lb), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`[amphora_agent]
amphora_id = amp-%s
status_bind =
vpp_unreachable_limit = %g
[health_manager]
heartbeat_key = %s
controller_ip_port_list = %s
heartbeat_interval = %g
[haproxy_amphora]
base_path = %s
[vpp]
dataplane = govpp
api_socket = %s
stats_socket =
lb_config_file = %s
ip4_src_address = 192.0.2.1
startup_min_delay = 0.5
startup_max_delay = 1
sync_interval = 1
`, name, vppUnreachableLimit.Seconds(), heartbeatKey, a.relay.conn.LocalAddr(), agentInterval.Seconds(), dir, socket, lbPath)
	confPath := filepath.Join(dir, "amphora-agent.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bins.agent, "--config-file", confPath, "run")
	cmd.Stdout, cmd.Stderr = &a.agentLog, &a.agentLog
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("agent %s log:\n%s", name, tail(a.agentLog.String(), 40))
		}
	})
	return a
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
