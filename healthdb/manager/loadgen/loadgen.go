// Package loadgen drives a running health manager with realistic V3
// heartbeats and reports what it applied, read from its /metrics.
package loadgen

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/octavia-vpp/health/heartbeat"
)

// Config describes a run.
type Config struct {
	Amphorae, Listeners, Pools, Members int
	// Rate is heartbeats per second; 0 sends as fast as possible.
	Rate     float64
	Duration time.Duration
	// Churn is the share of heartbeats that change a member's status.
	Churn float64
	// Target is the health manager's heartbeat address.
	Target string
	// MetricsURL is the health manager's /metrics.
	MetricsURL string
	Keyring    *heartbeat.Keyring
	// Sockets is how many source ports send (default 64).
	Sockets int
	// Progress receives seeding progress; nil is silent.
	Progress io.Writer
	// ProgressBar draws a bar (a terminal) instead of plain lines.
	ProgressBar bool
	// Watch names process trees (TreeCPU's roots, such as the health
	// manager's pid and PostgreSQL's postmaster) whose CPU time over the
	// run the report gives, per heartbeat applied.
	Watch map[string][]int
}

// Report is the run's one-line summary.
type Report struct {
	Amphorae    int     `json:"amphorae"`
	Sent        int64   `json:"sent"`
	SentPerS    float64 `json:"sent_per_s"`
	Applied     float64 `json:"applied"`
	AppliedPerS float64 `json:"applied_per_s"`
	P50ms       float64 `json:"p50_ms"`
	P99ms       float64 `json:"p99_ms"`
	Rejected    float64 `json:"rejected"`
	// Dropped counts heartbeats discarded from a full queue or as late;
	// Late is the second kind alone (Octavia's "processed too slowly").
	Dropped    float64 `json:"dropped"`
	Late       float64 `json:"late"`
	HMRSSBytes float64 `json:"hm_rss_bytes"`
	// Seconds is the measured window: sending, then waiting for the
	// health manager to finish what it queued.
	Seconds float64 `json:"seconds"`
	// LoadgenCPUSeconds is this process's own CPU time over the window,
	// sealing excluded (done once, before).
	LoadgenCPUSeconds        float64 `json:"loadgen_cpu_s"`
	LoadgenCPUusPerHeartbeat float64 `json:"loadgen_cpu_us_per_sent"`
	// CPUSeconds and CPUusPerHeartbeat give each of Config.Watch's trees'
	// CPU time over the window, in total and per heartbeat applied.
	CPUSeconds        map[string]float64 `json:"cpu_s,omitempty"`
	CPUusPerHeartbeat map[string]float64 `json:"cpu_us_per_applied,omitempty"`
}

// Validate checks the configuration and fills in defaults.
func (c *Config) Validate() error {
	switch {
	case c.Amphorae < 1 || c.Listeners < 1 || c.Pools < 0 || c.Members < 0:
		return errors.New("loadgen needs --amphorae and --listeners of at least 1, --pools and --members of at least 0")
	case c.Pools > c.Listeners:
		return errors.New("loadgen: --pools cannot exceed --listeners (each pool is a listener's default pool)")
	case c.Rate < 0 || c.Duration <= 0:
		return errors.New("loadgen needs --rate >= 0 and a positive --duration")
	case c.Churn < 0 || c.Churn > 1:
		return errors.New("loadgen: --churn is a fraction between 0 and 1")
	case c.Keyring == nil || c.Target == "":
		return errors.New("loadgen needs a key and a target")
	}
	if c.Sockets <= 0 {
		c.Sockets = 64
	}
	return nil
}

// ids are deterministic UUID-shaped ids, so that a seeded database and a
// later run agree without coordination.
func id(kind, a, b, c int) string {
	return fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", a, kind, b%0x1000, c%0x1000, uint64(a)<<16|uint64(b)<<8|uint64(c))
}

func amphoraID(a int) string         { return id(1, a, 0, 0) }
func lbID(a int) string              { return id(2, a, 0, 0) }
func listenerID(a, l int) string     { return id(3, a, l, 0) }
func poolID(a, p int) string         { return id(4, a, p, 0) }
func memberID(a, p, m int) string    { return id(5, a, p, m) }
func progressEvery(total int) int    { return max(total/20, 1) }
func (c *Config) members(p int) bool { return p < c.Pools }

