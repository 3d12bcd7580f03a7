package udp

import (
	"bytes"
	"context"
	"fmt"
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

// fakeController is a real controller's heartbeat port as the shadow sees
// it: a loopback UDP socket that keeps every datagram it receives.
type fakeController struct {
	conn *net.UDPConn
	mu   sync.Mutex
	got  [][]byte
	done chan struct{}
}

func newFakeController(t *testing.T) *fakeController {
	t.Helper()
	conn, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadBuffer(4 << 20)
	c := &fakeController{conn: conn, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		buf := make([]byte, maxDatagram)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			c.mu.Lock()
			c.got = append(c.got, bytes.Clone(buf[:n]))
			c.mu.Unlock()
		}
	}()
	t.Cleanup(func() { conn.Close(); <-c.done })
	return c
}

func (c *fakeController) addr() netip.AddrPort { return c.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

func (c *fakeController) received() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([][]byte(nil), c.got...)
}

// TestForwarderDeliversEveryDatagram counts on both sides: every datagram
// sent to the shadow, valid or not, reaches exactly one of the real
// controllers, byte for byte, in turn; and the shadow still opens and
// delivers the valid ones itself.
func TestForwarderDeliversEveryDatagram(t *testing.T) {
	const n = 300
	kr := keyring(t, "key")
	ctrls := []*fakeController{newFakeController(t), newFakeController(t)}
	reg := prometheus.NewRegistry()
	fm := NewForwarderMetrics(reg)
	fwd, err := NewForwarder([]netip.AddrPort{ctrls[0].addr(), ctrls[1].addr()}, fm, quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer fwd.Close()
	rm := NewReceiverMetrics(reg)
	var delivered atomic.Int64
	r, err := NewReceiver(ReceiverConfig{
		Addr: netip.MustParseAddrPort("127.0.0.1:0"), Sockets: 2, Workers: 2, ReceiveBuffer: 4 << 20,
		Keys:    func() *heartbeat.Keyring { return kr },
		Forward: fwd.Forward,
		Deliver: func(*heartbeat.Message) { delivered.Add(1) },
		Metrics: rm, Logger: quiet(),
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
	sent := map[string]bool{}
	valid := 0
	for i := range n {
		var d []byte
		switch i % 3 {
		case 0, 1: // a heartbeat, unique by its amphora id
			d = kr.SealMessage(&heartbeat.Message{AmphoraID: fmt.Sprintf("amp-%d", i), Version: 3, HasVersion: true,
				Listeners: []heartbeat.Listener{}, Pools: []heartbeat.Pool{}})
			valid++
		case 2: // one Octavia would reject: forwarded all the same
			d = []byte(fmt.Sprintf("not a heartbeat %d", i))
		}
		sent[string(d)] = true
		if _, err := conn.Write(d); err != nil {
			t.Fatal(err)
		}
		if i%50 == 49 {
			// Paced, so loopback buffers never overflow: the test is about
			// the forwarder, not the kernel.
			waitFor(t, func() bool { return total(ctrls) == i+1 })
		}
	}
	waitFor(t, func() bool { return total(ctrls) == n && delivered.Load() == int64(valid) })

	seen := map[string]bool{}
	for ci, c := range ctrls {
		got := c.received()
		if len(got) != n/2 {
			t.Errorf("controller %d received %d datagrams, want %d (round robin)", ci, len(got), n/2)
		}
		for _, d := range got {
			if !sent[string(d)] {
				t.Errorf("controller %d received a datagram never sent: %q", ci, d[:min(len(d), 40)])
			}
			if seen[string(d)] {
				t.Errorf("datagram forwarded twice")
			}
			seen[string(d)] = true
		}
		if v := testutil.ToFloat64(fm.Forwarded.WithLabelValues(c.addr().String())); v != n/2 {
			t.Errorf("forwarded_total{controller=%s} = %v, want %d", c.addr(), v, n/2)
		}
		if v := testutil.ToFloat64(fm.Errors.WithLabelValues(c.addr().String())); v != 0 {
			t.Errorf("forward_errors_total{controller=%s} = %v", c.addr(), v)
		}
	}
	if len(seen) != n {
		t.Errorf("%d distinct datagrams reached the controllers, want %d", len(seen), n)
	}
	if v := testutil.ToFloat64(rm.Datagrams); v != n {
		t.Errorf("shadow read %v datagrams, want %d", v, n)
	}
}

// TestForwarderCountsErrors: a datagram the kernel refuses to send is
// counted against its controller, and the turn still moves on.
func TestForwarderCountsErrors(t *testing.T) {
	good := newFakeController(t)
	// Port 0 cannot be sent to.
	bad := netip.MustParseAddrPort("127.0.0.1:0")
	reg := prometheus.NewRegistry()
	fm := NewForwarderMetrics(reg)
	fwd, err := NewForwarder([]netip.AddrPort{bad, good.addr()}, fm, quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer fwd.Close()
	for i := range 4 {
		fwd.Forward([]byte{byte(i)})
	}
	waitFor(t, func() bool { return len(good.received()) == 2 })
	if v := testutil.ToFloat64(fm.Errors.WithLabelValues(bad.String())); v != 2 {
		t.Errorf("errors for the bad controller = %v, want 2", v)
	}
	if v := testutil.ToFloat64(fm.Forwarded.WithLabelValues(good.addr().String())); v != 2 {
		t.Errorf("forwarded to the good controller = %v, want 2", v)
	}
	if got := good.received(); !bytes.Equal(got[0], []byte{1}) || !bytes.Equal(got[1], []byte{3}) {
		t.Errorf("good controller got %v, want [1] [3]", got)
	}
}

func TestResolveControllers(t *testing.T) {
	got, err := ResolveControllers(context.Background(), []string{"192.0.2.1:5555", " [2001:db8::1]:5556", "localhost:5557"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"192.0.2.1:5555", "[2001:db8::1]:5556"}
	for i, w := range want {
		if got[i].String() != w {
			t.Errorf("entry %d = %s, want %s", i, got[i], w)
		}
	}
	if len(got) != 3 || !got[2].Addr().IsLoopback() || got[2].Port() != 5557 {
		t.Errorf("localhost entry = %v", got)
	}
	if _, err := ResolveControllers(context.Background(), []string{"192.0.2.1"}); err == nil {
		t.Error("an entry without a port was accepted")
	}
}

func total(cs []*fakeController) int {
	n := 0
	for _, c := range cs {
		n += len(c.received())
	}
	return n
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
