package shadow

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/octavia-vpp/health/healthdb"
	"github.com/octavia-vpp/health/heartbeat"
)

// Reader is what the shadow reads of the database; it never writes.
// pgstore, mysqlstore and memstore implement it.
type Reader interface {
	LoadTopologies(ctx context.Context, amphoraIDs []string) (map[string]*healthdb.Topology, error)
	HealthReader
	StatsReader
}

// HealthReader reads amphora_health.
type HealthReader interface {
	// ReadAmphoraHealth returns the amphora_health rows of the given
	// amphorae (all rows when ids is nil) and the database's time.
	ReadAmphoraHealth(ctx context.Context, amphoraIDs []string) ([]healthdb.AmphoraHealthRow, time.Time, error)
}

// StatsReader reads listener_statistics.
type StatsReader interface {
	// ReadListenerStatistics returns the rows of the given amphorae.
	ReadListenerStatistics(ctx context.Context, amphoraIDs []string) ([]healthdb.ListenerStatsRow, error)
}

// DecideFunc is the status procedure; tests substitute one with a rule
// changed, to see the shadow report it.
type DecideFunc func(*healthdb.Topology, *heartbeat.Message, time.Time, healthdb.Rules) healthdb.Decision

// Heartbeat is a verified heartbeat with the datagram it came in.
type Heartbeat struct {
	Msg      *heartbeat.Message
	Datagram []byte
	From     netip.AddrPort
}

// Config configures a Shadow.
type Config struct {
	Reader   Reader
	Rules    healthdb.Rules
	Failover FailoverRules
	// Decide defaults to healthdb.Decide.
	Decide DecideFunc
	// File is the disagreement file; empty keeps them in memory only.
	File string
	// Metrics may be nil (unregistered counters).
	Metrics *Metrics
	Logger  *slog.Logger
	// LastUpdateResolution is amphora_health.last_update's resolution
	// (Comparator.LastUpdateResolution): a second on MySQL.
	LastUpdateResolution time.Duration
	// Now is the clock Decide judges lateness by; nil means time.Now.
	Now func() time.Time
}

// Metrics are the shadow's counters.
type Metrics struct {
	Disagreements *prometheus.CounterVec
	Compared      prometheus.Counter
	ReadErrors    prometheus.Counter
}

// NewMetrics registers the shadow's metrics on reg (nil: unregistered),
// every kind at 0.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Disagreements: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "octavia_hm_shadow_disagreements_total",
			Help: "Decisions of the shadow that Octavia's health manager did not make, by kind (docs/shadow.md)."}, []string{"kind"}),
		Compared: prometheus.NewCounter(prometheus.CounterOpts{Name: "octavia_hm_shadow_heartbeats_compared_total",
			Help: "Heartbeats the shadow decided on and compared with the database."}),
		ReadErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "octavia_hm_shadow_read_errors_total",
			Help: "Database reads of the shadow that failed; their heartbeat or poll was not compared."}),
	}
	for _, k := range Kinds {
		m.Disagreements.WithLabelValues(string(k))
	}
	if reg != nil {
		reg.MustRegister(m.Disagreements, m.Compared, m.ReadErrors)
	}
	return m
}

// Shadow decides on heartbeats as serve would, writes nothing, and
// compares its decisions with the database.
type Shadow struct {
	cfg     Config
	log     *slog.Logger
	metrics *Metrics

	mu   sync.Mutex // guards cmp
	cmp  *Comparator
	file *Log
}

