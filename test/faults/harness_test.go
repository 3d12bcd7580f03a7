//go:build faults

package faults

import (
	"bufio"
	"context"
	"fmt"
	"math"
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
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/octavia-vpp/health/healthdb/failover/failovertest"
	"github.com/octavia-vpp/health/healthdb/manager/loadgen"
	"github.com/octavia-vpp/health/heartbeat"
)

const heartbeatKey = "faults-heartbeat-key"

// Timing shared by the scenarios: amphorae heartbeat every second, a row
// is stale after heartbeat_timeout (also the start-up grace), and the
// watcher checks every health_check_interval.
const (
	heartbeatPeriod     = time.Second
	heartbeatTimeout    = 5 * time.Second
	healthCheckInterval = time.Second
)

// hmConfig is what a scenario varies in a manager's octavia.conf.
type hmConfig struct {
	database string
	fake     *failovertest.Fake
	// udpPort 0 lets the manager pick one.
	udpPort int
	// failoverThreshold 0 leaves failover_threshold unset.
	failoverThreshold int
	// extra is appended to [health_manager].
	extra string
}

func writeConfig(t *testing.T, c hmConfig) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "[DEFAULT]\n[database]\nconnection = %s\n", c.database)
	fmt.Fprintf(&b, "[health_manager]\nheartbeat_key = %s\nbind_ip = 127.0.0.1\nbind_port = %d\n", heartbeatKey, c.udpPort)
	fmt.Fprintf(&b, "metrics_bind = 127.0.0.1:0\nheartbeat_timeout = %d\nhealth_check_interval = %d\nheartbeat_interval = %d\n",
		int(heartbeatTimeout.Seconds()), int(healthCheckInterval.Seconds()), int(heartbeatPeriod.Seconds()))
	b.WriteString("stats_flush_interval_ms = 200\nfailover_driver = octavia_api\n")
	if c.failoverThreshold > 0 {
		fmt.Fprintf(&b, "failover_threshold = %d\n", c.failoverThreshold)
	}
	b.WriteString(c.extra)
	b.WriteString("\n[controller_worker]\ncompute_driver = compute_noop_driver\n")
	b.WriteString(c.fake.ServiceAuthSection())
	path := filepath.Join(t.TempDir(), "octavia.conf")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// freeUDPPort finds a port a restarted manager can bind again. Another
// process could take it in between; nothing else on a test machine binds
// random high UDP ports in practice.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// hmProcess is one running octavia-health-manager serve.
type hmProcess struct {
	t       *testing.T
	name    string
	cmd     *exec.Cmd
	udp     netip.AddrPort
	metrics string
	exited  chan struct{}
	waitErr error

	mu  sync.Mutex
	log []string
}

var startedLine = regexp.MustCompile(`msg="health manager started" listen=(\S+) metrics=(\S+)`)

// startHM starts a manager and waits until it listens.
func startHM(t *testing.T, name, conf string) *hmProcess {
	t.Helper()
	h := &hmProcess{t: t, name: name, exited: make(chan struct{})}
	h.cmd = exec.Command(hmBinary, "--config-file", conf, "serve")
	stderr, err := h.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	h.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := h.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	started := make(chan [2]string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if m := startedLine.FindStringSubmatch(line); m != nil {
				started <- [2]string{m[1], m[2]}
			}
			h.mu.Lock()
			// Keep the first lines and the latest ones: an outage logs a
			// line per failed batch.
			if len(h.log) >= 4000 {
				h.log = append(h.log[:1000], h.log[2000:]...)
			}
			h.log = append(h.log, line)
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
			t.Logf("%s log (last lines):\n%s", h.name, h.logTail(40))
		}
	})
	select {
	case addrs := <-started:
		if h.udp, err = netip.ParseAddrPort(addrs[0]); err != nil {
			t.Fatalf("%s listens on %q: %v", name, addrs[0], err)
		}
		h.metrics = "http://" + addrs[1] + "/metrics"
	case <-h.exited:
		t.Fatalf("%s exited at start: %v\n%s", name, h.waitErr, h.logTail(40))
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not start in 30 s\n%s", name, h.logTail(40))
	}
	return h
}

