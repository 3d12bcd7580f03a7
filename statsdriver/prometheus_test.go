package statsdriver

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestPrometheusDriver(t *testing.T) {
	reg := prometheus.NewRegistry()
	p, err := NewPrometheus(reg, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	clock := time.Unix(1_000_000, 0)
	p.now = func() time.Time { return clock }
	ctx := context.Background()
	// Two amphorae report listener l1 (ACTIVE_STANDBY); V3 deltas add up,
	// an absolute report sets its amphora's share.
	p.Update(ctx, []ListenerStats{lst("l1", "a1", 100, 10, 3, 5, 1)}, true)
	p.Update(ctx, []ListenerStats{lst("l1", "a1", 50, 5, 4, 2, 0)}, true)
	p.Update(ctx, []ListenerStats{lst("l1", "a2", 1000, 100, 2, 20, 2)}, false)
	p.Update(ctx, []ListenerStats{lst("l2", "a1", 7, 7, 0, 1, 0)}, true)
	want := `
# HELP octavia_hm_listener_active_connections A listener's current connections, summed over its amphorae.
# TYPE octavia_hm_listener_active_connections gauge
octavia_hm_listener_active_connections{listener_id="l1"} 6
octavia_hm_listener_active_connections{listener_id="l2"} 0
# HELP octavia_hm_listener_bytes_in_total Bytes received by a listener, from heartbeats.
# TYPE octavia_hm_listener_bytes_in_total counter
octavia_hm_listener_bytes_in_total{listener_id="l1"} 1150
octavia_hm_listener_bytes_in_total{listener_id="l2"} 7
# HELP octavia_hm_listener_bytes_out_total Bytes sent by a listener, from heartbeats.
# TYPE octavia_hm_listener_bytes_out_total counter
octavia_hm_listener_bytes_out_total{listener_id="l1"} 115
octavia_hm_listener_bytes_out_total{listener_id="l2"} 7
# HELP octavia_hm_listener_connections_total Connections a listener has handled, from heartbeats.
# TYPE octavia_hm_listener_connections_total counter
octavia_hm_listener_connections_total{listener_id="l1"} 27
octavia_hm_listener_connections_total{listener_id="l2"} 1
# HELP octavia_hm_listener_request_errors_total Request errors of a listener, from heartbeats.
# TYPE octavia_hm_listener_request_errors_total counter
octavia_hm_listener_request_errors_total{listener_id="l1"} 3
octavia_hm_listener_request_errors_total{listener_id="l2"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	// A pair silent for longer than the expiry is forgotten.
	clock = clock.Add(30 * time.Minute)
	p.Update(ctx, []ListenerStats{lst("l1", "a1", 0, 0, 1, 0, 0)}, true)
	clock = clock.Add(45 * time.Minute)
	if n := testutil.CollectAndCount(p, "octavia_hm_listener_bytes_in_total"); n != 1 {
		t.Errorf("%d listeners after l2 and a2 expired, want 1", n)
	}
	if _, err := Open("prometheus", Deps{}); err == nil {
		t.Error("the prometheus driver opened without a registry")
	}
}
