package udp

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/octavia-vpp/health/heartbeat"
)

// stamped is a message of our agent: amphora, boot, seq, ts.
func stamped(amphora, boot string, seq, ts int64) *heartbeat.Message {
	return &heartbeat.Message{AmphoraID: amphora, Seq: seq, HasSeq: true, Version: 3, HasVersion: true,
		Timestamp: ts, HasTimestamp: true, Boot: boot, HasBoot: true}
}

func stock(amphora string, seq int64) *heartbeat.Message {
	return &heartbeat.Message{AmphoraID: amphora, Seq: seq, HasSeq: true, Version: 3, HasVersion: true}
}

// TestReceiverCountsReplayRefusals wires the guard into a receiver as
// serve does: a refusal is counted by its reason, never delivered, and
// never counted as accepted.
func TestReceiverCountsReplayRefusals(t *testing.T) {
	kr := keyring(t, "k")
	guard := heartbeat.NewReplayGuard(time.Minute, 0)
	delivered := make(chan *heartbeat.Message, 10)
	metrics := NewReceiverMetrics(prometheus.NewRegistry())
	r, err := NewReceiver(ReceiverConfig{
		Addr: netip.MustParseAddrPort("127.0.0.1:0"), Sockets: 1, Workers: 2,
		Keys:    func() *heartbeat.Keyring { return kr },
		Check:   func(m *heartbeat.Message) error { return guard.Check(m, m.RecvTime) },
		Deliver: func(m *heartbeat.Message) { delivered <- m },
		Metrics: metrics, Logger: quiet(),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(r.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	send := func(m *heartbeat.Message) {
		t.Helper()
		m.Listeners, m.Pools = []heartbeat.Listener{}, []heartbeat.Pool{}
		if _, err := conn.Write(kr.SealMessage(m)); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now().Unix()
	waitDelivered := func(id string) {
		t.Helper()
		select {
		case m := <-delivered:
			if m.AmphoraID != id {
				t.Fatalf("delivered %s, want %s", m.AmphoraID, id)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s not delivered", id)
		}
	}
	waitRejected := func(reason string, n float64) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for testutil.ToFloat64(metrics.Rejected.WithLabelValues(reason)) < n {
			if time.Now().After(deadline) {
				t.Fatalf("%s not counted", reason)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	// One at a time, so that the workers cannot reorder them.
	send(stamped("amp-1", "b", 1, now))
	waitDelivered("amp-1")
	send(stamped("amp-1", "b", 1, now))
	waitRejected("replay_not_newer", 1)
	send(stamped("amp-1", "b", 2, now-3600))
	waitRejected("replay_ts_outside_window", 1)
	send(stock("amp-stock", 1))
	waitDelivered("amp-stock")
	send(stock("amp-stock", 1))
	waitDelivered("amp-stock")
	if n := testutil.ToFloat64(metrics.Accepted.WithLabelValues("primary", "hex")); n != 3 {
		t.Errorf("accepted %v, want 3", n)
	}
	select {
	case m := <-delivered:
		t.Errorf("a refused message was delivered: %+v", m)
	default:
	}
}
