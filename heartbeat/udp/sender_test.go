package udp

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"
)

func TestParseController(t *testing.T) {
	for _, c := range []struct {
		in      string
		host    string
		port    uint16
		wantErr bool
	}{
		{in: "192.0.2.20:80", host: "192.0.2.20", port: 80},
		{in: " 192.0.2.20:5555 ", host: "192.0.2.20", port: 5555},
		{in: "2001:0db8::f00d:80", host: "2001:0db8::f00d", port: 80},
		{in: "2001:db8::1:5555", host: "2001:db8::1", port: 5555},
		{in: "[2001:db8::1]:5555", host: "2001:db8::1", port: 5555},
		{in: "fe80::00ff:fe00:cafe%eth0:80", host: "fe80::00ff:fe00:cafe%eth0", port: 80},
		{in: "[fe80::1%eth0]:5555", host: "fe80::1%eth0", port: 5555},
		{in: "hm.example.org:5555", host: "hm.example.org", port: 5555},
		{in: "192.0.2.20", wantErr: true},
		{in: "192.0.2.20:", wantErr: true},
		{in: "192.0.2.20:0", wantErr: true},
		{in: "192.0.2.20:70000", wantErr: true},
		{in: ":5555", wantErr: true},
		{in: "[2001:db8::1]5555", wantErr: true},
		{in: "[192.0.2.1]:5555", wantErr: true},
		{in: "[2001:db8::1:5555", wantErr: true},
		{in: "2001:db8:::zz:5555", wantErr: true},
	} {
		got, err := ParseController(c.in)
		if c.wantErr {
			if err == nil {
				t.Errorf("%q: no error, got %+v", c.in, got)
			}
			continue
		}
		if err != nil || got.Host != c.host || got.Port != c.port {
			t.Errorf("%q: got %+v, %v; want %s %d", c.in, got, err, c.host, c.port)
		}
	}
}