func (h *hmProcess) logTail(n int) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	lines := h.log
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// logContains reports whether any kept log line holds s.
func (h *hmProcess) logContains(s string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, l := range h.log {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

func (h *hmProcess) running() bool {
	select {
	case <-h.exited:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL: no drain, no flush, no release of claims.
func (h *hmProcess) kill() {
	h.t.Helper()
	_ = h.cmd.Process.Kill()
	<-h.exited
}

// stop sends SIGTERM and expects a clean exit.
func (h *hmProcess) stop() {
	h.t.Helper()
	_ = h.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-h.exited:
	case <-time.After(30 * time.Second):
		h.t.Fatalf("%s ignored SIGTERM for 30 s", h.name)
	}
	if h.waitErr != nil {
		h.t.Errorf("%s exit: %v\n%s", h.name, h.waitErr, h.logTail(20))
	}
}

// peakRSS is the process's resident-set high-water mark (VmHWM), in bytes.
func (h *hmProcess) peakRSS() int64 {
	h.t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", h.cmd.Process.Pid))
	if err != nil {
		h.t.Fatalf("read %s's status: %v", h.name, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				h.t.Fatalf("VmHWM %q: %v", rest, err)
			}
			return kb << 10
		}
	}
	h.t.Fatalf("no VmHWM in /proc/%d/status", h.cmd.Process.Pid)
	return 0
}

// scrape reads the manager's /metrics.
func (h *hmProcess) scrape() metrics {
	h.t.Helper()
	m, err := scrapeURL(h.metrics)
	if err != nil {
		h.t.Fatalf("%s: %v", h.name, err)
	}
	return m
}

func scrapeURL(url string) (metrics, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s answered %s", url, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", url, err)
	}
	return families, nil
}

type metrics map[string]*dto.MetricFamily

// get sums the series of name whose labels include labelPairs (name,
// value, name, value...).
func (m metrics) get(name string, labelPairs ...string) float64 {
	fam := m[name]
	if fam == nil {
		return 0
	}
	var sum float64
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
			sum += s.GetCounter().GetValue()
		case s.Gauge != nil:
			sum += s.GetGauge().GetValue()
		case s.Untyped != nil:
			sum += s.GetUntyped().GetValue()
		}
	}
	return sum
}

// mean is a histogram's sum over its count.
func (m metrics) mean(name string) float64 {
	fam := m[name]
	if fam == nil || len(fam.GetMetric()) == 0 {
		return 0
	}
	h := fam.GetMetric()[0].GetHistogram()
	if h.GetSampleCount() == 0 {
		return 0
	}
	return h.GetSampleSum() / float64(h.GetSampleCount())
}

