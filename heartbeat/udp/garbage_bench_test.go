package udp

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/octavia-vpp/health/heartbeat"
)

// BenchmarkReceiverOpenGarbage is a worker's whole cost for that datagram:
// opening it, counting the rejection and passing the log limiter.
func BenchmarkReceiverOpenGarbage(b *testing.B) {
	kr := keyring(b, "insecure", "previous")
	r, err := NewReceiver(ReceiverConfig{
		Addr: netip.MustParseAddrPort("127.0.0.1:0"), Sockets: 1,
		Keys: func() *heartbeat.Keyring { return kr }, Deliver: func(*heartbeat.Message) {},
		Metrics: NewReceiverMetrics(prometheus.NewRegistry()), Logger: quiet(),
	})
	if err != nil {
		b.Fatal(err)
	}
	defer r.closeConns()
	rng := rand.New(rand.NewPCG(1, 2))
	d := datagram{data: make([]byte, 800)}
	for i := range d.data {
		d.data[i] = byte(rng.Uint32())
	}
	b.ReportAllocs()
	for b.Loop() {
		r.open(d)
	}
}

// BenchmarkReceiverOpenValid is a worker's whole cost for a valid typical
// heartbeat (two listeners, two pools of ten members): opening it,
// counting and timing it, and handing it on.
func BenchmarkReceiverOpenValid(b *testing.B) {
	kr := keyring(b, "insecure")
	r, err := NewReceiver(ReceiverConfig{
		Addr: netip.MustParseAddrPort("127.0.0.1:0"), Sockets: 1,
		Keys: func() *heartbeat.Keyring { return kr }, Deliver: func(*heartbeat.Message) {},
		Metrics: NewReceiverMetrics(prometheus.NewRegistry()), Logger: quiet(),
	})
	if err != nil {
		b.Fatal(err)
	}
	defer r.closeConns()
	msg := &heartbeat.Message{AmphoraID: "7d1b3a52-5f0e-4c1e-9d2a-0b6c8f4e2a11", Seq: 1, HasSeq: true, Version: 3, HasVersion: true}
	for l := range 2 {
		listener := fmt.Sprintf("1c9e7f42-8a3b-4d5e-b6f7-%012d", l)
		msg.Listeners = append(msg.Listeners, heartbeat.Listener{ID: listener, Status: "OPEN", HasStats: true,
			Stats: heartbeat.Stats{TX: 1000, RX: 2000, Conns: 3, TotConns: 40}})
		pool := heartbeat.Pool{Key: fmt.Sprintf("5b2d8e61-3f4a-4c7b-a9d0-%012d:%s", l, listener), Status: "UP"}
		for m := range 10 {
			pool.Members = append(pool.Members, heartbeat.Member{ID: fmt.Sprintf("e4a7c9d2-6b1f-4e3a-8c5d-%012d", l*10+m), Status: "UP"})
		}
		msg.Pools = append(msg.Pools, pool)
	}
	d := datagram{data: kr.SealMessage(msg)}
	b.ReportAllocs()
	for b.Loop() {
		r.open(d)
	}
}