func TestNewSenderNamesEveryBadEntryAndKeepsTheRest(t *testing.T) {
	s, err := NewSender(SenderConfig{Controllers: []string{"bad1", "127.0.0.1:5555", "bad2:x", "127.0.0.1:5556"}, Logger: quietLog()})
	if err == nil {
		t.Fatal("no error")
	}
	for _, name := range []string{`"bad1"`, `"bad2:x"`} {
		if !contains(err.Error(), name) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
	if n := len(s.Stats()); n != 2 {
		t.Errorf("kept %d controllers, want 2", n)
	}
}

func contains(s, sub string) bool {
	return len(sub) == 0 || len(s) >= len(sub) && (s[:len(sub)] == sub || contains(s[1:], sub))
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestScoreboard(t *testing.T) {
	type step struct {
		pick   int  // expected pick
		ok     bool // result recorded for it
		scores []int
	}
	for _, c := range []struct {
		name  string
		n     int
		steps []step
	}{
		{"round robin while healthy", 3, []step{
			{0, true, []int{2, 1, 1}}, {1, true, []int{2, 2, 1}}, {2, true, []int{2, 2, 2}},
			{0, true, []int{3, 2, 2}}, {1, true, []int{3, 3, 2}}, {2, true, []int{3, 3, 3}},
			{0, true, []int{3, 3, 3}}, // bounded at +3
		}},
		{"a failing controller is skipped once negative", 2, []step{
			{0, true, []int{2, 1}}, {1, false, []int{2, 0}}, {0, true, []int{3, 0}},
			// two consecutive failures: it waits 2*RecoverEvery sends for a point back
			{1, false, []int{3, -1}}, {0, true, []int{3, -1}}, {0, true, []int{3, 0}},
			{1, true, []int{3, 1}}, {0, true, []int{3, 1}},
		}},
		{"all negative: round robin over all", 2, []step{
			{0, false, []int{0, 1}}, {1, false, []int{0, 0}}, {0, false, []int{-1, 0}},
			{1, false, []int{-1, -1}}, {0, false, []int{-2, -1}}, {1, false, []int{-2, -2}},
			{0, false, []int{-3, -2}}, {1, false, []int{-3, -3}}, {0, false, []int{-3, -3}},
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := NewScoreboard(c.n)
			b.RecoverEvery = 1
			for i, s := range c.steps {
				got := b.Pick()
				if got != s.pick {
					t.Fatalf("step %d: picked %d, want %d (scores %v)", i, got, s.pick, b.Scores)
				}
				b.Record(got, s.ok)
				for j := range s.scores {
					if b.Scores[j] != s.scores[j] {
						t.Fatalf("step %d: scores %v, want %v", i, b.Scores, s.scores)
					}
				}
			}
		})
	}
	if NewScoreboard(0).Pick() != -1 {
		t.Error("empty board picked something")
	}
}

func listenUDP(t *testing.T, addr string) *net.UDPConn {
	t.Helper()
	a, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.ListenUDP("udp", a)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// drain counts the datagrams waiting on c.
func drain(c *net.UDPConn) int {
	n := 0
	buf := make([]byte, 70000)
	for {
		_ = c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		if _, err := c.Read(buf); err != nil {
			return n
		}
		n++
	}
}

func TestSenderSkipsAClosedControllerAndComesBack(t *testing.T) {
	a := listenUDP(t, "127.0.0.1:0")
	defer a.Close()
	b := listenUDP(t, "127.0.0.1:0")
	bAddr := b.LocalAddr().String()
	s, err := NewSender(SenderConfig{Controllers: []string{a.LocalAddr().String(), bAddr}, RecoverEvery: 3, Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	send := func(n int) {
		t.Helper()
		for range n {
			_, _ = s.Send(ctx, []byte("hb"))
			time.Sleep(2 * time.Millisecond) // let a refusal come back
		}
	}
	send(4)
	if na, nb := drain(a), drain(b); na != 2 || nb != 2 {
		t.Fatalf("healthy: a got %d, b got %d; want 2 and 2", na, nb)
	}
	b.Close()
	send(6) // b's score goes 3 -> 2 -> 1 ... as refusals come back
	send(20)
	before := s.Stats()[1]
	send(20)
	after := s.Stats()[1]
	// Closed: b is only retried now and then (once per RecoverEvery+1 sends at best).
	if tries := after.Sent - before.Sent; tries > 3 {
		t.Errorf("closed controller tried %d times in 20 sends", tries)
	}
	if after.Score >= 0 && after.Errors == before.Errors {
		t.Errorf("closed controller: score %d, no new errors", after.Score)
	}
	drain(a)
	b = listenUDP(t, bAddr)
	defer b.Close()
	send(80)
	na, nb := drain(a), drain(b)
	if nb < 20 || na < 20 {
		t.Errorf("after reopening: a got %d, b got %d of 80", na, nb)
	}
}

func TestSenderRefusesOversizedHeartbeat(t *testing.T) {
	a := listenUDP(t, "127.0.0.1:0")
	defer a.Close()
	s, _ := NewSender(SenderConfig{Controllers: []string{a.LocalAddr().String()}, Logger: quietLog()})
	defer s.Close()
	_, err := s.Send(context.Background(), make([]byte, MaxDatagram+1))
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("got %v, want ErrTooLarge", err)
	}
	if _, err := s.Send(context.Background(), make([]byte, 100)); err != nil {
		t.Errorf("normal send: %v", err)
	}
	empty, _ := NewSender(SenderConfig{Logger: quietLog()})
	if _, err := empty.Send(context.Background(), []byte("x")); !errors.Is(err, ErrNoController) {
		t.Errorf("empty list: got %v", err)
	}
}

func TestSenderResolvesHostNames(t *testing.T) {
	a := listenUDP(t, "127.0.0.1:0")
	defer a.Close()
	_, port, _ := net.SplitHostPort(a.LocalAddr().String())
	s, err := NewSender(SenderConfig{Controllers: []string{"localhost:" + port}, Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctl, err := s.Send(context.Background(), []byte("hb"))
	if err != nil || ctl != "localhost:"+port {
		t.Fatalf("send: %q %v", ctl, err)
	}
	if ap, err := netip.ParseAddrPort(s.Stats()[0].Addr); err != nil || !ap.Addr().IsLoopback() {
		t.Errorf("localhost resolved to %q", s.Stats()[0].Addr)
	}
	// The list changes: the new one is resolved and used.
	b := listenUDP(t, "127.0.0.1:0")
	defer b.Close()
	if err := s.SetControllers([]string{b.LocalAddr().String()}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Send(context.Background(), []byte("hb")); err != nil {
		t.Fatal(err)
	}
	if nb := drain(b); nb != 1 {
		t.Errorf("after the list changed the new controller got %d", nb)
	}
	if st := s.Stats(); len(st) != 1 || st[0].Sent != 1 || st[0].Addr != b.LocalAddr().String() {
		t.Errorf("stats %+v", st)
	}
}
