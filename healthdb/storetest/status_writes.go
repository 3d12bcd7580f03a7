package storetest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/octavia-vpp/health/healthdb"
	"github.com/octavia-vpp/health/heartbeat"
)

func testApplyHealthUpsertKeepsBusy(t *testing.T, b Backend) {
	b.AddLoadBalancer("lb-1", "ACTIVE", "ONLINE", true)
	b.AddAmphora("amp-busy", "lb-1", "ALLOCATED", "c-1")
	b.AddAmphora("amp-idle", "lb-1", "ALLOCATED", "c-2")
	b.AddAmphora("amp-new", "lb-1", "ALLOCATED", "c-3")
	b.AddHealth("amp-busy", time.Hour, true)
	b.AddHealth("amp-idle", time.Hour, false)
	before := b.Now()
	if err := b.Store().Apply(ctx, &healthdb.Writes{Health: []string{"amp-new", "amp-busy", "amp-idle", "amp-new"}}); err != nil {
		t.Fatal(err)
	}
	after := b.Now()
	var first time.Time
	for _, c := range []struct {
		id   string
		busy bool
	}{{"amp-busy", true}, {"amp-idle", false}, {"amp-new", false}} {
		last, busy, ok := b.Health(c.id)
		if !ok || busy != c.busy {
			t.Errorf("%s: busy %v present %v, want busy %v", c.id, busy, ok, c.busy)
		}
		within(t, c.id+" last_update", last, before, after)
		if first.IsZero() {
			first = last
		} else if !last.Equal(first) {
			t.Errorf("%s: last_update %v, want the batch's one time %v", c.id, last, first)
		}
	}
}

func testApplyWritesOnlyChangedStatuses(t *testing.T, b Backend) {
	b.AddLoadBalancer("lb-1", "ACTIVE", "ONLINE", true)
	b.AddAmphora("amp-1", "lb-1", "ALLOCATED", "c-1")
	b.AddPool("pool-1", "lb-1", "ONLINE")
	b.AddMember("m-same", "pool-1", "ONLINE", true)
	b.AddMember("m-down", "pool-1", "ONLINE", true)
	b.AddListener("l-1", "lb-1", "HTTP", "ONLINE", true, "pool-1")
	before := b.Now()
	err := b.Store().Apply(ctx, &healthdb.Writes{
		Health:        []string{"amp-1"},
		LoadBalancers: map[string]string{"lb-1": "DEGRADED"},
		Listeners:     map[string]string{"l-1": "ONLINE"},
		Pools:         map[string]string{"pool-1": "DEGRADED"},
		Members:       map[string]string{"m-same": "ONLINE", "m-down": "ERROR"},
	})
	if err != nil {
		t.Fatal(err)
	}
	after := b.Now()
	at, _, _ := b.Health("amp-1")
	within(t, "last_update", at, before, after)
	for _, c := range []struct {
		table, id, status string
		touched           bool
	}{
		{"load_balancer", "lb-1", "DEGRADED", true},
		{"listener", "l-1", "ONLINE", false},
		{"pool", "pool-1", "DEGRADED", true},
		{"member", "m-same", "ONLINE", false},
		{"member", "m-down", "ERROR", true},
	} {
		status, updated := b.OperatingStatus(c.table, c.id)
		if status != c.status {
			t.Errorf("%s %s: %s, want %s", c.table, c.id, status, c.status)
		}
		if c.touched != (updated != nil) || (updated != nil && !updated.Equal(at)) {
			t.Errorf("%s %s: updated_at %v, want touched=%v at %v", c.table, c.id, updated, c.touched, at)
		}
	}
}

