package vpp

import (
	"maps"
	"sync"
)

// CallKey identifies a class of VPP calls for Telemetry.
type CallKey struct {
	Msg    string // VPP message name, e.g. "lb_add_del_vip_v2" or "cli_inband"
	Result string // "ok", "vpp_error" or "transport_error"
}

// Telemetry is a copy of Govpp's own activity counters, for metrics.
// Every value is a running total since NewGovpp.
type Telemetry struct {
	Calls       map[CallKey]uint64
	Connects    map[string]uint64 // connection attempts by result: "ok", "error"
	Disconnects uint64            // established connections lost (or closed)
	Repushes    uint64            // full re-pushes of the desired state
	Scrapes     map[string]uint64 // by result: "ok", "error"
	// Changes counts dataplane changes by kind: vip_created, vip_recreated,
	// vip_removed, backend_added, backend_removed, backend_reweighted.
	Changes map[string]uint64
}

type telemetry struct {
	mu sync.Mutex
	t  Telemetry
}

func newTelemetry() *telemetry {
	return &telemetry{t: Telemetry{
		Calls: map[CallKey]uint64{}, Connects: map[string]uint64{},
		Scrapes: map[string]uint64{}, Changes: map[string]uint64{},
	}}
}

func (t *telemetry) call(msg, result string) {
	t.mu.Lock()
	t.t.Calls[CallKey{msg, result}]++
	t.mu.Unlock()
}

func (t *telemetry) connect(result string) {
	t.mu.Lock()
	t.t.Connects[result]++
	t.mu.Unlock()
}

func (t *telemetry) disconnect() {
	t.mu.Lock()
	t.t.Disconnects++
	t.mu.Unlock()
}

func (t *telemetry) repush() {
	t.mu.Lock()
	t.t.Repushes++
	t.mu.Unlock()
}

func (t *telemetry) scrape(result string) {
	t.mu.Lock()
	t.t.Scrapes[result]++
	t.mu.Unlock()
}

func (t *telemetry) removed() {
	t.mu.Lock()
	t.t.Changes["vip_removed"]++
	t.mu.Unlock()
}

func (t *telemetry) sync(r SyncResult) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if r.Created {
		t.t.Changes["vip_created"]++
	}
	if r.Recreated {
		t.t.Changes["vip_recreated"]++
	}
	t.t.Changes["backend_added"] += uint64(r.Added)
	t.t.Changes["backend_removed"] += uint64(r.Removed)
	t.t.Changes["backend_reweighted"] += uint64(r.Reweighted)
}

func (t *telemetry) snapshot() Telemetry {
	t.mu.Lock()
	defer t.mu.Unlock()
	return Telemetry{
		Calls: maps.Clone(t.t.Calls), Connects: maps.Clone(t.t.Connects), Disconnects: t.t.Disconnects,
		Repushes: t.t.Repushes, Scrapes: maps.Clone(t.t.Scrapes), Changes: maps.Clone(t.t.Changes),
	}
}

// Telemetry returns a copy of the layer's own activity counters.
func (g *Govpp) Telemetry() Telemetry { return g.tel.snapshot() }
