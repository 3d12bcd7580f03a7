package udp

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/octavia-vpp/health/heartbeat"
	"github.com/octavia-vpp/health/internal/testproc"
)

// A burst several times the read batch, of every size up to the largest
// UDP payload, is read whole over either address family: each datagram is
// delivered or rejected (or counted lost), byte counts add up, and the
// source address reaches the log.
func TestReceiverReadsBurstsOverBothFamilies(t *testing.T) {
	tests := []struct {
		name, addr string
		largest    int
	}{
		{"IPv4", "127.0.0.1:0", 65_507},
		{"IPv6", "[::1]:0", 65_527},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kr := keyring(t, "k")
			reg := prometheus.NewRegistry()
			metrics := NewReceiverMetrics(reg)
			stamp := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
			var mu sync.Mutex
			delivered := map[string]bool{}
			var badStamps, lost atomic.Int64
			logs := &testproc.Output{}
			r, err := NewReceiver(ReceiverConfig{
				Addr: netip.MustParseAddrPort(tt.addr), Sockets: 1, Workers: 2,
				ReceiveBuffer: 4 << 20, QueueSize: 4096,
				Keys: func() *heartbeat.Keyring { return kr },
				Deliver: func(m *heartbeat.Message) {
					if !m.RecvTime.Equal(stamp) {
						badStamps.Add(1)
					}
					mu.Lock()
					delivered[m.AmphoraID] = true
					mu.Unlock()
				},
				Lost:    func(n int) { lost.Add(int64(n)) },
				Metrics: metrics, Logger: slog.New(slog.NewTextHandler(logs, nil)),
				Now: func() time.Time { return stamp },
			})
			if err != nil {
				t.Skipf("cannot listen on %s: %v", tt.addr, err)
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
			var burst [][]byte
			const valid = 3 * readBatchForTest
			for i := range valid {
				burst = append(burst, kr.SealMessage(&heartbeat.Message{AmphoraID: fmt.Sprintf("amp-%d", i),
					Version: 3, HasVersion: true, Listeners: []heartbeat.Listener{}, Pools: []heartbeat.Pool{}}))
				burst = append(burst, bytes.Repeat([]byte{byte(i)}, 64+i*97%1400))
			}
			burst = append(burst, make([]byte, tt.largest), []byte("short"))
			sentBytes := 0
			for _, d := range burst {
				if _, err := conn.Write(d); err != nil {
					t.Fatal(err)
				}
				sentBytes += len(d)
			}
			rejected := func() int64 {
				return int64(testutil.ToFloat64(metrics.Rejected.WithLabelValues("bad_mac")) +
					testutil.ToFloat64(metrics.Rejected.WithLabelValues("short")))
			}
			accounted := func() int64 {
				mu.Lock()
				defer mu.Unlock()
				return int64(len(delivered)) + rejected() + lost.Load()
			}
			deadline := time.Now().Add(10 * time.Second)
			for accounted() < int64(len(burst)) && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if got := accounted(); got != int64(len(burst)) {
				t.Fatalf("%d sent, %d delivered, rejected or lost", len(burst), got)
			}
			if badStamps.Load() != 0 {
				t.Errorf("%d messages without the reader's stamp", badStamps.Load())
			}
			if lost.Load() > 0 {
				t.Logf("%d lost on a busy machine; byte and delivery counts not checked", lost.Load())
				return
			}
			if len(delivered) != valid {
				t.Errorf("%d of %d valid heartbeats delivered", len(delivered), valid)
			}
			if n := testutil.ToFloat64(metrics.Datagrams); n != float64(len(burst)) {
				t.Errorf("datagrams %v, want %d", n, len(burst))
			}
			if n := testutil.ToFloat64(metrics.Bytes); n != float64(sentBytes) {
				t.Errorf("bytes %v, want %d", n, sentBytes)
			}
			src := conn.LocalAddr().(*net.UDPAddr).AddrPort().Addr().String()
			if !strings.Contains(logs.String(), "srcaddr="+src) {
				t.Errorf("no rejection logged with srcaddr=%s:\n%s", src, logs.String())
			}
		})
	}
}

// Copies are independent of the read buffer and of each other, and small
// ones cost no allocation of their own.
func TestSlabCopies(t *testing.T) {
	var s slab
	src := []byte("heartbeat")
	a := s.copy(src)
	b := s.copy([]byte("next"))
	src[0] = 'X'
	_ = append(a, "overflow"...)
	if string(a) != "heartbeat" || string(b) != "next" {
		t.Errorf("copies %q %q changed with their source or neighbour", a, b)
	}
	big := s.copy(make([]byte, 2*slabSize))
	if len(big) != 2*slabSize {
		t.Errorf("a datagram larger than a slab copied as %d bytes", len(big))
	}
	payload := make([]byte, 100)
	if n := testing.AllocsPerRun(1000, func() { s.copy(payload) }); n != 0 {
		t.Errorf("%v allocations per small copy", n)
	}
}
