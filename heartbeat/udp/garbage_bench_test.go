package udp

import (
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