// byLabel lists name's series as label=value, for figures and messages.
func (m metrics) byLabel(name, label string) string {
	fam := m[name]
	if fam == nil {
		return ""
	}
	var parts []string
	for _, s := range fam.GetMetric() {
		var v float64
		if s.Counter != nil {
			v = s.GetCounter().GetValue()
		} else {
			v = s.GetGauge().GetValue()
		}
		if v == 0 {
			continue
		}
		for _, l := range s.GetLabel() {
			if l.GetName() == label {
				parts = append(parts, fmt.Sprintf("%s:%.0f", l.GetValue(), v))
			}
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ",")
}

// waitUntil polls cond every 100 ms until it holds or timeout passes.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// db runs the scenario's own queries on a fresh connection each time, so
// that they work across an outage.
type db struct {
	t   *testing.T
	url string
}

// mysql tells that url is a go-sql-driver DSN of a MariaDB database (it
// has no scheme), and that the queries are written in its dialect.
func (d db) mysql() bool { return !strings.Contains(d.url, "://") }

func (d db) query(sql string, args []any, dest ...any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if d.mysql() {
		return d.queryMySQL(ctx, sql, args, dest...)
	}
	conn, err := pgx.Connect(ctx, d.url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	return conn.QueryRow(ctx, sql, args...).Scan(dest...)
}

func (d db) mustQuery(sql string, args []any, dest ...any) {
	d.t.Helper()
	if err := d.query(sql, args, dest...); err != nil {
		d.t.Fatalf("%s: %v", sql, err)
	}
}

// statsSums are listener_statistics' delta columns summed over every row.
type statsSums struct{ bytesIn, bytesOut, totalConns, requestErrors int64 }

func (d db) stats() statsSums {
	d.t.Helper()
	var s statsSums
	q := `SELECT COALESCE(sum(bytes_in), 0)::bigint, COALESCE(sum(bytes_out), 0)::bigint,
		COALESCE(sum(total_connections), 0)::bigint, COALESCE(sum(request_errors), 0)::bigint
		FROM listener_statistics`
	if d.mysql() {
		q = `SELECT CAST(COALESCE(sum(bytes_in), 0) AS SIGNED), CAST(COALESCE(sum(bytes_out), 0) AS SIGNED),
		CAST(COALESCE(sum(total_connections), 0) AS SIGNED), CAST(COALESCE(sum(request_errors), 0) AS SIGNED)
		FROM listener_statistics`
	}
	d.mustQuery(q, nil, &s.bytesIn, &s.bytesOut, &s.totalConns, &s.requestErrors)
	return s
}

// healthRows counts amphora_health rows, and those written after since.
func (d db) healthRows(since time.Time) (rows, fresh int) {
	d.t.Helper()
	if d.mysql() {
		// last_update is a whole-second DATETIME there: a row written in
		// the second since falls in counts.
		d.mustQuery(`SELECT count(*), CAST(COALESCE(SUM(last_update >= ?), 0) AS SIGNED) FROM amphora_health`,
			[]any{since.UTC().Truncate(time.Second)}, &rows, &fresh)
		return rows, fresh
	}
	d.mustQuery(`SELECT count(*), count(*) FILTER (WHERE last_update > $1::timestamp) FROM amphora_health`,
		[]any{since.UTC()}, &rows, &fresh)
	return rows, fresh
}

// staleRows counts rows the watcher would call stale now, on the
// database's clock as the watcher judges them.
func (d db) staleRows() int {
	d.t.Helper()
	var n int
	if d.mysql() {
		d.mustQuery(`SELECT count(*) FROM amphora_health WHERE NOT busy AND last_update < UTC_TIMESTAMP(6) - INTERVAL ? MICROSECOND`,
			[]any{heartbeatTimeout.Microseconds()}, &n)
		return n
	}
	d.mustQuery(`SELECT count(*) FROM amphora_health WHERE NOT busy AND last_update < (now() AT TIME ZONE 'UTC') - $1::interval`,
		[]any{heartbeatTimeout}, &n)
	return n
}

func (d db) amphoraeWithStatus(status string) int {
	d.t.Helper()
	var n int
	q := `SELECT count(*) FROM amphora WHERE status = $1`
	if d.mysql() {
		q = `SELECT count(*) FROM amphora WHERE status = ?`
	}
	d.mustQuery(q, []any{status}, &n)
	return n
}

// fleet is a set of simulated amphorae sending V3 heartbeats every
// heartbeatPeriod, spread evenly over the period. Amphora a's k-th
// heartbeat goes to target (a+k) mod the number of targets, so with several
// managers every amphora round-robins across them.
type fleet struct {
	t         *testing.T
	n         int
	listeners int
	delta     heartbeat.Stats
	datagrams [][]byte
	socks     []*net.UDPConn

	mu      sync.Mutex
	targets []netip.AddrPort

	silent []atomic.Bool
	sent   []atomic.Int64
	// burst sends every amphora at once, at the start of each period,
	// instead of spreading them over it.
	burst  atomic.Bool
	cancel context.CancelFunc
	done   chan struct{}
}

// newFleet seeds n amphorae (one load balancer each, two listeners, one
// pool of three members) into the database at url.
func newFleet(t *testing.T, url string, n int) *fleet {
	t.Helper()
	return newFleetOn(t, db{t: t, url: url}, n)
}

// newFleetOn is newFleet on the database of d, PostgreSQL or MariaDB.
func newFleetOn(t *testing.T, d db, n int) *fleet {
	t.Helper()
	ctx := context.Background()
	kr, err := heartbeat.NewKeyring(heartbeat.KeyringConfig{Keys: []string{heartbeatKey}})
	if err != nil {
		t.Fatal(err)
	}
	lc := &loadgen.Config{Amphorae: n, Listeners: 2, Pools: 1, Members: 3}
	if d.mysql() {
		err = d.seedMySQL(ctx, lc)
	} else {
		var pool *pgxpool.Pool
		if pool, err = pgxpool.New(ctx, d.url); err != nil {
			t.Fatal(err)
		}
		err = loadgen.Seed(ctx, pool, lc)
		pool.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	f := &fleet{t: t, n: n, listeners: lc.Listeners, datagrams: make([][]byte, n),
		silent: make([]atomic.Bool, n), sent: make([]atomic.Int64, n)}
	for a := 0; a < n; a++ {
		m := lc.Message(a, int64(a))
		f.delta = m.Listeners[0].Stats
		f.datagrams[a] = kr.SealMessage(m)
	}
	// Unconnected sockets: a manager that is down must not turn later
	// sends into ECONNREFUSED errors.
	for i := 0; i < 4; i++ {
		s, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		f.socks = append(f.socks, s)
	}
	t.Cleanup(func() {
		f.stop()
		for _, s := range f.socks {
			s.Close()
		}
	})
	return f
}

func (f *fleet) setTargets(targets ...netip.AddrPort) {
	f.mu.Lock()
	f.targets = targets
	f.mu.Unlock()
}

func (f *fleet) start() {
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel, f.done = cancel, make(chan struct{})
	const slices = 20
	go func() {
		defer close(f.done)
		tick := time.NewTicker(heartbeatPeriod / slices)
		defer tick.Stop()
		for slice := 0; ; slice = (slice + 1) % slices {
			f.mu.Lock()
			targets := f.targets
			f.mu.Unlock()
			first, step := slice, slices
			if f.burst.Load() {
				first, step = 0, 1
				if slice != 0 {
					first = f.n // nothing in this slice
				}
			}
			for a := first; a < f.n; a += step {
				if f.silent[a].Load() {
					continue
				}
				k := f.sent[a].Load()
				to := targets[(int64(a)+k)%int64(len(targets))]
				if _, err := f.socks[a%len(f.socks)].WriteToUDPAddrPort(f.datagrams[a], to); err != nil {
					f.t.Errorf("send a heartbeat: %v", err)
					return
				}
				f.sent[a].Add(1)
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
}

// stop ends sending and waits for the sender to return.
func (f *fleet) stop() {
	if f.cancel != nil {
		f.cancel()
		<-f.done
		f.cancel = nil
	}
}

func (f *fleet) silence(a int, on bool) { f.silent[a].Store(on) }

func (f *fleet) totalSent() int64 {
	var n int64
	for a := range f.sent {
		n += f.sent[a].Load()
	}
	return n
}

// expected is what heartbeats heartbeats must add to listener_statistics.
func (f *fleet) expected(heartbeats int64) statsSums {
	per := heartbeats * int64(f.listeners)
	return statsSums{bytesIn: per * f.delta.RX, bytesOut: per * f.delta.TX,
		totalConns: per * f.delta.TotConns, requestErrors: per * f.delta.EReq}
}

// heartbeatsIn is how many heartbeats' deltas bytes_in holds.
func (f *fleet) heartbeatsIn(s statsSums) float64 {
	return float64(s.bytesIn) / float64(int64(f.listeners)*f.delta.RX)
}

// fault prints a scenario's figures on one line, for docs/reliability.md.
func fault(t *testing.T, scenario string, figures ...any) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "FAULTS %s:", scenario)
	for i := 0; i+1 < len(figures); i += 2 {
		switch v := figures[i+1].(type) {
		case float64:
			if v == math.Trunc(v) {
				fmt.Fprintf(&b, " %s=%.0f", figures[i], v)
			} else {
				fmt.Fprintf(&b, " %s=%.2f", figures[i], v)
			}
		default:
			fmt.Fprintf(&b, " %s=%v", figures[i], v)
		}
	}
	// Printed, not logged: go test -v shows it whether the test passes or
	// fails, and grep finds it at the start of a line.
	fmt.Println(b.String())
}