// Seed creates the topology with COPY: one load balancer per amphora, with
// Listeners listeners, the first Pools of them with a default pool of
// Members members. Existing rows with these ids are not touched.
func Seed(ctx context.Context, pool *pgxpool.Pool, c *Config) error {
	for _, t := range seedTables(c) {
		rows := &copySource{rows: t.rows, total: c.Amphorae, table: t.name, cfg: c}
		if _, err := pool.CopyFrom(ctx, pgx.Identifier{t.name}, t.cols, rows); err != nil {
			return fmt.Errorf("seed %s: %w", t.name, err)
		}
		rows.done()
	}
	return nil
}

// SeedSQL creates Seed's topology through database/sql (MySQL, MariaDB),
// with multi-row INSERTs.
func SeedSQL(ctx context.Context, db *sql.DB, c *Config) error {
	const perInsert = 500
	for _, t := range seedTables(c) {
		src := &copySource{rows: t.rows, total: c.Amphorae, table: t.name, cfg: c}
		row := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(t.cols)), ", ") + ")"
		head := "INSERT INTO " + t.name + " (" + strings.Join(t.cols, ", ") + ") VALUES "
		var args []any
		n := 0
		flush := func() error {
			if n == 0 {
				return nil
			}
			q := head + strings.TrimSuffix(strings.Repeat(row+", ", n), ", ")
			_, err := db.ExecContext(ctx, q, args...)
			args, n = args[:0], 0
			return err
		}
		for src.Next() {
			args = append(args, src.cur...)
			if n++; n == perInsert {
				if err := flush(); err != nil {
					return fmt.Errorf("seed %s: %w", t.name, err)
				}
			}
		}
		if err := flush(); err != nil {
			return fmt.Errorf("seed %s: %w", t.name, err)
		}
		src.done()
	}
	return nil
}

type seedTable struct {
	name string
	cols []string
	rows func(a int) [][]any
}

func seedTables(c *Config) []seedTable {
	return []seedTable{
		{"load_balancer", []string{"id", "name", "provisioning_status", "operating_status", "enabled"},
			func(a int) [][]any { return [][]any{{lbID(a), "loadgen", "ACTIVE", "ONLINE", true}} }},
		{"amphora", []string{"id", "load_balancer_id", "status", "compute_id", "cert_busy", "role"},
			func(a int) [][]any {
				return [][]any{{amphoraID(a), lbID(a), "ALLOCATED", amphoraID(a), false, "STANDALONE"}}
			}},
		{"pool", []string{"id", "load_balancer_id", "protocol", "lb_algorithm", "operating_status", "enabled", "provisioning_status"},
			func(a int) [][]any {
				var rows [][]any
				for p := 0; p < c.Pools; p++ {
					rows = append(rows, []any{poolID(a, p), lbID(a), "HTTP", "ROUND_ROBIN", "ONLINE", true, "ACTIVE"})
				}
				return rows
			}},
		{"member", []string{"id", "pool_id", "ip_address", "protocol_port", "operating_status", "enabled", "provisioning_status", "backup"},
			func(a int) [][]any {
				var rows [][]any
				for p := 0; p < c.Pools; p++ {
					for m := 0; m < c.Members; m++ {
						rows = append(rows, []any{memberID(a, p, m), poolID(a, p), "192.0.2.1", 1024 + m, "ONLINE", true, "ACTIVE", false})
					}
				}
				return rows
			}},
		{"listener", []string{"id", "load_balancer_id", "protocol", "protocol_port", "provisioning_status", "operating_status", "enabled", "default_pool_id"},
			func(a int) [][]any {
				var rows [][]any
				for l := 0; l < c.Listeners; l++ {
					var defaultPool any
					if c.members(l) {
						defaultPool = poolID(a, l)
					}
					rows = append(rows, []any{listenerID(a, l), lbID(a), "HTTP", 80 + l, "ACTIVE", "ONLINE", true, defaultPool})
				}
				return rows
			}},
	}
}

