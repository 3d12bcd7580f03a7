package main

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestMetricSum(t *testing.T) {
	text := `# HELP octavia_hm_failovers_total Failover requests.
# TYPE octavia_hm_failovers_total counter
octavia_hm_failovers_total{result="dry_run"} 3
octavia_hm_failovers_total{result="error"} 2
octavia_hm_failovers_total_other 9
octavia_hm_heartbeats_accepted_total{key="current"} 120
octavia_hm_heartbeats_accepted_total{key="previous"} 5
octavia_hm_queue_length 7
`
	for _, tc := range []struct {
		name, filter string
		want         float64
	}{
		{"octavia_hm_failovers_total", `result="dry_run"`, 3},
		{"octavia_hm_failovers_total", "", 5},
		{"octavia_hm_heartbeats_accepted_total", "", 125},
		{"octavia_hm_queue_length", "", 7},
		{"octavia_hm_missing_total", "", 0},
	} {
		if got := metricSum(text, tc.name, tc.filter); got != tc.want {
			t.Errorf("metricSum(%s, %q) = %v, want %v", tc.name, tc.filter, got, tc.want)
		}
	}
}

// sample builds a sample where every LB and member has one status, with
// overrides.
func sample(topo *Topology, at time.Duration, lb, member string, over map[string]string) Sample {
	s := Sample{At: at, LBs: map[string]string{}, Members: map[string]string{}, Metrics: true, HeartbeatsAccepted: float64(at / time.Second)}
	for _, l := range topo.LBs {
		s.LBs[l.ID] = lb
	}
	for _, m := range topo.Members() {
		s.Members[m.ID] = member
	}
	for id, st := range over {
		if _, ok := s.LBs[id]; ok {
			s.LBs[id] = st
		} else {
			s.Members[id] = st
		}
	}
	return s
}

