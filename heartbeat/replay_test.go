package heartbeat

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// stamped is a message of our agent: amphora, boot, seq, ts.
func stamped(amphora, boot string, seq, ts int64) *Message {
	return &Message{AmphoraID: amphora, Seq: seq, HasSeq: true, Version: 3, HasVersion: true,
		Timestamp: ts, HasTimestamp: true, Boot: boot, HasBoot: true}
}

func stock(amphora string, seq int64) *Message {
	return &Message{AmphoraID: amphora, Seq: seq, HasSeq: true, Version: 3, HasVersion: true}
}

func TestReplayGuard(t *testing.T) {
	const t0 = 1_763_726_400 // receiver's clock, Unix seconds
	at := func(sec int64) time.Time { return time.Unix(sec, 500_000_000) }
	type step struct {
		msg  *Message
		now  int64
		want Reason // ReasonNone: accepted
	}
	for _, c := range []struct {
		name   string
		window time.Duration
		steps  []step
	}{
		{"off: a replay passes", 0, []step{
			{stamped("a", "b1", 1, t0), t0, ReasonNone},
			{stamped("a", "b1", 1, t0), t0, ReasonNone},
			{stamped("a", "b1", 1, t0-3600), t0, ReasonNone},
		}},
		{"stock messages are never checked", 10 * time.Second, []step{
			{stock("a", 5), t0, ReasonNone},
			{stock("a", 5), t0, ReasonNone},
			{stock("a", 1), t0, ReasonNone},
			{&Message{AmphoraID: "a"}, t0, ReasonNone},
		}},
		{"seq must grow within a boot", 10 * time.Second, []step{
			{stamped("a", "b1", 5, t0), t0, ReasonNone},
			{stamped("a", "b1", 5, t0), t0, ReasonReplayNotNewer},
			{stamped("a", "b1", 4, t0), t0, ReasonReplayNotNewer},
			{stamped("a", "b1", 6, t0), t0, ReasonNone},
			{stamped("a", "b1", 8, t0+1), t0 + 1, ReasonNone}, // a gap: heartbeats sent to another HM
			{stamped("a", "b1", 7, t0), t0 + 1, ReasonReplayNotNewer},
		}},
		{"a new boot resets seq; the replaced boot stays refused", 10 * time.Second, []step{
			{stamped("a", "b1", 100, t0), t0, ReasonNone},
			{stamped("a", "b2", 0, t0+1), t0 + 1, ReasonNone},
			{stamped("a", "b1", 101, t0), t0 + 1, ReasonReplayNotNewer},
			{stamped("a", "b2", 1, t0+1), t0 + 1, ReasonNone},
			{stamped("a", "b3", 0, t0+2), t0 + 2, ReasonNone},
			{stamped("a", "b1", 102, t0), t0 + 2, ReasonReplayNotNewer},
			{stamped("a", "b2", 2, t0+1), t0 + 2, ReasonReplayNotNewer},
		}},
		{"amphorae are independent", 10 * time.Second, []step{
			{stamped("a", "b1", 5, t0), t0, ReasonNone},
			{stamped("b", "b1", 5, t0), t0, ReasonNone},
			{stamped("b", "b1", 5, t0), t0, ReasonReplayNotNewer},
		}},
		{"ts must lie within ±window of the receiver's clock", 10 * time.Second, []step{
			{stamped("a", "b1", 1, t0-10), t0, ReasonNone},
			{stamped("a", "b1", 2, t0-11), t0, ReasonReplayWindow},
			{stamped("a", "b1", 3, t0+10), t0, ReasonNone},
			{stamped("a", "b1", 4, t0+11), t0, ReasonReplayWindow},
			{stamped("a", "b1", -9223372036854775808, -9223372036854775808), t0, ReasonReplayWindow},
			{stamped("a", "b1", 5, 9223372036854775807), t0, ReasonReplayWindow},
		}},
		{"a window rejection does not advance the sequence", 10 * time.Second, []step{
			{stamped("a", "b1", 9, t0-60), t0, ReasonReplayWindow},
			{stamped("a", "b1", 1, t0), t0, ReasonNone},
		}},
		{"after the entry is forgotten the window still refuses old replays", 10 * time.Second, []step{
			{stamped("a", "b1", 1, t0), t0, ReasonNone},
			{stamped("z", "b1", 1, t0+25), t0 + 25, ReasonNone}, // sweeps "a", idle for 2×window
			{stamped("a", "b1", 1, t0), t0 + 25, ReasonReplayWindow},
		}},
		{"incomplete or ill-typed fields", 10 * time.Second, []step{
			{&Message{AmphoraID: "a", Seq: 1, HasSeq: true, Timestamp: t0, HasTimestamp: true}, t0, ReasonReplayFields},
			{&Message{AmphoraID: "a", Seq: 1, HasSeq: true, Boot: "b1", HasBoot: true}, t0, ReasonReplayFields},
			{&Message{AmphoraID: "a", Timestamp: t0, HasTimestamp: true, Boot: "b1", HasBoot: true}, t0, ReasonReplayFields},
			{stamped("a", "", 1, t0), t0, ReasonReplayFields},
			{stamped("a", strings.Repeat("b", 65), 1, t0), t0, ReasonReplayFields},
			{stamped("a", strings.Repeat("b", 64), 1, t0), t0, ReasonNone},
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := NewReplayGuard(c.window, 0)
			for i, s := range c.steps {
				err := g.Check(s.msg, at(s.now))
				if got := ReasonOf(err); got != s.want {
					t.Errorf("step %d (%s boot %q seq %d ts %d at %d): %v, want %v",
						i, s.msg.AmphoraID, s.msg.Boot, s.msg.Seq, s.msg.Timestamp, s.now, err, s.want)
				}
				if err != nil && !strings.Contains(err.Error(), fmt.Sprintf("amphora %q", s.msg.AmphoraID)) {
					t.Errorf("step %d: %q does not name the amphora", i, err)
				}
			}
		})
	}
}