// New checks the configuration; it loads the disagreement file when it
// exists.
func New(cfg Config) (*Shadow, error) {
	if cfg.Reader == nil {
		return nil, errors.New("shadow: a reader is needed")
	}
	if cfg.Decide == nil {
		cfg.Decide = healthdb.Decide
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rules.HeartbeatInterval <= 0 {
		return nil, errors.New("shadow: heartbeat_interval must be positive")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	metrics := cfg.Metrics
	if metrics == nil {
		metrics = NewMetrics(nil)
	}
	file, err := OpenLog(cfg.File, MaxKept)
	if err != nil {
		return nil, err
	}
	cmp := NewComparator()
	cmp.LastUpdateResolution = cfg.LastUpdateResolution
	return &Shadow{cfg: cfg, log: log, metrics: metrics, cmp: cmp, file: file}, nil
}

// Recent returns the kept disagreements, newest last.
func (s *Shadow) Recent() []Disagreement { return s.file.Recent() }

// Counts returns the disagreements counted by kind since start.
func (s *Shadow) Counts() map[Kind]int { return s.file.Counts() }

// maxBatch bounds the heartbeats decided on with one set of reads.
const maxBatch = 256

// Run decides on the heartbeats from in, those waiting read together, and
// applies the stale-amphora rules every health_check_interval, until ctx
// ends or in closes.
func (s *Shadow) Run(ctx context.Context, in <-chan Heartbeat) {
	interval := s.cfg.Failover.HealthCheckInterval
	if interval <= 0 {
		interval = 3 * time.Second
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	batch := make([]Heartbeat, 0, maxBatch)
	var next *Heartbeat // held back: its amphora is already in the batch
	for {
		batch = batch[:0]
		if next != nil {
			batch = append(batch, *next)
			next = nil
		} else {
			select {
			case <-ctx.Done():
				return
			case hb, ok := <-in:
				if !ok {
					return
				}
				batch = append(batch, hb)
			case <-tick.C:
				if err := s.Poll(ctx); err != nil {
					s.log.Warn("shadow: stale-amphora rules not compared", "err", err)
				}
				continue
			}
		}
		// Heartbeats already waiting join the batch; one amphora's
		// second heartbeat must see the database after its first.
		seen := map[string]bool{batch[0].Msg.AmphoraID: true}
	fill:
		for len(batch) < maxBatch {
			select {
			case hb, ok := <-in:
				if !ok {
					break fill
				}
				if seen[hb.Msg.AmphoraID] {
					next = &hb
					break fill
				}
				seen[hb.Msg.AmphoraID] = true
				batch = append(batch, hb)
			default:
				break fill
			}
		}
		if err := s.Heartbeats(ctx, batch); err != nil {
			s.log.Warn("shadow: heartbeats not compared", "heartbeats", len(batch), "err", err)
		}
	}
}

// Heartbeat reads the amphora's rows, decides as serve would, and
// compares.
func (s *Shadow) Heartbeat(ctx context.Context, hb Heartbeat) error {
	return s.Heartbeats(ctx, []Heartbeat{hb})
}

// Heartbeats decides on heartbeats of distinct amphorae with one set of
// reads, and compares each.
func (s *Shadow) Heartbeats(ctx context.Context, hbs []Heartbeat) error {
	ids := make([]string, len(hbs))
	for i, hb := range hbs {
		ids[i] = hb.Msg.AmphoraID
	}
	topos, err := s.cfg.Reader.LoadTopologies(ctx, ids)
	if err != nil {
		s.metrics.ReadErrors.Inc()
		return err
	}
	rows, _, err := s.cfg.Reader.ReadAmphoraHealth(ctx, ids)
	if err != nil {
		s.metrics.ReadErrors.Inc()
		return err
	}
	stats, err := s.cfg.Reader.ReadListenerStatistics(ctx, ids)
	if err != nil {
		s.metrics.ReadErrors.Inc()
		return err
	}
	health := make(map[string]*healthdb.AmphoraHealthRow, len(rows))
	for i := range rows {
		health[rows[i].AmphoraID] = &rows[i]
	}
	byAmphora := map[string]map[string]Counters{}
	for _, r := range stats {
		if byAmphora[r.AmphoraID] == nil {
			byAmphora[r.AmphoraID] = map[string]Counters{}
		}
		byAmphora[r.AmphoraID][r.ListenerID] = Counters{r.BytesIn, r.BytesOut, r.TotalConns, r.RequestErrors}
	}
	now := s.cfg.Now()
	for _, hb := range hbs {
		msg := hb.Msg
		id := msg.AmphoraID
		topo := topos[id]
		if topo == nil {
			topo = &healthdb.Topology{AmphoraID: id}
		}
		// Decided as of the heartbeat's arrival: the shadow's own queueing
		// delay is not Octavia's, and must not make a heartbeat late.
		at := msg.RecvTime
		if at.IsZero() {
			at = now
		}
		d := s.cfg.Decide(topo, msg, at, s.cfg.Rules)
		o := Observation{AmphoraID: id, Time: now, Topology: topo, Decision: d, Seq: msg.Seq, HasSeq: msg.HasSeq,
			Health: health[id], Stats: byAmphora[id], Deltas: map[string]Counters{}, Cause: causeOf(hb)}
		if o.Stats == nil {
			o.Stats = map[string]Counters{}
		}
		odd := false // Octavia's statistics path fails on the message, part-way
		for i := range msg.Listeners {
			l := &msg.Listeners[i]
			if !l.HasStats || l.NotObject || l.StatsUnwritable != "" || l.IDLoneSurrogate {
				odd = true
			}
			o.Deltas[l.ID] = Counters{l.Stats.RX, l.Stats.TX, l.Stats.TotConns, l.Stats.EReq}
		}
		// Octavia adds the counters of version 3 on, and writes those of
		// earlier versions over the row.
		o.Absolute = !msg.HasVersion || msg.Version < 3
		if len(msg.Listeners) == 0 && len(o.Stats) == 0 || msg.VersionNotComparable || msg.VersionNaN || odd ||
			msg.ListenersOdd.Kind != heartbeat.KindNormal || msg.AmphoraIDLoneSurrogate {
			// Not compared; the next heartbeat starts the comparison again.
			o.Stats = nil
		}
		s.metrics.Compared.Inc()
		s.mu.Lock()
		found := s.cmp.Heartbeat(o)
		s.mu.Unlock()
		s.report(found)
	}
	return nil
}

// Poll reads every amphora_health row and applies the stale-amphora
// rules, comparing them with Octavia's failovers.
func (s *Shadow) Poll(ctx context.Context) error {
	rows, now, err := s.cfg.Reader.ReadAmphoraHealth(ctx, nil)
	if err != nil {
		s.metrics.ReadErrors.Inc()
		return err
	}
	s.mu.Lock()
	found := s.cmp.Poll(rows, now, s.cfg.Failover)
	s.mu.Unlock()
	s.report(found)
	return nil
}

func (s *Shadow) report(found []Disagreement) {
	for _, d := range found {
		s.metrics.Disagreements.WithLabelValues(string(d.Kind)).Inc()
		s.log.Warn("shadow: disagreement with Octavia's health manager", "kind", string(d.Kind), "entity", d.Entity,
			"id", d.ID, "amphora_id", d.AmphoraID, "ours", d.Ours, "octavia", d.Octavia, "message", d.Message)
		if err := s.file.Add(d); err != nil {
			s.log.Error("shadow: disagreement file not written", "file", s.cfg.File, "err", err)
		}
	}
}

// causeOf describes a heartbeat: its seq, amphora and what it reported.
func causeOf(hb Heartbeat) Cause {
	msg := hb.Msg
	var b strings.Builder
	fmt.Fprintf(&b, "heartbeat of amphora %s", msg.AmphoraID)
	if msg.HasSeq {
		fmt.Fprintf(&b, " seq %d", msg.Seq)
	}
	if msg.HasVersion {
		fmt.Fprintf(&b, " ver %d", msg.Version)
	}
	if !msg.RecvTime.IsZero() {
		fmt.Fprintf(&b, " received %s", msg.RecvTime.UTC().Format(time.RFC3339Nano))
	}
	var parts []string
	for i := range msg.Listeners {
		l := &msg.Listeners[i]
		parts = append(parts, fmt.Sprintf("listener %s %s", l.ID, l.Status))
		for _, p := range heartbeat.NormalizePools(l.Pools) {
			parts = append(parts, describePool(p)...)
		}
	}
	for _, p := range heartbeat.NormalizePools(msg.Pools) {
		parts = append(parts, describePool(p)...)
	}
	sort.Strings(parts)
	if len(parts) > 0 {
		b.WriteString(" reporting ")
		b.WriteString(strings.Join(parts, ", "))
	}
	c := Cause{Message: b.String()}
	if hb.Datagram != nil {
		c.B64 = base64.StdEncoding.EncodeToString(hb.Datagram)
	}
	if hb.From.IsValid() {
		c.SrcAddr = hb.From.Addr().String()
	}
	return c
}

func describePool(p heartbeat.Pool) []string {
	out := []string{fmt.Sprintf("pool %s %s", p.Key, p.Status)}
	for _, m := range p.Members {
		out = append(out, fmt.Sprintf("member %s %s", m.ID, m.Status))
	}
	return out
}
