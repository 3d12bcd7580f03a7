//go:build interop

package interop

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// octaviaHM is Octavia's health manager, live: octavia_glue.py listen,
// its UDP receive path and its health_check loop on one database.
type octaviaHM struct {
	t     testing.TB
	cmd   *exec.Cmd
	stdin io.WriteCloser
	addr  netip.AddrPort

	mu        sync.Mutex
	applied   int
	accepted  int
	failovers []string
	final     *octaviaFinal
	stderr    strings.Builder
	done      chan struct{}
}

type octaviaFinal struct {
	Received, Accepted int
	Failovers          []string
}

// startOctavia starts Octavia's manager on url with heartbeat_timeout and
// health_check_interval in seconds, and waits until it listens.
func startOctavia(t testing.TB, url, key string, heartbeatTimeout, healthCheckInterval int) *octaviaHM {
	t.Helper()
	o := &octaviaHM{t: t, done: make(chan struct{})}
	o.cmd = exec.Command(python, "octavia_glue.py", "listen", url, key,
		fmt.Sprint(heartbeatTimeout), fmt.Sprint(healthCheckInterval))
	o.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var err error
	if o.stdin, err = o.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := o.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	o.cmd.Stderr = &lockedWriter{mu: &o.mu, w: &o.stderr}
	if err := o.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	port := make(chan int, 1)
	go func() {
		defer close(o.done)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 16<<20)
		for sc.Scan() {
			var line struct {
				Port      int      `json:"port"`
				Applied   int      `json:"applied"`
				Accepted  any      `json:"accepted"`
				Failover  *string  `json:"failover"`
				Received  *int     `json:"received"`
				Failovers []string `json:"failovers"`
				Error     string   `json:"health_check_error"`
			}
			if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
				t.Errorf("octavia_glue.py listen: %q: %v", sc.Text(), err)
				continue
			}
			o.mu.Lock()
			switch {
			case line.Port != 0:
				port <- line.Port
			case line.Failover != nil:
				o.failovers = append(o.failovers, *line.Failover)
			case line.Received != nil:
				n, _ := line.Accepted.(float64)
				o.final = &octaviaFinal{Received: *line.Received, Accepted: int(n), Failovers: line.Failovers}
			case line.Error != "":
				t.Errorf("Octavia's health_check raised %s", line.Error)
			default:
				o.applied = line.Applied
				if line.Accepted == true {
					o.accepted++
				}
			}
			o.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		o.stdin.Close()
		select {
		case <-o.done:
		case <-time.After(20 * time.Second):
			_ = o.cmd.Process.Kill()
		}
		_ = o.cmd.Wait()
	})
	select {
	case p := <-port:
		o.addr = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(p))
	case <-o.done:
		t.Fatalf("octavia_glue.py listen exited at start:\n%s", tail(o.stderrText(), 4000))
	case <-time.After(60 * time.Second):
		t.Fatalf("octavia_glue.py listen did not start in 60 s:\n%s", tail(o.stderrText(), 4000))
	}
	return o
}

func (o *octaviaHM) stderrText() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.stderr.String()
}

// appliedCount is how many datagrams Octavia's side has received and
// applied (or dropped, as it drops them).
func (o *octaviaHM) appliedCount() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.applied
}

func (o *octaviaHM) claimed() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.failovers...)
}

