package healthdb

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/octavia-vpp/health/heartbeat"
)

func benchUUID(r *rand.Rand) string {
	hi, lo := r.Uint64(), r.Uint64()
	hi = hi&^0xf000 | 0x4000
	lo = lo&^(0xc<<60) | 0x8<<60
	return fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", hi>>32, hi>>16&0xffff, hi&0xffff, lo>>48, lo&0xffffffffffff)
}

// steadyState is one amphora with two listeners and one pool each,
// perPool members per pool, random UUIDs, and a V3 heartbeat that matches
// the database (the common case: nothing changes). The message lists
// members in another order than the topology (id order), as an agent may.
func steadyState(perPool int) (*Topology, *heartbeat.Message) {
	r := rand.New(rand.NewPCG(uint64(perPool), 21))
	lb := &LoadBalancer{ID: benchUUID(r), Enabled: true, ProvisioningStatus: "ACTIVE", OperatingStatus: StatusOnline}
	m := &heartbeat.Message{AmphoraID: benchUUID(r), Version: 3, HasVersion: true, RecvTime: now.Add(-time.Second)}
	for l := 0; l < 2; l++ {
		lid, pid := benchUUID(r), benchUUID(r)
		lb.Listeners = append(lb.Listeners, Listener{ID: lid, OperatingStatus: StatusOnline, Protocol: "HTTP", Enabled: true})
		m.Listeners = append(m.Listeners, heartbeat.Listener{ID: lid, Status: "OPEN", HasStats: true})
		pool := Pool{ID: pid, OperatingStatus: StatusOnline}
		reported := heartbeat.Pool{Key: pid + ":" + lid, Status: "UP"}
		for i := 0; i < perPool; i++ {
			id := benchUUID(r)
			pool.Members = append(pool.Members, Member{ID: id, OperatingStatus: StatusOnline})
			reported.Members = append(reported.Members, heartbeat.Member{ID: id, Status: "UP"})
		}
		sort.Slice(pool.Members, func(i, j int) bool { return pool.Members[i].ID < pool.Members[j].ID })
		lb.Pools = append(lb.Pools, pool)
		m.Pools = append(m.Pools, reported)
	}
	sort.Slice(lb.Listeners, func(i, j int) bool { return lb.Listeners[i].ID < lb.Listeners[j].ID })
	sort.Slice(lb.Pools, func(i, j int) bool { return lb.Pools[i].ID < lb.Pools[j].ID })
	return &Topology{AmphoraID: m.AmphoraID, AmphoraExists: true, LB: lb}, m
}

// BenchmarkDecide is the status rules for one heartbeat as the member count
// grows (two pools): ns/op over members is the per-member cost.
func BenchmarkDecide(b *testing.B) {
	for _, perPool := range []int{2, 10, 50, 500} {
		topo, m := steadyState(perPool)
		b.Run("members="+strconv.Itoa(2*perPool), func(b *testing.B) {
			b.ReportAllocs()
			start := selfCPU()
			for b.Loop() {
				d := Decide(topo, m, now, rules)
				if d.Health != HealthWrite || len(d.Members) != 0 || d.LoadBalancer != nil {
					b.Fatalf("unexpected decision %+v", d)
				}
			}
			b.ReportMetric(float64(selfCPU()-start)/float64(b.N), "cpu-ns/op")
		})
	}
}
