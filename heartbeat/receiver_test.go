package heartbeat

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestReceiverOpensDeliversAndCounts(t *testing.T) {
	kr := keyring(t, "new-key", "old-key")
	var mu sync.Mutex
	got := map[string]Verified{}
	delivered := make(chan struct{}, 100)
	reg := prometheus.NewRegistry()
	metrics := NewReceiverMetrics(reg)
	stamp := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	r, err := NewReceiver(ReceiverConfig{
		Addr: netip.MustParseAddrPort("127.0.0.1:0"), Sockets: 2, Workers: 2,
		Keys: func() *Keyring { return kr },
		Deliver: func(m *Message, v Verified) {
			if !m.RecvTime.Equal(stamp) {
				t.Errorf("recv time %v, want the reader's stamp", m.RecvTime)
			}
			mu.Lock()
			got[m.AmphoraID] = v
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
	msg := func(id string) *Message {
		return &Message{AmphoraID: id, Version: 3, HasVersion: true, Listeners: []Listener{}, Pools: []Pool{}}
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
	if got["amp-new"] != (Verified{0, MACHex}) || got["amp-old"] != (Verified{1, MACHex}) || len(got) != 2 {
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