func TestReplayGuardSetWindow(t *testing.T) {
	now := time.Unix(1_763_726_400, 0)
	m := stamped("a", "b1", 1, now.Unix())
	g := NewReplayGuard(0, 0)
	if g.Check(m, now) != nil || g.Len() != 0 {
		t.Fatal("an off guard checks or remembers")
	}
	g.SetWindow(30 * time.Second)
	if err := g.Check(m, now); err != nil {
		t.Fatalf("first message after switching on: %v", err)
	}
	if ReasonOf(g.Check(m, now)) != ReasonReplayNotNewer {
		t.Fatal("replay accepted with the guard on")
	}
	g.SetWindow(0)
	if g.Len() != 0 {
		t.Errorf("switched off but remembers %d amphorae", g.Len())
	}
	if g.Check(m, now) != nil {
		t.Error("switched off but still rejects")
	}
}

// TestReplayGuardLimits pins down what docs/security.md says the guard
// cannot do: guards share nothing, so a heartbeat accepted by one health
// manager is accepted once more by another (or by the same one after a
// restart) within the window; only the window refuses it later.
func TestReplayGuardLimits(t *testing.T) {
	now := time.Unix(1_763_726_400, 0)
	m := stamped("a", "b1", 7, now.Unix())
	hmA, hmB := NewReplayGuard(10*time.Second, 0), NewReplayGuard(10*time.Second, 0)
	if hmA.Check(m, now) != nil {
		t.Fatal("first delivery refused")
	}
	if ReasonOf(hmA.Check(m, now)) != ReasonReplayNotNewer {
		t.Error("replay to the same health manager accepted")
	}
	if err := hmB.Check(m, now.Add(5*time.Second)); err != nil {
		t.Errorf("replay to another health manager within the window: %v, want accepted once", err)
	}
	if ReasonOf(hmB.Check(m, now.Add(5*time.Second))) != ReasonReplayNotNewer {
		t.Error("a second replay to the other health manager accepted")
	}
	restarted := NewReplayGuard(10*time.Second, 0)
	if ReasonOf(restarted.Check(m, now.Add(11*time.Second))) != ReasonReplayWindow {
		t.Error("after a restart, a replay older than the window accepted")
	}
}

func TestReplayGuardBoundedMemory(t *testing.T) {
	now := time.Unix(1_763_726_400, 0)
	g := NewReplayGuard(time.Minute, replayShards) // one entry per shard
	for i := range 1000 {
		if err := g.Check(stamped(fmt.Sprint("amp-", i), "b", 1, now.Unix()), now.Add(time.Duration(i)*time.Millisecond)); err != nil {
			t.Fatal(err)
		}
	}
	if n := g.Len(); n > replayShards {
		t.Errorf("remembers %d amphorae, bound %d", n, replayShards)
	}
	// The most recent amphora is still remembered: its replay is refused.
	if ReasonOf(g.Check(stamped("amp-999", "b", 1, now.Unix()), now.Add(time.Second))) != ReasonReplayNotNewer {
		t.Error("the most recent amphora was evicted")
	}
}

