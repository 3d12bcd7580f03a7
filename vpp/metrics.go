package vpp

import (
	"slices"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// MetricsSource is what the collector reads at scrape time. Govpp and the
// simulator both satisfy it; Govpp's Telemetry is used when present.
type MetricsSource interface {
	State() State
	Counters() *Counters
}

type telemetrySource interface {
	Telemetry() Telemetry
}

// Metric descriptors (the only package-level state).
var (
	descUp = prometheus.NewDesc("amphora_agent_vpp_up",
		"1 when the VPP API connection is up.", nil, nil)
	descInfo = prometheus.NewDesc("amphora_agent_vpp_info",
		"VPP version and the dialect used to program the lb plugin.", []string{"version", "dialect"}, nil)
	descGeneration = prometheus.NewDesc("amphora_agent_vpp_generation",
		"Increases on every connection to a fresh VPP instance.", nil, nil)
	descBoot = prometheus.NewDesc("amphora_agent_vpp_boot_time_seconds",
		"VPP boot time, seconds since the epoch; absent while unknown.", nil, nil)
	descLastContact = prometheus.NewDesc("amphora_agent_vpp_last_contact_timestamp_seconds",
		"Last successful exchange with VPP, seconds since the epoch.", nil, nil)
	descCalls = prometheus.NewDesc("amphora_agent_vpp_api_calls_total",
		"VPP API calls by message and result (ok, vpp_error, transport_error).", []string{"msg", "result"}, nil)
	descConnects = prometheus.NewDesc("amphora_agent_vpp_connects_total",
		"Connection attempts to VPP by result.", []string{"result"}, nil)
	descDisconnects = prometheus.NewDesc("amphora_agent_vpp_disconnects_total",
		"Established VPP connections lost.", nil, nil)
	descRepushes = prometheus.NewDesc("amphora_agent_vpp_repushes_total",
		"Full re-pushes of the desired lb state.", nil, nil)
	descScrapes = prometheus.NewDesc("amphora_agent_vpp_counter_scrapes_total",
		"Counter scrapes by result.", []string{"result"}, nil)
	descChanges = prometheus.NewDesc("amphora_agent_vpp_lb_changes_total",
		"Dataplane changes by kind.", []string{"kind"}, nil)
	descVIPPackets = prometheus.NewDesc("amphora_agent_vip_packets_total",
		"lb plugin packets per VIP by kind (next, first, untracked, no_server).", append(vipLabels, "kind"), nil)
	descRoutePackets = prometheus.NewDesc("amphora_agent_vip_route_packets_total",
		"Packets that reached the VIP address (FIB), all ports.", vipLabels, nil)
	descRouteBytes = prometheus.NewDesc("amphora_agent_vip_route_bytes_total",
		"Bytes that reached the VIP address (FIB), all ports.", vipLabels, nil)
	descFlows = prometheus.NewDesc("amphora_agent_vip_backend_flows",
		"Flow-table slots pointing at a backend (upper bound of its connections).", append(vipLabels, "backend"), nil)
)

// vipLabels identify a VIP, one value each: the prefix ("192.0.2.10/32"),
// the protocol (tcp, udp, or any for an all-port VIP) and the port (0 for
// an all-port VIP), so that queries can select and group on each.
var vipLabels = []string{"vip", "protocol", "port"}

func vipLabelValues(k VIPKey) []string {
	return []string{k.Prefix.String(), k.Protocol.String(), strconv.Itoa(int(k.Port))}
}

type collector struct{ src MetricsSource }

// RegisterMetrics registers the layer's metrics, computed from src at
// scrape time, on reg.
func RegisterMetrics(reg prometheus.Registerer, src MetricsSource) error {
	return reg.Register(collector{src})
}

func (collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descUp, descInfo, descGeneration, descBoot, descLastContact, descCalls,
		descConnects, descDisconnects, descRepushes, descScrapes, descChanges, descVIPPackets, descRoutePackets,
		descRouteBytes, descFlows} {
		ch <- d
	}
}

func unix(t interface{ UnixNano() int64 }) float64 { return float64(t.UnixNano()) / 1e9 }

func (c collector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, l...)
	}
	counter := func(d *prometheus.Desc, v uint64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), l...)
	}
	st := c.src.State()
	up := 0.0
	if st.Connected {
		up = 1
	}
	gauge(descUp, up)
	gauge(descInfo, 1, st.Version, st.Dialect)
	gauge(descGeneration, float64(st.Generation))
	if !st.BootTime.IsZero() {
		// Absent, not 0, while unknown: time() - boot_time must not read
		// as 56 years of uptime.
		gauge(descBoot, unix(st.BootTime))
	}
	if !st.LastContact.IsZero() {
		gauge(descLastContact, unix(st.LastContact))
	}
	if ts, ok := c.src.(telemetrySource); ok {
		t := ts.Telemetry()
		for k, v := range t.Calls {
			counter(descCalls, v, k.Msg, k.Result)
		}
		for r, v := range t.Connects {
			counter(descConnects, v, r)
		}
		counter(descDisconnects, t.Disconnects)
		counter(descRepushes, t.Repushes)
		for r, v := range t.Scrapes {
			counter(descScrapes, v, r)
		}
		for k, v := range t.Changes {
			counter(descChanges, v, k)
		}
	}
	for _, v := range c.src.Counters().vipsOrNil() {
		vip := vipLabelValues(v.Key)
		with := func(extra string) []string { return append(slices.Clip(vip), extra) }
		counter(descVIPPackets, v.NextPackets, with("next")...)
		counter(descVIPPackets, v.FirstPackets, with("first")...)
		counter(descVIPPackets, v.UntrackedPackets, with("untracked")...)
		counter(descVIPPackets, v.NoServerPackets, with("no_server")...)
		counter(descRoutePackets, v.RoutePackets, vip...)
		counter(descRouteBytes, v.RouteBytes, vip...)
		for a, f := range v.Flows {
			gauge(descFlows, float64(f), with(a.String())...)
		}
	}
}

func (c *Counters) vipsOrNil() []VIPCounters {
	if c == nil {
		return nil
	}
	return c.VIPs
}
