package security

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/octavia-vpp/health/heartbeat"
)

// TestReplayedDatagramRejected captures real datagrams of a running
// amphora-agent and replays them to the health manager: with
// replay_window set a datagram is accepted once, its replay is refused,
// and a datagram held back for longer than the window is refused; a stock
// (Octavia-style, unstamped) heartbeat is accepted all the same. After
// replay_window is reloaded to 0 the same replays are accepted.
func TestReplayedDatagramRejected(t *testing.T) {
	const key = "replay-k3y"
	url, db := newDB(t)
	amps := seedAmphorae(t, db, 1)
	hm := startHealthManager(t, url, 60, "heartbeat_key = "+key+"\nreplay_window = 2\n")

	// The agent sends to the test, which captures two consecutive
	// heartbeats and stops it.
	capture, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer capture.Close()
	ag := startAgent(t, amps[0], key, capture.LocalAddr().String())
	read := func() []byte {
		buf := make([]byte, 65536)
		_ = capture.SetReadDeadline(time.Now().Add(30 * time.Second))
		n, _, err := capture.ReadFrom(buf)
		if err != nil {
			t.Fatalf("no heartbeat from the agent: %v\n%s", err, ag.log.String())
		}
		return buf[:n]
	}
	first, second := read(), read()
	heldSince := time.Now()
	ag.stop(t)
	kr, _ := heartbeat.NewKeyring(heartbeat.KeyringConfig{Keys: []string{key}})
	for _, d := range [][]byte{first, second} {
		m, _, err := kr.Open(d)
		if err != nil || !m.HasTimestamp || !m.HasBoot {
			t.Fatalf("the agent's heartbeat is not stamped: %+v %v", m, err)
		}
	}

	conn, err := net.Dial("udp", hm.udp)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	send := func(d []byte) {
		t.Helper()
		if _, err := conn.Write(d); err != nil {
			t.Fatal(err)
		}
	}
	accepted := func() float64 { return sum(hm.scrape(t), "octavia_hm_heartbeats_accepted_total") }
	expect := func(what string, wantAccepted float64, wantRejected map[string]float64) {
		t.Helper()
		waitFor(t, what, func() bool {
			m := hm.scrape(t)
			if sum(m, "octavia_hm_heartbeats_accepted_total") != wantAccepted {
				return false
			}
			for reason, n := range wantRejected {
				if m[rejected(reason)] != n {
					return false
				}
			}
			return true
		})
	}

	send(first)
	expect("the captured datagram accepted", 1, nil)
	send(first)
	expect("its replay refused", 1, map[string]float64{"replay_not_newer": 1})

	stock := kr.SealMessage(&heartbeat.Message{AmphoraID: amps[0].id, Seq: 1, HasSeq: true, Version: 3, HasVersion: true,
		Listeners: []heartbeat.Listener{}, Pools: []heartbeat.Pool{}})
	send(stock)
	send(stock)
	expect("a stock heartbeat accepted, replay or not", 3, map[string]float64{"replay_not_newer": 1})

	// second is newer than first, but held back longer than the window.
	time.Sleep(time.Until(heldSince.Add(3500 * time.Millisecond)))
	send(second)
	expect("a datagram older than the window refused", 3,
		map[string]float64{"replay_not_newer": 1, "replay_ts_outside_window": 1})
	if log := hm.log.String(); !strings.Contains(log, "reason=replay_not_newer") || !strings.Contains(log, amps[0].id) {
		t.Errorf("the rejection is not logged with its reason and amphora:\n%s", log)
	}

	hm.reload(t, "heartbeat_key = "+key+"\nreplay_window = 0\n")
	before := accepted()
	for _, d := range [][]byte{first, first, second} {
		send(d)
	}
	expect("replays accepted with the guard off", before+3,
		map[string]float64{"replay_not_newer": 1, "replay_ts_outside_window": 1})
	hm.stop(t)
}
