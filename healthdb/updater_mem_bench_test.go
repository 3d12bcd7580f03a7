package healthdb_test

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/octavia-vpp/health/healthdb"
	"github.com/octavia-vpp/health/healthdb/memstore"
	"github.com/octavia-vpp/health/heartbeat"
)

// BenchmarkApplyBatchMem is the updater's own cost per heartbeat, with
// topologies read once from healthdb/memstore and handed out again for
// every batch in place of the database: batches of the size a
// steady 3,000 heartbeats/s makes (60, one per 20 ms) and of the largest
// (512), typical heartbeats (two listeners, two pools of ten members) that
// change nothing but amphora_health. It reports the process's CPU per
// heartbeat (cpu-ns/op) beside the wall time, which other work on the
// machine inflates.
func BenchmarkApplyBatchMem(b *testing.B) {
	const fleet = 200
	s := memstore.New(nil)
	msgs := make([]*heartbeat.Message, fleet)
	for i := range fleet {
		lb := fmt.Sprintf("lb-%d", i)
		s.PutLoadBalancer(memstore.LoadBalancer{ID: lb, ProvisioningStatus: "ACTIVE", OperatingStatus: "ONLINE", Enabled: true})
		amp := fmt.Sprintf("amp-%d", i)
		s.PutAmphora(memstore.Amphora{ID: amp, LoadBalancerID: lb, Status: "ALLOCATED", ComputeID: "c-" + amp})
		m := &heartbeat.Message{AmphoraID: amp, Seq: 1, HasSeq: true, Version: 3, HasVersion: true}
		for p := range 2 {
			pool, listener := fmt.Sprintf("pool-%d-%d", i, p), fmt.Sprintf("l-%d-%d", i, p)
			s.PutPool(memstore.Pool{ID: pool, LoadBalancerID: lb, OperatingStatus: "ONLINE"})
			s.PutListener(memstore.Listener{ID: listener, LoadBalancerID: lb, Protocol: "HTTP", OperatingStatus: "ONLINE",
				Enabled: true, DefaultPoolID: pool})
			m.Listeners = append(m.Listeners, heartbeat.Listener{ID: listener, Status: "OPEN", HasStats: true})
			hp := heartbeat.Pool{Key: pool + ":" + listener, Status: "UP"}
			for k := range 10 {
				member := fmt.Sprintf("m-%d-%d-%d", i, p, k)
				s.PutMember(memstore.Member{ID: member, PoolID: pool, OperatingStatus: "ONLINE", Enabled: true})
				hp.Members = append(hp.Members, heartbeat.Member{ID: member, Status: "UP"})
			}
			m.Pools = append(m.Pools, hp)
		}
		msgs[i] = m
	}
	ids := make([]string, fleet)
	for i, m := range msgs {
		ids[i] = m.AmphoraID
	}
	topos, err := s.LoadTopologies(context.Background(), ids)
	if err != nil {
		b.Fatal(err)
	}
	store := fixedTopologies(topos)
	for _, size := range []int{60, 512} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			u, err := healthdb.NewUpdater(healthdb.UpdaterConfig{
				Store: store, Deleter: noCompute{}, Rules: healthdb.Rules{HeartbeatInterval: time.Hour}, Logger: quietLog(),
			})
			if err != nil {
				b.Fatal(err)
			}
			batch := make([]*heartbeat.Message, 0, size)
			next := 0
			b.ReportAllocs()
			start := processCPU(b)
			for done := 0; done < b.N; {
				batch = batch[:0]
				now := time.Now()
				for len(batch) < size && done+len(batch) < b.N {
					m := msgs[next%fleet]
					m.RecvTime = now
					batch = append(batch, m)
					next++
				}
				if _, err := u.ApplyBatch(context.Background(), batch); err != nil {
					b.Fatal(err)
				}
				done += len(batch)
			}
			b.ReportMetric(float64(processCPU(b)-start)/float64(b.N), "cpu-ns/op")
		})
	}
}

func processCPU(b *testing.B) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// fixedTopologies is a store that hands out the same topologies every
// batch and writes nothing.
type fixedTopologies map[string]*healthdb.Topology

func (f fixedTopologies) LoadTopologies(_ context.Context, ids []string) (map[string]*healthdb.Topology, error) {
	out := make(map[string]*healthdb.Topology, len(ids))
	for _, id := range ids {
		if t := f[id]; t != nil {
			out[id] = t
		}
	}
	return out, nil
}

func (fixedTopologies) Apply(context.Context, *healthdb.Writes) error { return nil }