func TestStoryVerdict(t *testing.T) {
	topo := Plan(20, counter())
	full := func(s *Story) {
		s.Observe(sample(&topo, 1*time.Second, "OFFLINE", "OFFLINE", nil))
		s.Observe(sample(&topo, 3*time.Second, "ONLINE", "ONLINE", map[string]string{"member-07-http-1": "NO_MONITOR"}))
		s.Observe(sample(&topo, 12*time.Second, "ONLINE", "ONLINE", map[string]string{
			"member-17-http-1": "ERROR", "lb-17": "DEGRADED", "member-07-http-1": "NO_MONITOR"}))
		s.Silenced(30 * time.Second)
		late := sample(&topo, 50*time.Second, "ONLINE", "ONLINE", map[string]string{
			"member-05-http-1": "DRAINING", "member-07-http-1": "NO_MONITOR"})
		late.Stale = []string{"amp-03-a"}
		late.DryRunFailovers = 1
		s.Observe(late)
	}
	missing := func(s *Story) []string {
		var out []string
		for _, c := range s.Verdict() {
			if !c.OK {
				out = append(out, c.What)
			}
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		play   func(*Story)
		missed []string
	}{
		{"whole story", full, nil},
		{"nothing observed", func(*Story) {}, []string{
			"heartbeats reached the health manager",
			"all 20 load balancers got a status from heartbeats",
			"a flapping member server turned its member ERROR",
			"a load balancer was DEGRADED or ERROR meanwhile",
			"the drained member member-05-http-1 is DRAINING",
			"members without a health monitor are NO_MONITOR",
			"the silent amphora amp-03-a went stale",
			"the noop failover driver logged what it would fail over",
			"every other amphora is fresh",
		}},
		{"another amphora stale at the end", func(s *Story) {
			full(s)
			end := *s.prev
			end.At += 2 * time.Second
			end.Stale = []string{"amp-03-a", "amp-04"}
			s.Observe(end)
		}, []string{"every other amphora is fresh"}},
		{"drain lifted before the end", func(s *Story) {
			full(s)
			end := *s.prev
			end.At += 2 * time.Second
			end.Members = map[string]string{"member-05-http-1": "ONLINE", "member-07-http-1": "NO_MONITOR"}
			s.Observe(end)
		}, []string{"the drained member member-05-http-1 is DRAINING"}},
	} {
		s := NewStory(&topo)
		tc.play(s)
		if got := missing(s); strings.Join(got, "|") != strings.Join(tc.missed, "|") {
			t.Errorf("%s: missed %q, want %q", tc.name, got, tc.missed)
		}
	}
}

func TestStoryEvents(t *testing.T) {
	topo := Plan(20, counter())
	s := NewStory(&topo)
	s.Observe(sample(&topo, 0, "OFFLINE", "OFFLINE", nil))
	s.Observe(sample(&topo, 2*time.Second, "ONLINE", "ONLINE", nil))
	s.Observe(sample(&topo, 4*time.Second, "ONLINE", "ONLINE", map[string]string{"member-02-http-2": "ERROR"}))
	s.Observe(sample(&topo, 6*time.Second, "ONLINE", "ONLINE", nil))
	var got []string
	for _, e := range s.Events {
		got = append(got, clock(e.At)+" "+e.Text)
	}
	want := []string{
		"00:02 first heartbeats accepted by the health manager",
		"00:02 all 20 load balancers have a status from heartbeats",
		"00:04 member-02-http-2 ONLINE -> ERROR (its server answers 503)",
		"00:06 member-02-http-2 ERROR -> ONLINE",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// The summary fits one 80x24 terminal.
func TestScreenFits(t *testing.T) {
	topo := Plan(20, counter())
	topo.StatusURL, topo.MetricsURL = "http://127.0.0.1:65000/", "http://127.0.0.1:65000/metrics"
	s := NewStory(&topo)
	for i := range 20 {
		s.Note(time.Duration(i)*time.Second, "member-11-http-3 ONLINE -> ERROR (its server refuses connections)")
	}
	cur := sample(&topo, 75*time.Second, "DEGRADED", "ONLINE", nil)
	cur.Stale = []string{"amp-03-a"}
	screen := Screen(&topo, cur, 12.5, s.Events, 90*time.Second, false)
	lines := strings.Split(strings.TrimSuffix(screen, "\n"), "\n")
	if len(lines) > 23 {
		t.Errorf("%d lines, want at most 23:\n%s", len(lines), screen)
	}
	for _, l := range lines {
		if len(l) > 80 {
			t.Errorf("line of %d columns: %q", len(l), l)
		}
	}
	for _, want := range []string{"DEGRADED 20", "stale: amp-03-a", "12.5/s", topo.StatusURL, "shop-03*   DEGRADED"} {
		if !strings.Contains(screen, want) {
			t.Errorf("screen lacks %q:\n%s", want, screen)
		}
	}
}

// A member server answers 200, then fails the way its behaviour says.
func TestMemberServerFails(t *testing.T) {
	for _, kind := range []string{Answer503, Refuse} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		s := &memberServer{
			m:   Member{ID: "m-" + kind, LocalPort: port, Behaviour: Behaviour{Kind: kind, Period: time.Minute, Down: 10 * time.Second, Offset: 10 * time.Second}},
			log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		}
		if err := s.listen(); err != nil {
			t.Fatal(err)
		}
		get := func() string {
			resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/healthz")
			if err != nil {
				return "refused"
			}
			defer resp.Body.Close()
			return strconv.Itoa(resp.StatusCode)
		}
		down := map[string]string{Answer503: "503", Refuse: "refused"}[kind]
		for _, step := range []struct {
			at   time.Duration
			want string
		}{{0, "200"}, {12 * time.Second, down}, {25 * time.Second, "200"}, {75 * time.Second, down}} {
			s.set(step.at)
			if got := get(); got != step.want {
				t.Errorf("%s at %v: %s, want %s", kind, step.at, got, step.want)
			}
		}
		s.close()
	}
}
