package agent

import (
	"net"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/octavia-vpp/health/vpp/sim"
)

// TestAgentNotifiesSystemd runs the agent under a fake systemd: READY=1
// only after the first heartbeat went out, WATCHDOG=1 pings while healthy,
// STOPPING=1 at shutdown.
func TestAgentNotifiesSystemd(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", path)
	t.Setenv("WATCHDOG_USEC", "40000") // a ping every 20 ms
	t.Setenv("WATCHDOG_PID", "")

	ctl, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.Close()
	p := newFakeProber()
	p.set("10.0.0.1", "pass")
	p.set("10.0.0.2", "pass")
	ta := newTestAgent(t, agentLB, sim.New(sim.Config{Logger: quietLogger()}), p, func(c *Config) {
		c.Controllers = []string{ctl.LocalAddr().String()}
	})

	var got []string
	sentBeforeReady := false
	buf := make([]byte, 256)
	read := func() string {
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("no notification after %q: %v", got, err)
		}
		return string(buf[:n])
	}
	for !slices.Contains(got, "WATCHDOG=1") {
		msg := read()
		if msg == "READY=1" {
			sentBeforeReady = !ta.Sensor().Record().LastSend.IsZero()
		}
		got = append(got, msg)
	}
	ta.stop()
	for got[len(got)-1] != "STOPPING=1" {
		got = append(got, read())
	}
	if got[0] != "READY=1" {
		t.Errorf("first notification %q; want READY=1 (all: %q)", got[0], got)
	}
	if !sentBeforeReady {
		t.Errorf("READY=1 sent before the first heartbeat")
	}
	if n := strings.Count(strings.Join(got, " "), "READY=1"); n != 1 {
		t.Errorf("READY=1 sent %d times", n)
	}
}
