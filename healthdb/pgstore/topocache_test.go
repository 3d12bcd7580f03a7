package pgstore

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/octavia-vpp/health/test/pgtest"
)

func TestTopologyCacheServesUnchangedTopologies(t *testing.T) {
	db := pgtest.NewPool(t)
	ctx := context.Background()
	for _, sql := range []string{
		`INSERT INTO load_balancer (id, provisioning_status, operating_status, enabled) VALUES ('lb-1', 'ACTIVE', 'ONLINE', true)`,
		`INSERT INTO pool (id, load_balancer_id, protocol, lb_algorithm, operating_status, enabled, provisioning_status)
			VALUES ('pool-1', 'lb-1', 'HTTP', 'ROUND_ROBIN', 'ONLINE', true, 'ACTIVE')`,
		`INSERT INTO member (id, pool_id, ip_address, protocol_port, operating_status, enabled, provisioning_status, backup)
			VALUES ('m-1', 'pool-1', '192.0.2.1', 80, 'ONLINE', true, 'ACTIVE', false)`,
		`INSERT INTO listener (id, load_balancer_id, protocol, protocol_port, provisioning_status, operating_status, enabled, default_pool_id)
			VALUES ('l-1', 'lb-1', 'HTTP', 80, 'ACTIVE', 'ONLINE', true, 'pool-1')`,
		`INSERT INTO amphora (id, load_balancer_id, status, compute_id, cert_busy) VALUES ('amp-1', 'lb-1', 'ALLOCATED', 'c-1', false)`,
		`INSERT INTO amphora (id, load_balancer_id, status, compute_id, cert_busy) VALUES ('amp-2', 'lb-1', 'ALLOCATED', 'c-2', false)`,
	} {
		if _, err := db.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	c := newTopologyCache(New(db), time.Minute, nil)
	ids := []string{"amp-1", "amp-2", "unknown"}
	for i, want := range []cacheStats{{Misses: 3}, {Hits: 2, Misses: 1}} {
		topos, stats, err := c.load(ctx, ids, now)
		if err != nil {
			t.Fatal(err)
		}
		if stats != want {
			t.Errorf("load %d: %+v, want %+v", i, stats, want)
		}
		fresh, err := New(db).LoadTopologies(ctx, ids)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(topos, fresh) {
			t.Errorf("load %d: cached topologies differ from a fresh read", i)
		}
		if topos["amp-1"].LB != topos["amp-2"].LB {
			t.Errorf("load %d: an ACTIVE_STANDBY pair does not share its load balancer", i)
		}
	}
	// Past the time limit everything is read again.
	if _, stats, err := c.load(ctx, ids, now.Add(time.Minute)); err != nil || stats != (cacheStats{Misses: 3}) {
		t.Errorf("after the time limit: %+v, %v", stats, err)
	}
}
