package statsdriver

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Prometheus is our "prometheus" statistics driver. It exposes, per
// listener, the totals an operator would read from Octavia's statistics
// API: bytes in and out, connections and request errors as counters, and
// active connections as a gauge. Totals are kept from V3 deltas; an
// absolute report (version 0 to 2) sets its amphora's share. A listener's
// value is the sum over the amphorae reporting it.
//
// Pairs not reported for Expire are forgotten, so deleted listeners leave
// and memory stays bounded by the live (listener, amphora) pairs.
type Prometheus struct {
	mu     sync.Mutex
	pairs  map[pairKey]*promPair
	expire time.Duration
	now    func() time.Time

	bytesIn, bytesOut, totalConns, reqErrors, active *prometheus.Desc
}

type promPair struct {
	in, out, total, errs int64
	active               int64
	seen                 time.Time
}

// DefaultPrometheusExpire is how long a silent pair is kept.
const DefaultPrometheusExpire = time.Hour

// NewPrometheus creates the driver and registers it on reg.
func NewPrometheus(reg prometheus.Registerer, expire time.Duration) (*Prometheus, error) {
	if expire <= 0 {
		expire = DefaultPrometheusExpire
	}
	label := []string{"listener_id"}
	p := &Prometheus{
		pairs: map[pairKey]*promPair{}, expire: expire, now: time.Now,
		bytesIn:    prometheus.NewDesc("octavia_hm_listener_bytes_in_total", "Bytes received by a listener, from heartbeats.", label, nil),
		bytesOut:   prometheus.NewDesc("octavia_hm_listener_bytes_out_total", "Bytes sent by a listener, from heartbeats.", label, nil),
		totalConns: prometheus.NewDesc("octavia_hm_listener_connections_total", "Connections a listener has handled, from heartbeats.", label, nil),
		reqErrors:  prometheus.NewDesc("octavia_hm_listener_request_errors_total", "Request errors of a listener, from heartbeats.", label, nil),
		active:     prometheus.NewDesc("octavia_hm_listener_active_connections", "A listener's current connections, summed over its amphorae.", label, nil),
	}
	if err := reg.Register(p); err != nil {
		return nil, err
	}
	return p, nil
}

// Update folds one heartbeat's statistics in.
func (p *Prometheus) Update(_ context.Context, stats []ListenerStats, deltas bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	for i := range stats {
		s := &stats[i]
		k := pairKey{s.ListenerID, s.AmphoraID}
		pair := p.pairs[k]
		if pair == nil {
			pair = &promPair{}
			p.pairs[k] = pair
		}
		if deltas {
			pair.in += s.BytesIn
			pair.out += s.BytesOut
			pair.total += s.TotalConnections
			pair.errs += s.RequestErrors
		} else {
			pair.in, pair.out, pair.total, pair.errs = s.BytesIn, s.BytesOut, s.TotalConnections, s.RequestErrors
		}
		pair.active = s.ActiveConnections
		pair.seen = now
	}
	return nil
}

// Describe implements prometheus.Collector.
func (p *Prometheus) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{p.bytesIn, p.bytesOut, p.totalConns, p.reqErrors, p.active} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: per listener, the sums over its
// amphorae, after forgetting expired pairs.
func (p *Prometheus) Collect(ch chan<- prometheus.Metric) {
	p.mu.Lock()
	now := p.now()
	sums := map[string]*promPair{}
	for k, pair := range p.pairs {
		if now.Sub(pair.seen) > p.expire {
			delete(p.pairs, k)
			continue
		}
		s := sums[k.listener]
		if s == nil {
			s = &promPair{}
			sums[k.listener] = s
		}
		s.in += pair.in
		s.out += pair.out
		s.total += pair.total
		s.errs += pair.errs
		s.active += pair.active
	}
	p.mu.Unlock()
	listeners := make([]string, 0, len(sums))
	for l := range sums {
		listeners = append(listeners, l)
	}
	sort.Strings(listeners)
	for _, l := range listeners {
		s := sums[l]
		ch <- prometheus.MustNewConstMetric(p.bytesIn, prometheus.CounterValue, float64(s.in), l)
		ch <- prometheus.MustNewConstMetric(p.bytesOut, prometheus.CounterValue, float64(s.out), l)
		ch <- prometheus.MustNewConstMetric(p.totalConns, prometheus.CounterValue, float64(s.total), l)
		ch <- prometheus.MustNewConstMetric(p.reqErrors, prometheus.CounterValue, float64(s.errs), l)
		ch <- prometheus.MustNewConstMetric(p.active, prometheus.GaugeValue, float64(s.active), l)
	}
}
