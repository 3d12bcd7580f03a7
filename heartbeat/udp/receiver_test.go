package udp

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/octavia-vpp/health/heartbeat"
)

func TestReceiverOpensDeliversAndCounts(t *testing.T) {
	kr := keyring(t, "new-key", "old-key")
	var mu sync.Mutex
	got := map[string]bool{}
	delivered := make(chan struct{}, 100)
	reg := prometheus.NewRegistry()
	metrics := NewReceiverMetrics(reg)
	stamp := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	r, err := NewReceiver(ReceiverConfig{
		Addr: netip.MustParseAddrPort("127.0.0.1:0"), Sockets: 2, Workers: 2,
		Keys: func() *heartbeat.Keyring { return kr },
		Deliver: func(m *heartbeat.Message) {
			if !m.RecvTime.Equal(stamp) {
				t.Errorf("recv time %v, want the reader's stamp", m.RecvTime)
			}
			mu.Lock()
			got[m.AmphoraID] = true
			mu.Unlock()
			delivered <- struct{}{}
		},
		Metrics: metrics, Logger: quiet(), Now: func() time.Time { return stamp },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()

	conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(r.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	msg := func(id string) *heartbeat.Message {
		return &heartbeat.Message{AmphoraID: id, Version: 3, HasVersion: true, Listeners: []heartbeat.Listener{}, Pools: []heartbeat.Pool{}}
	}
	old := keyring(t, "old-key")
	for _, d := range [][]byte{
		kr.SealMessage(msg("amp-new")),
		old.SealMessage(msg("amp-old")),
		keyring(t, "stranger").SealMessage(msg("amp-forged")),
		[]byte("short"),
		kr.Seal([]byte(`["not", "an", "object"]`)),
	} {
		if _, err := conn.Write(d); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		select {
		case <-delivered:
		case <-time.After(10 * time.Second):
			t.Fatal("messages not delivered")
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for testutil.ToFloat64(metrics.Rejected.WithLabelValues("not_object")) < 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done

	mu.Lock()
	defer mu.Unlock()
	if !got["amp-new"] || !got["amp-old"] || len(got) != 2 {
		t.Errorf("delivered %v", got)
	}
	for reason, want := range map[string]float64{"bad_mac": 1, "short": 1, "not_object": 1, "not_zlib": 0} {
		if n := testutil.ToFloat64(metrics.Rejected.WithLabelValues(reason)); n != want {
			t.Errorf("rejected %s = %v, want %v", reason, n, want)
		}
	}
	if n := testutil.ToFloat64(metrics.Datagrams); n != 5 {
		t.Errorf("datagrams %v, want 5", n)
	}
	if n := testutil.ToFloat64(metrics.Accepted.WithLabelValues("previous", "hex")); n != 1 {
		t.Errorf("accepted with the previous key: %v", n)
	}
	if n := testutil.ToFloat64(metrics.Accepted.WithLabelValues("primary", "hex")); n != 1 {
		t.Errorf("accepted with the primary key: %v", n)
	}
}

func TestLogLimiter(t *testing.T) {
	l := newLogLimiter(time.Hour)
	if _, ok := l.allow("bad_mac"); !ok {
		t.Fatal("first line suppressed")
	}
	for range 5 {
		if _, ok := l.allow("bad_mac"); ok {
			t.Fatal("a repeat within the period was let through")
		}
	}
	if _, ok := l.allow("short"); !ok {
		t.Error("another reason was suppressed")
	}
	l.last["bad_mac"] = time.Now().Add(-2 * time.Hour)
	if n, ok := l.allow("bad_mac"); !ok || n != 5 {
		t.Errorf("after the period: %d suppressed, %v", n, ok)
	}
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// Datagrams lost before they are opened, whether the kernel dropped them
// for want of socket buffer or the receive queue was full, are counted and
// reported to Lost, so that the health manager knows heartbeats may be
// missing.
func TestReceiverReportsLostDatagrams(t *testing.T) {
	tests := []struct {
		name string
		// buffer is SO_RCVBUF; queue the receive queue's bound.
		buffer, queue int
		// readFirst starts reading before the burst (else after it).
		readFirst bool
		// blockOpening holds the worker until the burst is over.
		blockOpening bool
		label        string
	}{
		{name: "socket buffer overflow", buffer: 1, queue: 1024, label: "socket"},
		{name: "receive queue full", buffer: 4 << 20, queue: 1, readFirst: true, blockOpening: true, label: "receive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const burst = 300
			reg := prometheus.NewRegistry()
			metrics := NewReceiverMetrics(reg)
			kr := keyring(t, "k")
			release := make(chan struct{})
			var releaseOnce sync.Once
			defer releaseOnce.Do(func() { close(release) })
			var lost atomic.Int64
			r, err := NewReceiver(ReceiverConfig{
				Addr: netip.MustParseAddrPort("127.0.0.1:0"), Sockets: 1, Workers: 1,
				ReceiveBuffer: tt.buffer, QueueSize: tt.queue,
				Keys: func() *heartbeat.Keyring {
					if tt.blockOpening {
						<-release
					}
					return kr
				},
				Deliver: func(*heartbeat.Message) {},
				Lost:    func(n int) { lost.Add(int64(n)) },
				Metrics: metrics, Logger: quiet(),
			})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			run := func() { go func() { r.Run(ctx); close(done) }() }
			if tt.readFirst {
				run()
			}
			conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(r.Addr()))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			// Garbage: each one is either lost or rejected as bad_mac.
			garbage := make([]byte, 1000)
			sent := 0
			send := func() {
				if _, err := conn.Write(garbage); err != nil {
					t.Fatal(err)
				}
				sent++
			}
			for range burst {
				send()
			}
			if !tt.readFirst {
				run()
				// The kernel reports its drop count with the datagrams
				// queued after the drops.
				for range 5 {
					time.Sleep(20 * time.Millisecond)
					send()
				}
			}
			time.Sleep(100 * time.Millisecond)
			releaseOnce.Do(func() { close(release) })
			rejected := func() int64 { return int64(testutil.ToFloat64(metrics.Rejected.WithLabelValues("bad_mac"))) }
			deadline := time.Now().Add(10 * time.Second)
			for lost.Load()+rejected() != int64(sent) && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			cancel()
			<-done
			if lost.Load() == 0 || lost.Load()+rejected() != int64(sent) {
				t.Errorf("%d sent: %d reported lost, %d rejected; want some lost and every one accounted for",
					sent, lost.Load(), rejected())
			}
			if n := int64(testutil.ToFloat64(metrics.Dropped.WithLabelValues(tt.label, map[string]string{
				"socket": "buffer_full", "receive": "queue_full"}[tt.label]))); n != lost.Load() {
				t.Errorf("queue_dropped_total{queue=%q} = %d; want the %d reported lost", tt.label, n, lost.Load())
			}
		})
	}
}
