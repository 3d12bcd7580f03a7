package agent

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSpoolMarksAndExpiry(t *testing.T) {
	dir := t.TempDir()
	s := Spool{Dir: filepath.Join(dir, "marks")}
	now := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	if m, err := s.List(now); err != nil || len(m) != 0 {
		t.Fatalf("empty spool: %v %v", m, err)
	}
	if _, err := ApplyMark(s, MarkRequest{Action: "drain", Target: "m1", Reason: "kernel update", Expires: "2h"}, now); err != nil {
		t.Fatal(err)
	}
	if _, err := ApplyMark(s, MarkRequest{Action: "maint", Target: "l1", Reason: "move"}, now); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []MarkRequest{
		{Action: "drain", Target: "../etc/passwd"},
		{Action: "drain", Target: ""},
		{Action: "frobnicate", Target: "m1"},
		{Action: "drain", Target: "m2", Expires: "soon"},
		{Action: "drain", Target: "m2", Expires: "-1h"},
	} {
		if _, err := ApplyMark(s, bad, now); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	marks, err := s.List(now.Add(time.Hour))
	if err != nil || len(marks) != 2 {
		t.Fatalf("marks %+v %v", marks, err)
	}
	if marks[1].Target != "m1" || marks[1].Reason != "kernel update" || !marks[1].Created.Equal(now) || !marks[1].Expires.Equal(now.Add(2*time.Hour)) {
		t.Errorf("mark %+v", marks[1])
	}
	for _, c := range []struct {
		member, listener string
		at               time.Time
		want             MarkKind
	}{
		{"m1", "", now, MarkDrain},
		{"m1", "l1", now, MarkMaint}, // maintenance of the listener wins
		{"m2", "l2", now, MarkNone},
		{"m1", "l2", now.Add(2 * time.Hour), MarkNone}, // expired
		{"m1", "l2", now.Add(2*time.Hour - time.Second), MarkDrain},
	} {
		if got := EffectiveMark(marks, c.member, c.listener, c.at); got != c.want {
			t.Errorf("EffectiveMark(%s, %s, %v) = %v, want %v", c.member, c.listener, c.at, got, c.want)
		}
	}
	all := []Mark{{Target: TargetAll, Kind: "drain", Created: now}}
	if EffectiveMark(all, "anything", "", now) != MarkDrain {
		t.Error("the all mark does not apply")
	}
	// After expiry, List drops the mark and deletes its file.
	marks, _ = s.List(now.Add(3 * time.Hour))
	if len(marks) != 1 || marks[0].Target != "l1" {
		t.Errorf("after expiry %+v", marks)
	}
	if _, err := os.Stat(filepath.Join(s.Dir, "m1.json")); !os.IsNotExist(err) {
		t.Errorf("expired spool file still there: %v", err)
	}
	// up removes a mark; removing a missing one is fine.
	if _, err := ApplyMark(s, MarkRequest{Action: "up", Target: "l1"}, now); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove("l1"); err != nil {
		t.Error(err)
	}
	// A stray file is reported, not applied.
	if err := os.WriteFile(filepath.Join(s.Dir, "x.json"), []byte(`{"target":"y","kind":"drain"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	marks, err = s.List(now)
	if len(marks) != 0 || err == nil {
		t.Errorf("stray file: %v %v", marks, err)
	}
}

func TestJudgeSelfHealth(t *testing.T) {
	t0 := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	l := SensorLimits{HeartbeatInterval: 10 * time.Second, VPPUnreachable: 30 * time.Second, ShutdownTimeout: 10 * time.Second}
	ok := SensorRecord{Started: t0, LastSend: t0.Add(50 * time.Second), LastVPP: t0.Add(55 * time.Second), LastConfig: t0}
	for _, c := range []struct {
		name   string
		rec    func(SensorRecord) SensorRecord
		at     time.Duration // after t0
		reason string        // "" = healthy
	}{
		{"healthy", func(r SensorRecord) SensorRecord { return r }, time.Minute, ""},
		{"no valid config", func(r SensorRecord) SensorRecord { r.LastConfig = time.Time{}; return r }, time.Minute, "no valid lb config"},
		{"no send for 3 intervals", func(r SensorRecord) SensorRecord { return r }, 81 * time.Second, "no heartbeat sent for 31s"},
		{"exactly 3 intervals is still fine", func(r SensorRecord) SensorRecord { return r }, 80 * time.Second, ""},
		{"never sent, counted from start", func(r SensorRecord) SensorRecord { r.LastSend = time.Time{}; return r }, 31 * time.Second, "no heartbeat sent for 31s"},
		{"never sent, young", func(r SensorRecord) SensorRecord { r.LastSend, r.LastVPP = time.Time{}, time.Time{}; return r }, 20 * time.Second, ""},
		{"vpp unreachable", func(r SensorRecord) SensorRecord { r.LastVPP = t0; r.LastSend = t0.Add(55 * time.Second); return r }, 60 * time.Second, "vpp unreachable for 1m0s"},
		{"shutdown in progress", func(r SensorRecord) SensorRecord { r.ShutdownFrom = t0.Add(55 * time.Second); return r }, time.Minute, ""},
		{"shutdown stuck", func(r SensorRecord) SensorRecord { r.ShutdownFrom = t0.Add(40 * time.Second); return r }, time.Minute, "shutdown stuck for 20s"},
	} {
		got := Judge(c.rec(ok), t0.Add(c.at), l)
		if got.Healthy != (c.reason == "") || got.Reason != c.reason {
			t.Errorf("%s: %+v, want reason %q", c.name, got, c.reason)
		}
	}
	clock := t0
	s := NewSensor(l, func() time.Time { return clock })
	if h := s.Health(); h.Healthy || h.Reason != "no valid lb config" {
		t.Errorf("fresh sensor %+v", h)
	}
	s.ConfigLoaded()
	s.Sent()
	s.VPPContact(clock)
	if h := s.Health(); !h.Healthy {
		t.Errorf("after events %+v", h)
	}
	clock = clock.Add(time.Minute)
	if h := s.Health(); h.Healthy || !strings.HasPrefix(h.Reason, "no heartbeat sent") {
		t.Errorf("a minute later %+v", h)
	}
}

func TestNotify(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", path)
	if sent, err := Notify("WATCHDOG=1"); !sent || err != nil {
		t.Fatalf("Notify: %v %v", sent, err)
	}
	buf := make([]byte, 64)
	_ = conn.SetReadDeadline(time.Now().Add(time.Second))
	n, err := conn.Read(buf)
	if err != nil || string(buf[:n]) != "WATCHDOG=1" {
		t.Errorf("received %q, %v", buf[:n], err)
	}
	t.Setenv("NOTIFY_SOCKET", "")
	if sent, err := Notify("READY=1"); sent || err != nil {
		t.Errorf("without a socket: %v %v", sent, err)
	}
	t.Setenv("WATCHDOG_USEC", "20000000")
	t.Setenv("WATCHDOG_PID", "")
	if got := WatchdogInterval(); got != 10*time.Second {
		t.Errorf("watchdog interval %v", got)
	}
	t.Setenv("WATCHDOG_PID", "1")
	if got := WatchdogInterval(); got != 0 {
		t.Errorf("watchdog for another pid: %v", got)
	}
}
