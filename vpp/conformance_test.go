package vpp_test

import (
	"testing"

	"github.com/octavia-vpp/health/vpp"
	"github.com/octavia-vpp/health/vpp/internal/dptest"
	"github.com/octavia-vpp/health/vpp/internal/fakevpp"
)

// TestConformance runs the shared Dataplane table (the same one the
// simulator passes) against Govpp on a fake VPP, in both dialects.
func TestConformance(t *testing.T) {
	for _, tc := range []struct {
		name   string
		flavor fakevpp.Flavor
	}{{"cli-dialect-released-vpp", fakevpp.Released}, {"binapi-dialect-master-vpp", fakevpp.Master}} {
		t.Run(tc.name, func(t *testing.T) {
			dptest.Run(t, func(t *testing.T) *dptest.Harness {
				e := vpp.StartFakeForTest(t, tc.flavor, true)
				return &dptest.Harness{
					DP:       e.G,
					Weighted: e.G.State().Weighted,
					SendFlows: func(k vpp.VIPKey, n int) {
						if err := e.Srv.Model().SendFlows(fakevpp.Key{Prefix: k.Prefix, Protocol: uint8(k.Protocol), Port: k.Port}, n, 2, 100); err != nil {
							t.Fatal(err)
						}
					},
					Scrape:  e.ScrapeNow,
					Restart: e.Restart,
				}
			})
		})
	}
}