// stop ends Octavia's manager and returns its own counts.
func (o *octaviaHM) stop() octaviaFinal {
	o.t.Helper()
	o.stdin.Close()
	select {
	case <-o.done:
	case <-time.After(30 * time.Second):
		o.t.Fatalf("octavia_glue.py listen did not stop:\n%s", tail(o.stderrText(), 4000))
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.final == nil {
		o.t.Fatalf("octavia_glue.py listen gave no final counts:\n%s", tail(o.stderr.String(), 4000))
	}
	return *o.final
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// ourHM is our octavia-health-manager serve.
type ourHM struct {
	t       testing.TB
	cmd     *exec.Cmd
	udp     netip.AddrPort
	metrics string
	exited  chan struct{}
	waitErr error

	mu  sync.Mutex
	log []string
}

var startedLine = regexp.MustCompile(`msg="health manager started" listen=(\S+) metrics=(\S+)`)

// startOurs runs serve on url; extra is appended to [health_manager].
// One socket and one worker open the datagrams, so that ours applies them
// in the order Octavia's single receiver does: with more, two amphorae of
// one load balancer heartbeating a moment apart may be applied in either
// order, the race Octavia's own process pool has, and the last one sets
// the statuses.
func startOurs(t testing.TB, dir, url, key string, heartbeatTimeout, healthCheckInterval int, extra string, args ...string) *ourHM {
	t.Helper()
	conf := filepath.Join(dir, "octavia.conf")
	text := fmt.Sprintf("[database]\nconnection = %s\n"+
		"[health_manager]\nheartbeat_key = %s\nbind_ip = 127.0.0.1\nbind_port = 0\nmetrics_bind = 127.0.0.1:0\n"+
		"heartbeat_timeout = %d\nhealth_check_interval = %d\nstats_flush_interval_ms = 100\nhealth_batch_wait_ms = 5\n"+
		"failover_driver = noop\nsock_rlimit = 8388608\nreceive_sockets = 1\nhealth_update_threads = 1\n%s\n"+
		"[controller_worker]\ncompute_driver = compute_noop_driver\nstatistics_drivers = stats_db\n",
		url, key, heartbeatTimeout, healthCheckInterval, extra)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	h := &ourHM{t: t, exited: make(chan struct{})}
	h.cmd = exec.Command(binary(t), append([]string{"--config-file", conf, "serve"}, args...)...)
	h.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, err := h.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	started := make(chan [2]string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			if m := startedLine.FindStringSubmatch(sc.Text()); m != nil {
				started <- [2]string{m[1], m[2]}
			}
			h.mu.Lock()
			h.log = append(h.log, sc.Text())
			h.mu.Unlock()
		}
	}()
	go func() {
		h.waitErr = h.cmd.Wait()
		close(h.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-h.exited:
		default:
			_ = h.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-h.exited:
			case <-time.After(20 * time.Second):
				_ = h.cmd.Process.Kill()
				<-h.exited
			}
		}
		if t.Failed() {
			t.Logf("our manager's log (last lines):\n%s", h.logTail(40))
		}
	})
	select {
	case a := <-started:
		h.udp = netip.MustParseAddrPort(a[0])
		h.metrics = "http://" + a[1] + "/metrics"
	case <-h.exited:
		t.Fatalf("serve exited at start: %v\n%s", h.waitErr, h.logTail(40))
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not start in 30 s\n%s", h.logTail(40))
	}
	return h
}

func (h *ourHM) logTail(n int) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	l := h.log
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// logLines are the kept log lines holding s.
func (h *ourHM) logLines(s string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, l := range h.log {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return out
}

// stop sends SIGTERM: serve applies what is queued and flushes statistics
// before it exits.
func (h *ourHM) stop() {
	h.t.Helper()
	_ = h.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-h.exited:
	case <-time.After(30 * time.Second):
		h.t.Fatalf("serve ignored SIGTERM for 30 s")
	}
	if h.waitErr != nil {
		h.t.Errorf("serve exit: %v\n%s", h.waitErr, h.logTail(20))
	}
}

// metric sums the series of name whose labels include labelPairs.
func (h *ourHM) metric(name string, labelPairs ...string) float64 {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, h.metrics, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		h.t.Fatalf("parse metrics: %v", err)
	}
	var sum float64
	fam := fams[name]
	if fam == nil {
		return 0
	}
series:
	for _, s := range fam.GetMetric() {
		for i := 0; i+1 < len(labelPairs); i += 2 {
			found := false
			for _, l := range s.GetLabel() {
				if l.GetName() == labelPairs[i] && l.GetValue() == labelPairs[i+1] {
					found = true
				}
			}
			if !found {
				continue series
			}
		}
		switch {
		case s.Counter != nil:
			sum += s.Counter.GetValue()
		case s.Gauge != nil:
			sum += s.Gauge.GetValue()
		}
	}
	return sum
}

func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sendRounds sends a scenario's datagrams to addr, one round of every
// amphora's heartbeat at a time, and after each round waits until
// Octavia's side has received and applied all that was sent: heartbeats
// come from amphorae every heartbeat_interval, not back to back.
func sendRounds(t testing.TB, s *scenario, rounds int, addr netip.AddrPort, oct *octaviaHM, between func(round int)) {
	t.Helper()
	conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	perRound := len(s.datagrams) / rounds
	for r := range rounds {
		for i, d := range s.datagrams[r*perRound : (r+1)*perRound] {
			if _, err := conn.Write(d); err != nil {
				t.Fatal(err)
			}
			if i%64 == 63 {
				// A burst no larger than the socket buffers hold.
				sent := r*perRound + i + 1
				waitFor(t, 60*time.Second, "Octavia to apply the burst", func() bool { return oct.appliedCount() >= sent-32 })
			}
		}
		sent := (r + 1) * perRound
		waitFor(t, 120*time.Second, fmt.Sprintf("Octavia to apply round %d (%d datagrams)", r+1, sent),
			func() bool { return oct.appliedCount() == sent })
		if between != nil {
			between(r)
		}
	}
}

