package sim_test

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/octavia-vpp/health/vpp"
	"github.com/octavia-vpp/health/vpp/sim"
)

// A drain on the simulator: weight 0 keeps existing flows, new ones go
// elsewhere, and the counters say so.
func Example() {
	ctx := context.Background()
	dp := sim.New(sim.Config{})
	k := vpp.VIPKey{Prefix: netip.MustParsePrefix("192.0.2.10/32"), Protocol: vpp.ProtoTCP, Port: 80}
	b1, b2 := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	res, _ := dp.SyncVIP(ctx, vpp.VIP{Key: k, Backends: []vpp.Backend{{Addr: b1, Weight: 100}, {Addr: b2, Weight: 100}}})
	fmt.Printf("created=%v added=%d\n", res.Created, res.Added)

	_ = dp.SendFlows(k, 4, 3, 100) // 4 flows of 3 packets of 100 bytes
	_, _ = dp.SyncVIP(ctx, vpp.VIP{Key: k, Backends: []vpp.Backend{{Addr: b1, Weight: 100}, {Addr: b2, Weight: 0}}})
	_ = dp.SendFlows(k, 2, 1, 100)

	c, _ := dp.Counters().VIP(k)
	fmt.Printf("first=%d next=%d route_bytes=%d flows b1=%d b2=%d\n",
		c.FirstPackets, c.NextPackets, c.RouteBytes, c.Flows[b1], c.Flows[b2])

	dp.Restart()
	st := dp.State()
	vips, _ := dp.VIPs(ctx)
	fmt.Printf("generation=%d vips=%d backends=%d\n", st.Generation, len(vips), len(vips[0].Backends))
	// Output:
	// created=true added=2
	// first=6 next=8 route_bytes=1400 flows b1=4 b2=2
	// generation=2 vips=1 backends=2
}
