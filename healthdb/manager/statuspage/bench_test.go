package statuspage

import (
	"context"
	"testing"
	"time"

	"github.com/octavia-vpp/health/test/pgtest"
)

// BenchmarkSnapshot100k measures one snapshot's database reads on a fleet
// of 100,000 amphorae: 50,000 active-standby load balancers, each with a
// listener, a pool and two members; 1% DEGRADED, 0.5% of amphorae stale.
func BenchmarkSnapshot100k(b *testing.B) {
	db := pgtest.NewPool(b)
	ctx := context.Background()
	for _, sql := range []string{
		`INSERT INTO load_balancer (id, name, provisioning_status, operating_status, enabled)
			SELECT 'lb-' || i, 'lb ' || i, 'ACTIVE', CASE WHEN i % 100 = 0 THEN 'DEGRADED' ELSE 'ONLINE' END, true
			FROM generate_series(1, 50000) i`,
		`INSERT INTO amphora (id, load_balancer_id, status, role, cert_busy)
			SELECT 'amp-' || i || '-' || r, 'lb-' || i, 'ALLOCATED', CASE r WHEN 1 THEN 'MASTER' ELSE 'BACKUP' END, false
			FROM generate_series(1, 50000) i, generate_series(1, 2) r`,
		`INSERT INTO amphora_health (amphora_id, last_update, busy)
			SELECT id, (now() AT TIME ZONE 'UTC') - CASE WHEN random() < 0.005 THEN interval '10 minutes' ELSE random() * interval '10 seconds' END, false
			FROM amphora`,
		`INSERT INTO pool (id, load_balancer_id, name, protocol, lb_algorithm, operating_status, enabled, provisioning_status)
			SELECT 'pool-' || i, 'lb-' || i, 'pool ' || i, 'HTTP', 'ROUND_ROBIN', 'ONLINE', true, 'ACTIVE' FROM generate_series(1, 50000) i`,
		`INSERT INTO listener (id, load_balancer_id, protocol, protocol_port, provisioning_status, operating_status, enabled, default_pool_id)
			SELECT 'l-' || i, 'lb-' || i, 'HTTP', 80, 'ACTIVE', 'ONLINE', true, 'pool-' || i FROM generate_series(1, 50000) i`,
		`INSERT INTO member (id, pool_id, ip_address, protocol_port, operating_status, enabled, provisioning_status, backup)
			SELECT 'm-' || i || '-' || r, 'pool-' || i, '10.0.0.' || r, 80, 'ONLINE', true, 'ACTIVE', false
			FROM generate_series(1, 50000) i, generate_series(1, 2) r`,
		`ANALYZE`,
	} {
		var args []any
		if len(sql) > 0 && containsParam(sql) {
			args = []any{t0}
		}
		if _, err := db.Exec(ctx, sql, args...); err != nil {
			b.Fatalf("%v\n%s", err, sql)
		}
	}
	p := New(Config{Pool: db, HeartbeatTimeout: time.Minute, Logger: quiet})
	var s *Snapshot
	for b.Loop() {
		s = p.build(ctx, t0)
	}
	if s.Error != "" || s.Fleet.Amphorae != 100000 || len(s.LBs) != DefaultMaxLoadBalancers {
		b.Fatalf("snapshot: %s, %d amphorae, %d listed", s.Error, s.Fleet.Amphorae, len(s.LBs))
	}
	b.ReportMetric(float64(s.Fleet.Stale), "stale")
}

func containsParam(sql string) bool {
	for i := 0; i+1 < len(sql); i++ {
		if sql[i] == '$' && sql[i+1] == '1' {
			return true
		}
	}
	return false
}
