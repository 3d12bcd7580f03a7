package pgstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/octavia-vpp/health/healthdb"
	"github.com/octavia-vpp/health/healthdb/pgstore"
	"github.com/octavia-vpp/health/test/pgtest"
)

func TestShadowReads(t *testing.T) {
	ctx := context.Background()
	db := pgtest.NewPool(t)
	for _, sql := range []string{
		`INSERT INTO load_balancer (id, provisioning_status, operating_status, enabled) VALUES ('lb-1', 'ACTIVE', 'ONLINE', true)`,
		`INSERT INTO amphora (id, load_balancer_id, status, compute_id, cert_busy) VALUES ('amp-1', 'lb-1', 'ALLOCATED', 'c-1', false)`,
		`INSERT INTO amphora_health (amphora_id, last_update, busy) VALUES ('amp-1', '2026-12-06 12:00:00', false), ('amp-gone', '2026-12-06 11:00:00', true)`,
		`INSERT INTO listener (id, load_balancer_id, protocol, protocol_port, provisioning_status, operating_status, enabled) VALUES ('l-1', 'lb-1', 'HTTP', 80, 'ACTIVE', 'ONLINE', true)`,
		`INSERT INTO listener_statistics (listener_id, amphora_id, bytes_in, bytes_out, active_connections, total_connections, request_errors) VALUES ('l-1', 'amp-1', 1, 2, 3, 4, 5), ('l-1', 'amp-other', 9, 9, 9, 9, 9)`,
	} {
		if _, err := db.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	s := pgstore.New(db)
	all, now, err := s.ReadAmphoraHealth(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []healthdb.AmphoraHealthRow{
		{AmphoraID: "amp-1", Status: "ALLOCATED", LastUpdate: time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC), LBProvisioningStatus: "ACTIVE"},
		{AmphoraID: "amp-gone", LastUpdate: time.Date(2026, 12, 6, 11, 0, 0, 0, time.UTC), Busy: true},
	}
	if len(all) != 2 || all[0] != want[0] || all[1] != want[1] {
		t.Errorf("all rows %+v, want %+v", all, want)
	}
	if d := time.Since(now); d < -time.Minute || d > time.Minute {
		t.Errorf("database time %v", now)
	}
	one, _, err := s.ReadAmphoraHealth(ctx, []string{"amp-1", "amp-none"})
	if err != nil || len(one) != 1 || one[0] != want[0] {
		t.Errorf("amp-1: %+v, %v", one, err)
	}
	stats, err := s.ReadListenerStatistics(ctx, []string{"amp-1"})
	if err != nil || len(stats) != 1 || stats[0] != (healthdb.ListenerStatsRow{ListenerID: "l-1", AmphoraID: "amp-1",
		BytesIn: 1, BytesOut: 2, ActiveConns: 3, TotalConns: 4, RequestErrors: 5}) {
		t.Errorf("statistics %+v, %v", stats, err)
	}
}
