package statsdriver

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/octavia-vpp/health/test/pgtest"
)

func startCPU(b *testing.B, db *pgxpool.Pool) *pgtest.CPUMeter { return pgtest.StartCPU(b, db) }

// benchUUID is a random v4-shaped UUID.
func benchUUID(r *rand.Rand) string {
	var b [16]byte
	for i := range b {
		b[i] = byte(r.IntN(256))
	}
	return fmt.Sprintf("%x-%x-4%x-a%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])[:36]
}

// benchStatsFleet seeds listener_statistics with one row per listener of
// amphorae amphorae (listeners each) and returns the keys, sorted.
func benchStatsFleet(b *testing.B, db *pgxpool.Pool, amphorae, listeners int) []pairKey {
	b.Helper()
	r := rand.New(rand.NewPCG(1, 2))
	keys := make([]pairKey, 0, amphorae*listeners)
	rows := make([][]any, 0, cap(keys))
	for range amphorae {
		amp := benchUUID(r)
		for range listeners {
			k := pairKey{benchUUID(r), amp}
			keys = append(keys, k)
			rows = append(rows, []any{k.listener, k.amphora, int64(1000), int64(2000), int32(3), int64(40), int64(0)})
		}
	}
	ctx := context.Background()
	if _, err := db.CopyFrom(ctx, pgx.Identifier{"listener_statistics"},
		[]string{"listener_id", "amphora_id", "bytes_in", "bytes_out", "active_connections", "total_connections", "request_errors"},
		pgx.CopyFromRows(rows)); err != nil {
		b.Fatal(err)
	}
	if _, err := db.Exec(ctx, "VACUUM ANALYZE listener_statistics"); err != nil {
		b.Fatal(err)
	}
	return keys
}

// BenchmarkApplyFlush is one statistics flush of existing rows, the steady
// state: 20,000 amphorae with 2 listeners each, flushes of 6,000 rows (one
// second of heartbeats at 3,000/s) and of 600. CPU is per flushed row, of
// this process (building and sending the batch) and of PostgreSQL.
func BenchmarkApplyFlush(b *testing.B) {
	db := openDB(b)
	keys := benchStatsFleet(b, db, 20000, 2)
	sink := NewDB(db)
	seq := uint64(0)
	for _, size := range []int{600, 6000} {
		b.Run(fmt.Sprintf("rows=%d", size), func(b *testing.B) {
			r := rand.New(rand.NewPCG(3, 4))
			batches := make([]*FlushBatch, 8)
			for i := range batches {
				picked := r.Perm(len(keys))[:size]
				sort.Ints(picked)
				inc := make([]ListenerStats, size)
				for j, k := range picked {
					inc[j] = ListenerStats{ListenerID: keys[k].listener, AmphoraID: keys[k].amphora,
						BytesIn: 1000, BytesOut: 2000, ActiveConnections: 3, TotalConnections: 40, RequestErrors: 0}
				}
				batches[i] = &FlushBatch{Increments: inc}
			}
			ctx := context.Background()
			cpu := startCPU(b, db)
			n := 0
			for i := 0; b.Loop(); i++ {
				seq++
				batch := batches[i%len(batches)]
				batch.Seq = seq
				res, err := sink.ApplyFlush(ctx, batch)
				if err != nil || len(res.Refused) > 0 || res.AlreadyApplied || res.Unresolvable {
					b.Fatal(err, res)
				}
				n += size
			}
			cpu.Report(b, n)
		})
	}
}

// BenchmarkAggregatorFlush is the Aggregator's whole path for one second
// of heartbeats at 3,000/s on the fleet above: 3,000 Updates of 2
// listeners, then Flush. CPU is per heartbeat.
func BenchmarkAggregatorFlush(b *testing.B) {
	db := openDB(b)
	keys := benchStatsFleet(b, db, 20000, 2)
	agg := NewAggregator(AggregatorConfig{Sink: NewDB(db)})
	const perFlush = 3000
	now := time.Now()
	hbs := make([][]ListenerStats, len(keys)/2)
	for i := range hbs {
		hbs[i] = []ListenerStats{
			{ListenerID: keys[2*i].listener, AmphoraID: keys[2*i].amphora, BytesIn: 1000, BytesOut: 2000, ActiveConnections: 3, TotalConnections: 40, ReceivedTime: now},
			{ListenerID: keys[2*i+1].listener, AmphoraID: keys[2*i+1].amphora, BytesIn: 1000, BytesOut: 2000, ActiveConnections: 3, TotalConnections: 40, ReceivedTime: now},
		}
	}
	r := rand.New(rand.NewPCG(5, 6))
	order := r.Perm(len(hbs))
	ctx := context.Background()
	cpu := startCPU(b, db)
	next := 0
	for b.Loop() {
		for range perFlush {
			if err := agg.Update(ctx, hbs[order[next%len(order)]], true); err != nil {
				b.Fatal(err)
			}
			next++
		}
		if err := agg.Flush(ctx); err != nil {
			b.Fatal(err)
		}
	}
	cpu.Report(b, next)
}

// discardSink answers every flush as applied, writing nothing.
type discardSink struct{}

func (discardSink) ApplyFlush(context.Context, *FlushBatch) (FlushResult, error) {
	return FlushResult{}, nil
}

// BenchmarkAggregatorFold is the Aggregator's own part of BenchmarkAggregatorFlush,
// without a database: 3,000 Updates of 2 listeners from a fleet of 20,000
// amphorae, then Flush into a sink that writes nothing. Time is per
// heartbeat.
func BenchmarkAggregatorFold(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	now := time.Now()
	hbs := make([][]ListenerStats, 20000)
	for i := range hbs {
		amp := benchUUID(r)
		hbs[i] = []ListenerStats{
			{ListenerID: benchUUID(r), AmphoraID: amp, BytesIn: 1000, BytesOut: 2000, ActiveConnections: 3, TotalConnections: 40, ReceivedTime: now},
			{ListenerID: benchUUID(r), AmphoraID: amp, BytesIn: 1000, BytesOut: 2000, ActiveConnections: 3, TotalConnections: 40, ReceivedTime: now},
		}
	}
	order := r.Perm(len(hbs))
	agg := NewAggregator(AggregatorConfig{Sink: discardSink{}})
	ctx := context.Background()
	const perFlush = 3000
	next := 0
	for b.Loop() {
		if err := agg.Update(ctx, hbs[order[next%len(order)]], true); err != nil {
			b.Fatal(err)
		}
		next++
		if next%perFlush == 0 {
			if err := agg.Flush(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkApplyFlushNewRows is the first flush of each pair: 6,000 rows
// that do not exist yet (a manager's start, a fleet's first heartbeats).
// CPU is per row.
func BenchmarkApplyFlushNewRows(b *testing.B) {
	const size = 6000
	db := openDB(b)
	sink := NewDB(db)
	r := rand.New(rand.NewPCG(7, 8))
	batches := make([]*FlushBatch, b.N)
	for i := range batches {
		inc := make([]ListenerStats, size)
		for j := range inc {
			inc[j] = ListenerStats{ListenerID: benchUUID(r), AmphoraID: benchUUID(r),
				BytesIn: 1000, BytesOut: 2000, ActiveConnections: 3, TotalConnections: 40}
		}
		slices.SortFunc(inc, func(x, y ListenerStats) int { return strings.Compare(x.ListenerID, y.ListenerID) })
		batches[i] = &FlushBatch{Seq: uint64(i + 1), Increments: inc}
	}
	ctx := context.Background()
	b.ResetTimer()
	cpu := startCPU(b, db)
	for i := 0; i < b.N; i++ {
		res, err := sink.ApplyFlush(ctx, batches[i])
		if err != nil || len(res.Refused) > 0 {
			b.Fatal(err, res)
		}
	}
	cpu.Report(b, b.N*size)
}