// copySource streams rows to COPY amphora by amphora, reporting progress.
type copySource struct {
	rows    func(a int) [][]any
	total   int
	table   string
	cfg     *Config
	a       int
	pending [][]any
	cur     []any
}

func (s *copySource) Next() bool {
	for len(s.pending) == 0 {
		if s.a >= s.total {
			return false
		}
		s.pending = s.rows(s.a)
		s.a++
		if s.a%progressEvery(s.total) == 0 {
			s.progress()
		}
	}
	s.cur, s.pending = s.pending[0], s.pending[1:]
	return true
}

func (s *copySource) Values() ([]any, error) { return s.cur, nil }
func (s *copySource) Err() error             { return nil }

func (s *copySource) progress() {
	w := s.cfg.Progress
	if w == nil {
		return
	}
	pct := 100 * s.a / s.total
	if s.cfg.ProgressBar {
		bar := strings.Repeat("#", pct/5) + strings.Repeat(".", 20-pct/5)
		fmt.Fprintf(w, "\rseeding %-13s [%s] %3d%%", s.table, bar, pct)
		return
	}
	if pct%25 == 0 { // a log wants a few lines, not a bar's twenty
		fmt.Fprintf(w, "seeding %s: %d%% (%d of %d amphorae)\n", s.table, pct, s.a, s.total)
	}
}

func (s *copySource) done() {
	if s.cfg.Progress != nil && s.cfg.ProgressBar {
		fmt.Fprintln(s.cfg.Progress)
	}
}

// message is amphora a's V3 heartbeat; churn reports its first member DOWN.
func (c *Config) message(a int, seq int64, churn bool) *heartbeat.Message {
	m := &heartbeat.Message{AmphoraID: amphoraID(a), Seq: seq, HasSeq: true, Version: 3, HasVersion: true,
		Listeners: make([]heartbeat.Listener, 0, c.Listeners), Pools: make([]heartbeat.Pool, 0, c.Pools)}
	for l := 0; l < c.Listeners; l++ {
		m.Listeners = append(m.Listeners, heartbeat.Listener{ID: listenerID(a, l), Status: "OPEN", HasStats: true,
			Stats: heartbeat.Stats{TX: 1500, RX: 3000, Conns: 7, TotConns: 12, EReq: 0}})
		if !c.members(l) {
			continue
		}
		p := heartbeat.Pool{Key: poolID(a, l) + ":" + listenerID(a, l), Status: "UP", Members: make([]heartbeat.Member, 0, c.Members)}
		for k := 0; k < c.Members; k++ {
			status := "UP"
			if churn && l == 0 && k == 0 {
				status = "DOWN"
			}
			p.Members = append(p.Members, heartbeat.Member{ID: memberID(a, l, k), Status: status})
		}
		m.Pools = append(m.Pools, p)
	}
	return m
}

// datagrams seals each amphora's steady and churned heartbeat once, on
// every core: sealing at zlib level 9 costs tens of microseconds, too much
// to do per send at high rates.
func (c *Config) datagrams() (steady, churned [][]byte) {
	steady, churned = make([][]byte, c.Amphorae), make([][]byte, c.Amphorae)
	var wg sync.WaitGroup
	workers := runtime.NumCPU()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for a := w; a < c.Amphorae; a += workers {
				steady[a] = c.Keyring.SealMessage(c.message(a, int64(a), false))
				if c.Churn > 0 {
					churned[a] = c.Keyring.SealMessage(c.message(a, int64(a), true))
				}
			}
		}(w)
	}
	wg.Wait()
	return steady, churned
}

