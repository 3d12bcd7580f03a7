package healthdb

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/octavia-vpp/health/heartbeat"
)

// benchFleet seeds n load balancers, each with one amphora, two listeners,
// two pools and five members per pool (the "typical" heartbeat), with COPY.
func benchFleet(b *testing.B, db *pgxpool.Pool, n int) {
	b.Helper()
	ctx := context.Background()
	var lbs, amps, listeners, pools, members [][]any
	for i := range n {
		lb := fmt.Sprintf("lb-%d", i)
		lbs = append(lbs, []any{lb, "ACTIVE", "ONLINE", true})
		amps = append(amps, []any{fmt.Sprintf("amp-%d", i), lb, "ALLOCATED", fmt.Sprintf("c-%d", i), false})
		for p := range 2 {
			pool := fmt.Sprintf("pool-%d-%d", i, p)
			pools = append(pools, []any{pool, lb, "HTTP", "ROUND_ROBIN", "ONLINE", true, "ACTIVE"})
			listeners = append(listeners, []any{fmt.Sprintf("l-%d-%d", i, p), lb, "HTTP", 80 + p, "ACTIVE", "ONLINE", true, pool})
			for m := range 5 {
				members = append(members, []any{fmt.Sprintf("m-%d-%d-%d", i, p, m), pool, "192.0.2.1", 8000 + m, "ONLINE", true, "ACTIVE", false})
			}
		}
	}
	for _, c := range []struct {
		table string
		cols  []string
		rows  [][]any
	}{
		{"load_balancer", []string{"id", "provisioning_status", "operating_status", "enabled"}, lbs},
		{"amphora", []string{"id", "load_balancer_id", "status", "compute_id", "cert_busy"}, amps},
		{"pool", []string{"id", "load_balancer_id", "protocol", "lb_algorithm", "operating_status", "enabled", "provisioning_status"}, pools},
		{"listener", []string{"id", "load_balancer_id", "protocol", "protocol_port", "provisioning_status", "operating_status", "enabled", "default_pool_id"}, listeners},
		{"member", []string{"id", "pool_id", "ip_address", "protocol_port", "operating_status", "enabled", "provisioning_status", "backup"}, members},
	} {
		if _, err := db.CopyFrom(ctx, pgx.Identifier{c.table}, c.cols, pgx.CopyFromRows(c.rows)); err != nil {
			b.Fatalf("seed %s: %v", c.table, err)
		}
	}
	if _, err := db.Exec(ctx, "ANALYZE"); err != nil {
		b.Fatal(err)
	}
}

// benchMessage is amphora i's typical V3 heartbeat; with churn, one member
// reports DOWN, so statuses change back and forth.
func benchMessage(i int, churn bool, recv time.Time) *heartbeat.Message {
	m := &heartbeat.Message{AmphoraID: fmt.Sprintf("amp-%d", i), Seq: int64(i), HasSeq: true, Version: 3, HasVersion: true, RecvTime: recv}
	for p := range 2 {
		l := fmt.Sprintf("l-%d-%d", i, p)
		m.Listeners = append(m.Listeners, heartbeat.Listener{ID: l, Status: "OPEN", HasStats: true,
			Stats: heartbeat.Stats{TX: 1000, RX: 2000, Conns: 3, TotConns: 40, EReq: 0}})
		pool := heartbeat.Pool{Key: fmt.Sprintf("pool-%d-%d:%s", i, p, l), Status: "UP"}
		for k := range 5 {
			status := "UP"
			if churn && p == 0 && k == 0 {
				status = "DOWN"
			}
			pool.Members = append(pool.Members, heartbeat.Member{ID: fmt.Sprintf("m-%d-%d-%d", i, p, k), Status: status})
		}
		m.Pools = append(m.Pools, pool)
	}
	return m
}

// BenchmarkUpdater measures heartbeats per second through ApplyBatch (one
// topology read and one write transaction per batch) against the harness
// PostgreSQL, for a fleet of 5,000 load balancers. "steady" heartbeats
// change nothing but amphora_health; "churn" flips a member in 10% of them;
// "cached" runs with the topology cache on.
func BenchmarkUpdater(b *testing.B) {
	const fleet = 5000
	db := openDB(b)
	benchFleet(b, db, fleet)
	for _, batchSize := range []int{64, 512, 2048} {
		for _, mode := range []struct {
			name  string
			every int           // every n-th heartbeat churns; 0 never
			cache time.Duration // topology_cache_seconds
		}{{"steady", 0, 0}, {"churn10pct", 10, 0}, {"steady-cached", 0, time.Hour}, {"churn10pct-cached", 10, time.Hour}} {
			b.Run(fmt.Sprintf("batch%d/%s", batchSize, mode.name), func(b *testing.B) {
				clock := time.Now()
				u, err := NewUpdater(UpdaterConfig{
					Store: NewStore(db), Deleter: noopDeleter{}, Rules: rules, TopologyCache: mode.cache,
					Now: func() time.Time { return clock }, Logger: quiet,
				})
				if err != nil {
					b.Fatal(err)
				}
				// Messages are built before the clock starts: the receiver
				// hands the updater decoded messages.
				steady, churned := make([]*heartbeat.Message, fleet), make([]*heartbeat.Message, fleet)
				for i := range fleet {
					steady[i], churned[i] = benchMessage(i, false, clock), benchMessage(i, true, clock)
				}
				msgs := make([]*heartbeat.Message, 0, batchSize)
				seq := 0
				b.ResetTimer()
				cpu := startCPU(b, db)
				for done := 0; done < b.N; {
					msgs = msgs[:0]
					for len(msgs) < batchSize && done+len(msgs) < b.N {
						i := seq % fleet
						m := steady[i]
						if mode.every > 0 && seq%mode.every == 0 && (seq/fleet)%2 == 0 {
							m = churned[i]
						}
						msgs = append(msgs, m)
						seq++
					}
					if _, err := u.ApplyBatch(context.Background(), msgs); err != nil {
						b.Fatal(err)
					}
					done += len(msgs)
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "heartbeats/s")
				cpu.Report(b, b.N)
			})
		}
	}
}