// TestReplayGuardConcurrent runs the workers' pattern under -race: each
// sequence number of an amphora is accepted exactly once however many
// goroutines offer it.
func TestReplayGuardConcurrent(t *testing.T) {
	now := time.Unix(1_763_726_400, 0)
	g := NewReplayGuard(time.Minute, 0)
	const amphorae, seqs, workers = 8, 50, 4
	var mu sync.Mutex
	accepted := map[string]int{}
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := range int64(seqs) {
				for a := range amphorae {
					id := fmt.Sprint("amp-", a)
					if g.Check(stamped(id, "b", s, now.Unix()), now) == nil {
						mu.Lock()
						accepted[fmt.Sprint(id, "/", s)]++
						mu.Unlock()
					}
				}
			}
		}()
	}
	wg.Wait()
	for k, n := range accepted {
		if n != 1 {
			t.Errorf("%s accepted %d times", k, n)
		}
	}
}

func TestReplayFieldsRoundTrip(t *testing.T) {
	for _, c := range []struct {
		name, text string
		want       func(*Message) string // "" when as expected
	}{
		{"stamped", `{"id": "a", "seq": 7, "listeners": {}, "pools": {}, "ver": 3, "ts": 1763726400, "boot": "0f3a"}`,
			func(m *Message) string {
				if !m.HasTimestamp || m.Timestamp != 1763726400 || !m.HasBoot || m.Boot != "0f3a" {
					return fmt.Sprintf("%+v", m)
				}
				return ""
			}},
		{"stock", `{"id": "a", "seq": 7, "listeners": {}, "pools": {}, "ver": 3}`,
			func(m *Message) string {
				if m.HasTimestamp || m.HasBoot {
					return fmt.Sprintf("%+v", m)
				}
				return ""
			}},
	} {
		m, err := DecodeMessage([]byte(c.text))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if bad := c.want(m); bad != "" {
			t.Errorf("%s: decoded %s", c.name, bad)
		}
		if got := string(m.AppendJSON(nil)); got != c.text {
			t.Errorf("%s: re-encoded\n%s\nwant\n%s", c.name, got, c.text)
		}
	}
}

// TestReplayFieldsIllTypedStillDecode: Octavia ignores "ts" and "boot", so
// a wrong type must not reject the message; such a field counts as absent,
// which survives a round trip.
func TestReplayFieldsIllTypedStillDecode(t *testing.T) {
	for _, c := range []struct {
		text  string
		guard Reason
	}{
		{`{"id": "a", "seq": 1, "listeners": {}, "ts": "now", "boot": "x"}`, ReasonReplayFields},
		{`{"id": "a", "seq": 1, "listeners": {}, "ts": 1.5, "boot": "x"}`, ReasonReplayFields},
		{`{"id": "a", "seq": 1, "listeners": {}, "ts": 99999999999999999999, "boot": "x"}`, ReasonReplayFields},
		{`{"id": "a", "seq": 1, "listeners": {}, "ts": 1, "boot": 7}`, ReasonReplayFields},
		{`{"id": "a", "seq": 1, "listeners": {}, "ts": null, "boot": null}`, ReasonNone},
	} {
		m, err := DecodeMessage([]byte(c.text))
		if err != nil {
			t.Errorf("%s: rejected: %v", c.text, err)
			continue
		}
		if got := ReasonOf(NewReplayGuard(time.Minute, 0).Check(m, time.Now())); got != c.guard {
			t.Errorf("%s: guard says %v, want %v", c.text, got, c.guard)
		}
		again, err := DecodeMessage(m.AppendJSON(nil))
		if err != nil || again.HasTimestamp != m.HasTimestamp || again.HasBoot != m.HasBoot ||
			again.Timestamp != m.Timestamp || again.Boot != m.Boot {
			t.Errorf("%s: round trip gives %+v %v", c.text, again, err)
		}
	}
}

// BenchmarkReplayGuardCheck measures the guard as the worker pool uses it:
// parallel checks over many amphorae, each message newer than the last.
// Each goroutine has amphorae of its own, as one amphora's heartbeats
// arrive seconds apart.
func BenchmarkReplayGuardCheck(b *testing.B) {
	const amphorae = 10_000
	g := NewReplayGuard(time.Minute, 0)
	now := time.Now()
	var workers atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		w := workers.Add(1)
		ids := make([]string, amphorae)
		for i := range ids {
			ids[i] = fmt.Sprintf("w%d-amp-%05d", w, i)
		}
		m := stamped("", "boot", 0, now.Unix())
		for n := int64(0); pb.Next(); n++ {
			m.AmphoraID, m.Seq = ids[n%amphorae], n
			if err := g.Check(m, now); err != nil {
				b.Fatal(err)
			}
		}
	})
}