// Run sends heartbeats for c.Duration and returns the report. Amphorae
// take turns, so each heartbeats every Amphorae/Rate seconds.
func Run(ctx context.Context, c *Config) (*Report, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	before, err := scrape(ctx, c.MetricsURL)
	if err != nil {
		return nil, err
	}
	steady, churned := c.datagrams()
	writers := make([]*batchWriter, 0, c.Sockets)
	for i := 0; i < c.Sockets; i++ {
		addr, err := net.ResolveUDPAddr("udp", c.Target)
		if err != nil {
			return nil, fmt.Errorf("loadgen: target %s: %w", c.Target, err)
		}
		conn, err := net.DialUDP("udp", nil, addr)
		if err != nil {
			return nil, fmt.Errorf("loadgen: dial %s: %w", c.Target, err)
		}
		defer conn.Close()
		w, err := newBatchWriter(conn)
		if err != nil {
			return nil, fmt.Errorf("loadgen: %w", err)
		}
		writers = append(writers, w)
	}
	r := rand.New(rand.NewPCG(1, 2))
	datagram := func(n int64) []byte {
		a := int(n % int64(c.Amphorae))
		// Churned heartbeats only in every other round, so that a member
		// that went DOWN comes back UP in the next one.
		if c.Churn > 0 && (n/int64(c.Amphorae))%2 == 0 && r.Float64() < c.Churn {
			return churned[a]
		}
		return steady[a]
	}
	batch := make([][]byte, 0, maxBatch)
	cpu0, err := c.watchedCPU()
	if err != nil {
		return nil, err
	}
	self0 := processCPU()
	start := time.Now()
	var sent, batches int64
	// Wake up about once per half batch due, between 1 and 10 ms: at a
	// few thousand heartbeats a second, a wake-up per millisecond with a
	// datagram or two to send cost the load generator more than sending.
	tick := time.Millisecond
	if c.Rate > 0 {
		tick = min(max(time.Duration(float64(maxBatch/2)/c.Rate*float64(time.Second)), time.Millisecond), 10*time.Millisecond)
	}
	for ctx.Err() == nil {
		elapsed := time.Since(start)
		if elapsed >= c.Duration {
			break
		}
		due := int64(math.MaxInt64)
		if c.Rate > 0 {
			due = int64(c.Rate*elapsed.Seconds()) + 1
		}
		// Send what the rate allows so far, in batches of up to maxBatch
		// from one source port, each socket in turn, looking at the clock
		// again at least every 4,096 sends.
		for n := 0; sent < due && n < 4096; {
			batch = batch[:0]
			for ; sent < due && len(batch) < maxBatch; sent++ {
				batch = append(batch, datagram(sent))
			}
			n += len(batch)
			writers[batches%int64(len(writers))].write(batch)
			batches++
		}
		if sent >= due {
			time.Sleep(tick)
		}
	}
	elapsed := time.Since(start)
	// Let the health manager finish what it has queued.
	var after map[string]*dto.MetricFamily
	settle := time.Now()
	for {
		if after, err = scrape(ctx, c.MetricsURL); err != nil {
			return nil, err
		}
		done := counterSum(after, "octavia_hm_heartbeats_applied_total") + counterSum(after, "octavia_hm_heartbeats_rejected_total") +
			counterSum(after, "octavia_hm_queue_dropped_total")
		doneBefore := counterSum(before, "octavia_hm_heartbeats_applied_total") + counterSum(before, "octavia_hm_heartbeats_rejected_total") +
			counterSum(before, "octavia_hm_queue_dropped_total")
		if done-doneBefore >= float64(sent) || time.Since(settle) > 5*time.Second {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	rep := &Report{
		Amphorae: c.Amphorae, Sent: sent, SentPerS: float64(sent) / elapsed.Seconds(),
		Applied:    counterSum(after, "octavia_hm_heartbeats_applied_total") - counterSum(before, "octavia_hm_heartbeats_applied_total"),
		Rejected:   counterSum(after, "octavia_hm_heartbeats_rejected_total") - counterSum(before, "octavia_hm_heartbeats_rejected_total"),
		Dropped:    counterSum(after, "octavia_hm_queue_dropped_total") - counterSum(before, "octavia_hm_queue_dropped_total"),
		HMRSSBytes: gauge(after, "process_resident_memory_bytes"),
	}
	window := time.Since(start)
	self := processCPU() - self0
	cpu1, err := c.watchedCPU()
	if err != nil {
		return nil, err
	}
	rep.Seconds = window.Seconds()
	rep.LoadgenCPUSeconds = self
	if sent > 0 {
		rep.LoadgenCPUusPerHeartbeat = self * 1e6 / float64(sent)
	}
	if len(c.Watch) > 0 {
		rep.CPUSeconds, rep.CPUusPerHeartbeat = map[string]float64{}, map[string]float64{}
		for name := range c.Watch {
			rep.CPUSeconds[name] = cpu1[name] - cpu0[name]
			if rep.Applied > 0 {
				rep.CPUusPerHeartbeat[name] = rep.CPUSeconds[name] * 1e6 / rep.Applied
			}
		}
	}
	rep.Late = outcome(after, "too_late") - outcome(before, "too_late")
	rep.Dropped += rep.Late
	rep.AppliedPerS = rep.Applied / elapsed.Seconds()
	rep.P50ms, rep.P99ms = quantiles(before, after)
	return rep, nil
}

// maxBatch is the most datagrams one sendmmsg call sends.
const maxBatch = 64

// watchedCPU reads the CPU time of each of c.Watch's process trees.
func (c *Config) watchedCPU() (map[string]float64, error) {
	out := make(map[string]float64, len(c.Watch))
	for name, roots := range c.Watch {
		cpu, err := TreeCPU(roots)
		if err != nil {
			return nil, fmt.Errorf("loadgen: CPU time of %s: %w", name, err)
		}
		out[name] = cpu
	}
	return out, nil
}

func scrape(ctx context.Context, url string) (map[string]*dto.MetricFamily, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("loadgen: metrics URL %s: %w", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("loadgen: read the health manager's metrics at %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("loadgen: %s answered %s", url, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("loadgen: parse %s: %w", url, err)
	}
	return families, nil
}

func counterSum(f map[string]*dto.MetricFamily, name string) float64 {
	var sum float64
	if fam := f[name]; fam != nil {
		for _, m := range fam.GetMetric() {
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

func outcome(f map[string]*dto.MetricFamily, value string) float64 {
	if fam := f["octavia_hm_heartbeats_applied_total"]; fam != nil {
		for _, m := range fam.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func gauge(f map[string]*dto.MetricFamily, name string) float64 {
	if fam := f[name]; fam != nil && len(fam.GetMetric()) > 0 {
		return fam.GetMetric()[0].GetGauge().GetValue()
	}
	return 0
}

// quantiles interpolates p50 and p99, in milliseconds, from the change in
// the receive-to-commit histogram over the run.
func quantiles(before, after map[string]*dto.MetricFamily) (p50, p99 float64) {
	const name = "octavia_hm_receive_to_commit_seconds"
	hist := func(f map[string]*dto.MetricFamily) *dto.Histogram {
		if fam := f[name]; fam != nil && len(fam.GetMetric()) > 0 {
			return fam.GetMetric()[0].GetHistogram()
		}
		return nil
	}
	b, a := hist(before), hist(after)
	if a == nil {
		return 0, 0
	}
	type bucket struct{ le, count float64 }
	var buckets []bucket
	for i, ab := range a.GetBucket() {
		n := float64(ab.GetCumulativeCount())
		if b != nil && i < len(b.GetBucket()) {
			n -= float64(b.GetBucket()[i].GetCumulativeCount())
		}
		buckets = append(buckets, bucket{ab.GetUpperBound(), n})
	}
	total := float64(a.GetSampleCount())
	if b != nil {
		total -= float64(b.GetSampleCount())
	}
	sort.Slice(buckets, func(i, j int) bool { return buckets[i].le < buckets[j].le })
	q := func(p float64) float64 {
		if total <= 0 {
			return 0
		}
		rank, prevLE, prevCount := p*total, 0.0, 0.0
		for _, bk := range buckets {
			if bk.count >= rank {
				if bk.count == prevCount {
					return bk.le * 1000
				}
				return 1000 * (prevLE + (bk.le-prevLE)*(rank-prevCount)/(bk.count-prevCount))
			}
			prevLE, prevCount = bk.le, bk.count
		}
		return prevLE * 1000 // beyond the last bucket
	}
	return q(0.50), q(0.99)
}