func testApplyEmptyAndUnknownRows(t *testing.T, b Backend) {
	b.AddLoadBalancer("lb-1", "ACTIVE", "ONLINE", true)
	if err := b.Store().Apply(ctx, &healthdb.Writes{}); err != nil {
		t.Fatalf("empty writes: %v", err)
	}
	err := b.Store().Apply(ctx, &healthdb.Writes{LoadBalancers: map[string]string{"lb-unknown": "ERROR"},
		Members: map[string]string{"m-unknown": "ERROR"}})
	if err != nil {
		t.Fatalf("writes to unknown rows: %v", err)
	}
	if status, updated := b.OperatingStatus("load_balancer", "lb-1"); status != "ONLINE" || updated != nil {
		t.Errorf("lb-1: %s %v", status, updated)
	}
	// A status Octavia's operating_status table does not name fails the
	// whole batch (a foreign key in SQL): nothing of it is written.
	b.AddAmphora("amp-1", "lb-1", "ALLOCATED", "")
	err = b.Store().Apply(ctx, &healthdb.Writes{Health: []string{"amp-1"},
		LoadBalancers: map[string]string{"lb-1": "BOGUS"}})
	if err == nil {
		t.Error("a write of an unknown operating status succeeded")
	}
	if status, updated := b.OperatingStatus("load_balancer", "lb-1"); status != "ONLINE" || updated != nil {
		t.Errorf("lb-1 after a failed batch: %s %v", status, updated)
	}
	if _, _, ok := b.Health("amp-1"); ok {
		t.Error("a failed batch wrote health")
	}
	// Writing the status a row already has is no write, valid or not.
	if err := b.Store().Apply(ctx, &healthdb.Writes{LoadBalancers: map[string]string{"lb-1": "ONLINE"}}); err != nil {
		t.Error(err)
	}
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

type noDeletes struct{}

func (noDeletes) DeleteCompute(context.Context, string) error {
	return fmt.Errorf("no compute service here")
}

func updater(t *testing.T, b Backend) *healthdb.Updater {
	t.Helper()
	u, err := healthdb.NewUpdater(healthdb.UpdaterConfig{Store: b.Store(), Deleter: noDeletes{},
		Rules: healthdb.Rules{HeartbeatInterval: time.Hour}, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func heartbeatOf(amphoraID string, memberStatus string) *heartbeat.Message {
	return &heartbeat.Message{AmphoraID: amphoraID, Version: 3, HasVersion: true, RecvTime: time.Now(),
		Listeners: []heartbeat.Listener{{ID: "l-1", Status: "OPEN"}},
		Pools: []heartbeat.Pool{{Key: "pool-1:l-1", Status: "UP",
			Members: []heartbeat.Member{{ID: "m-1", Status: memberStatus}, {ID: "m-2", Status: "UP"}}}}}
}

func seedOneLB(b Backend, amphorae ...string) {
	b.AddLoadBalancer("lb-1", "ACTIVE", "ONLINE", true)
	for i, id := range amphorae {
		b.AddAmphora(id, "lb-1", "ALLOCATED", fmt.Sprintf("c-%d", i))
	}
	b.AddPool("pool-1", "lb-1", "ONLINE")
	b.AddMember("m-1", "pool-1", "ONLINE", true)
	b.AddMember("m-2", "pool-1", "ONLINE", true)
	b.AddListener("l-1", "lb-1", "HTTP", "ONLINE", true, "pool-1")
}

// The status procedure through the Updater: the rows it leaves.
func testStatusProcedure(t *testing.T, b Backend) {
	seedOneLB(b, "amp-1")
	b.AddAmphora("amp-zombie", "", "DELETED", "")
	b.AddHealth("amp-1", time.Hour, true)
	before := b.Now()
	res, err := updater(t, b).ApplyBatch(ctx, []*heartbeat.Message{heartbeatOf("amp-1", "DOWN"), heartbeatOf("amp-zombie", "UP")})
	if err != nil {
		t.Fatal(err)
	}
	after := b.Now()
	if res.Health[healthdb.HealthWrite] != 1 || res.Health[healthdb.HealthSkipZombie] != 1 {
		t.Errorf("health outcomes %v", res.Health)
	}
	last, busy, ok := b.Health("amp-1")
	if !ok || !busy {
		t.Errorf("amp-1 health: present %v busy %v; want busy kept", ok, busy)
	}
	within(t, "last_update", last, before, after)
	if _, _, ok := b.Health("amp-zombie"); ok {
		t.Error("a zombie without a compute id got a health row")
	}
	for _, c := range []struct {
		table, id, status string
		touched           bool
	}{
		{"load_balancer", "lb-1", "DEGRADED", true},
		{"listener", "l-1", "ONLINE", false},
		{"pool", "pool-1", "DEGRADED", true},
		{"member", "m-1", "ERROR", true},
		{"member", "m-2", "ONLINE", false},
	} {
		status, updated := b.OperatingStatus(c.table, c.id)
		if status != c.status || c.touched != (updated != nil) || (updated != nil && !updated.Equal(last)) {
			t.Errorf("%s %s: %s updated %v, want %s touched=%v at %v", c.table, c.id, status, updated, c.status, c.touched, last)
		}
	}
}

// Two heartbeats of an ACTIVE_STANDBY pair that undo each other in one
// batch write nothing but health.
func testStatusProcedureNetChanges(t *testing.T, b Backend) {
	seedOneLB(b, "amp-master", "amp-backup")
	res, err := updater(t, b).ApplyBatch(ctx, []*heartbeat.Message{heartbeatOf("amp-master", "DOWN"), heartbeatOf("amp-backup", "UP")})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Changes) != 0 {
		t.Errorf("net changes %v, want none", res.Changes)
	}
	for _, c := range []struct{ table, id string }{{"load_balancer", "lb-1"}, {"pool", "pool-1"}, {"member", "m-1"}} {
		if status, updated := b.OperatingStatus(c.table, c.id); status != "ONLINE" || updated != nil {
			t.Errorf("%s: %s (updated %v), want ONLINE untouched", c.id, status, updated)
		}
	}
	for _, amp := range []string{"amp-master", "amp-backup"} {
		if _, busy, ok := b.Health(amp); !ok || busy {
			t.Errorf("%s: health present %v busy %v", amp, ok, busy)
		}
	}
}