// scenarioRounds is how many heartbeats of every amphora
// scenario.heartbeats generates.
const scenarioRounds = 4

// TestForwardingLive (PostgreSQL; the shadow tests count forwarding on
// MariaDB too) runs our serve with shadow_forward_to naming Octavia's
// manager (octavia_glue.py listen, live) and sends a scenario's datagrams
// to ours only. Every datagram must reach Octavia (counted on both sides:
// read and forwarded by ours, received by Octavia's), and the two
// databases, each fed live, must end with identical rows: the forwarded
// datagrams are the ones sent, byte for byte.
func TestForwardingLive(t *testing.T) {
	for _, b := range []backend{postgresBackend} {
		t.Run(b.name, func(t *testing.T) {
			s := newScenario(7, liveLBs)
			octURL, sides := b.databases(t)
			ourURL := sides[len(sides)-1].url
			for _, url := range []string{octURL, ourURL} {
				if err := s.insert(context.Background(), url); err != nil {
					t.Fatalf("insert topology: %v", err)
				}
			}
			start := time.Now()
			oct := startOctavia(t, octURL, s.key, 600, 60)
			ours := startOurs(t, t.TempDir(), ourURL, s.key, 600, 60, "shadow_forward_to = "+oct.addr.String())
			started := time.Since(start)
			sendRounds(t, s, scenarioRounds, ours.udp, oct, nil)
			n := float64(len(s.datagrams))
			waitFor(t, 30*time.Second, "ours to read every datagram", func() bool {
				return ours.metric("octavia_hm_datagrams_received_total") == n
			})
			forwarded := ours.metric("octavia_hm_shadow_forwarded_total")
			errs := ours.metric("octavia_hm_shadow_forward_errors_total")
			ours.stop()
			final := oct.stop()
			if forwarded != n || errs != 0 || final.Received != len(s.datagrams) {
				t.Errorf("sent %d datagrams; ours forwarded %v (%v errors); Octavia received %d", len(s.datagrams), forwarded, errs, final.Received)
			}
			d, excused := excuseRefusedStats(diff(snapshot(t, octURL), snapshot(t, ourURL)), ours)
			if len(d) > 0 {
				t.Errorf("%d rows differ between Octavia's database and ours (- Octavia only, + ours only):\n%s",
					len(d), strings.Join(d[:min(len(d), 40)], "\n"))
			}
			t.Logf("%s: %d datagrams sent to ours, %d forwarded, %d received and %d accepted by Octavia; %d statistics rows excused "+
				"(docs/deviations.md); both started in %s, total %s", b.name, len(s.datagrams), int(forwarded), final.Received,
				final.Accepted, excused, started.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
		})
	}
}

var refusedStats = regexp.MustCompile(`msg="listener statistics refused and dropped" listener_id=\S+ amphora_id=(\S+)`)

// excuseRefusedStats drops from d the listener_statistics rows of
// amphorae one of whose statistics rows serve refused: serve drops only
// that row, where Octavia loses the rest of the heartbeat's listeners
// too, a documented deviation (docs/deviations.md, "A row the database
// refuses"); replay, which TestDatabase compares, keeps Octavia's rule.
func excuseRefusedStats(d []string, ours *ourHM) (kept []string, excused int) {
	amps := map[string]bool{}
	for _, line := range ours.logLines("listener statistics refused and dropped") {
		if m := refusedStats.FindStringSubmatch(line); m != nil {
			id := m[1]
			if u, err := strconv.Unquote(id); err == nil {
				id = u
			}
			amps[id] = true
		}
	}
	for _, row := range d {
		if f := strings.Fields(row); len(f) > 2 && f[1] == "listener_statistics" {
			if _, amp, ok := strings.Cut(strings.SplitN(row, " ", 4)[2], "/"); ok && amps[amp] {
				excused++
				continue
			}
		}
		kept = append(kept, row)
	}
	return kept, excused
}

// liveLBs keeps the live runs short: Octavia applies a few hundred
// heartbeats a second.
const liveLBs = 20
