package agent

import (
	"bytes"
	"encoding/hex"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/octavia-vpp/health/heartbeat"
	"github.com/octavia-vpp/health/vpp/sim"
)

// TestAgentHeartbeatsAreStamped: every heartbeat carries "ts" and this
// run's "boot" after Octavia's fields, a restarted agent draws a new boot,
// and the controller's replay guard accepts the stream and refuses a
// datagram sent twice.
func TestAgentHeartbeatsAreStamped(t *testing.T) {
	hm, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hm.Close()
	kr, _ := heartbeat.NewKeyring(heartbeat.KeyringConfig{Keys: []string{"k"}})
	read := func() *heartbeat.Message {
		t.Helper()
		buf := make([]byte, 65536)
		_ = hm.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, _, err := hm.ReadFrom(buf)
		if err != nil {
			t.Fatalf("no heartbeat: %v", err)
		}
		m, _, err := kr.Open(buf[:n])
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		return m
	}
	start := func() *testAgent {
		return newTestAgent(t, agentLB, sim.New(sim.Config{Logger: quietLogger()}), newFakeProber(), func(c *Config) {
			c.Controllers = []string{hm.LocalAddr().String()}
			c.HeartbeatInterval = 20 * time.Millisecond
		})
	}
	guard := heartbeat.NewReplayGuard(time.Minute, 0)
	ta := start()
	var first *heartbeat.Message
	for i := range 3 {
		before := time.Now().Unix()
		m := read()
		if !m.HasTimestamp || m.Timestamp < before-5 || m.Timestamp > time.Now().Unix() {
			t.Errorf("heartbeat %d: ts %d (present %v), now %d", i, m.Timestamp, m.HasTimestamp, time.Now().Unix())
		}
		if b, err := hex.DecodeString(m.Boot); !m.HasBoot || err != nil || len(b) != 16 {
			t.Errorf("heartbeat %d: boot %q", i, m.Boot)
		}
		if first == nil {
			first = m
		} else if m.Boot != first.Boot || m.Seq <= first.Seq {
			t.Errorf("heartbeat %d: boot %q seq %d after boot %q seq %d", i, m.Boot, m.Seq, first.Boot, first.Seq)
		}
		if err := guard.Check(m, time.Now()); err != nil {
			t.Errorf("heartbeat %d refused: %v", i, err)
		}
		text := m.AppendJSON(nil)
		if !bytes.HasSuffix(text, []byte(`, "ver": 3, "ts": `+strconv.FormatInt(m.Timestamp, 10)+`, "boot": "`+m.Boot+`"}`)) {
			t.Errorf("heartbeat %d: the stamp is not after Octavia's fields: %s", i, text)
		}
		if i == 1 {
			if err := guard.Check(m, time.Now()); heartbeat.ReasonOf(err) != heartbeat.ReasonReplayNotNewer {
				t.Errorf("the same heartbeat twice: %v", err)
			}
		}
	}
	ta.stop()
	_ = hm.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	for buf := make([]byte, 65536); ; {
		if _, _, err := hm.ReadFrom(buf); err != nil {
			break // drained what the first run sent
		}
	}
	start()
	m := read()
	if m.Boot == first.Boot {
		t.Fatalf("a restarted agent kept boot %q", m.Boot)
	}
	if err := guard.Check(m, time.Now()); err != nil {
		t.Errorf("the restarted agent's heartbeat (seq %d) refused: %v", m.Seq, err)
	}
}
