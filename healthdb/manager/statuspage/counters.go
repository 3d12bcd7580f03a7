package statuspage

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The daemon's own metrics the summary shows, by name, so that this package
// needs nothing from the packages that define them.
const (
	metricAccepted    = "octavia_hm_heartbeats_accepted_total"
	metricRejected    = "octavia_hm_heartbeats_rejected_total"
	metricFailovers   = "octavia_hm_failovers_total"
	metricBreakerOpen = "octavia_hm_failover_breaker_open"
	metricSuppressed  = "octavia_hm_failover_suppressed"
)

// Watch returns a Registerer that registers collectors with reg and also
// with the page's own registry, which the summary reads. Give it to the
// metrics the summary shows (the receiver's and the watcher's), so that a
// snapshot gathers a few dozen series rather than the whole registry,
// which may hold a series per listener.
func (p *Page) Watch(reg prometheus.Registerer) prometheus.Registerer {
	return teeRegisterer{main: reg, page: p.watched}
}

type teeRegisterer struct{ main, page prometheus.Registerer }

func (t teeRegisterer) Register(c prometheus.Collector) error {
	if err := t.main.Register(c); err != nil {
		return err
	}
	if err := t.page.Register(c); err != nil {
		t.main.Unregister(c)
		return err
	}
	return nil
}

func (t teeRegisterer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := t.Register(c); err != nil {
			panic(err)
		}
	}
}

func (t teeRegisterer) Unregister(c prometheus.Collector) bool {
	t.page.Unregister(c)
	return t.main.Unregister(c)
}

// Counters are the process's own figures at one instant.
type Counters struct {
	Accepted float64 `json:"heartbeats_accepted"`
	Rejected float64 `json:"heartbeats_rejected"`
	// RejectedBy counts rejections by reason (only non-zero ones).
	RejectedBy map[string]float64 `json:"heartbeats_rejected_by_reason,omitempty"`
	// Failovers counts failover requests by result.
	Failovers   map[string]float64 `json:"failovers_by_result,omitempty"`
	BreakerOpen bool               `json:"breaker_open"`
	Suppressed  bool               `json:"failover_suppressed"`
}

// readCounters picks the summary's figures out of g; metrics that are
// missing read as zero.
func readCounters(g prometheus.Gatherer) (Counters, error) {
	c := Counters{RejectedBy: map[string]float64{}, Failovers: map[string]float64{}}
	if g == nil {
		return c, nil
	}
	families, err := g.Gather()
	for _, f := range families {
		for _, m := range f.GetMetric() {
			// A metric is a counter or a gauge here; the other reads as 0.
			v := m.GetCounter().GetValue() + m.GetGauge().GetValue()
			label := func(name string) string {
				for _, l := range m.GetLabel() {
					if l.GetName() == name {
						return l.GetValue()
					}
				}
				return ""
			}
			switch f.GetName() {
			case metricAccepted:
				c.Accepted += v
			case metricRejected:
				c.Rejected += v
				if v > 0 {
					c.RejectedBy[label("reason")] += v
				}
			case metricFailovers:
				if v > 0 {
					c.Failovers[label("result")] += v
				}
			case metricBreakerOpen:
				c.BreakerOpen = c.BreakerOpen || v > 0
			case metricSuppressed:
				c.Suppressed = c.Suppressed || v > 0
			}
		}
	}
	return c, err
}

// rateWindow is how far back a rate looks.
const rateWindow = 10 * time.Second

// rates turns successive counter readings into per-second rates over the
// last rateWindow.
type rates struct {
	mu      sync.Mutex
	samples []sample
}

type sample struct {
	at                 time.Time
	accepted, rejected float64
}

// observe adds a reading and returns the heartbeat and rejection rates
// since the oldest reading in the window; ok is false until there are two
// readings at least a second apart.
func (r *rates) observe(at time.Time, c Counters) (accepted, rejected float64, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.samples = append(r.samples, sample{at: at, accepted: c.Accepted, rejected: c.Rejected})
	// Keep the newest reading older than the window as the base, so a page
	// refreshed less often than the window still gets a rate.
	for len(r.samples) > 2 && at.Sub(r.samples[1].at) >= rateWindow {
		r.samples = r.samples[1:]
	}
	base := r.samples[0]
	dt := at.Sub(base.at).Seconds()
	if dt < 1 || c.Accepted < base.accepted || c.Rejected < base.rejected {
		return 0, 0, false
	}
	return (c.Accepted - base.accepted) / dt, (c.Rejected - base.rejected) / dt, true
}
