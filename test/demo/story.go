package main

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// Sample is what one look at the database and the health manager's
// metrics shows.
type Sample struct {
	At      time.Duration     // since watch started
	LBs     map[string]string // load balancer id -> operating_status
	Members map[string]string // member id -> operating_status
	// Stale lists amphorae whose last heartbeat is older than
	// heartbeat_timeout; Unheard those with no health row yet.
	Stale, Unheard []string
	// From /metrics: counters, NaN-free; Metrics false when unreachable.
	Metrics            bool
	HeartbeatsAccepted float64
	HeartbeatsRejected float64
	DryRunFailovers    float64
	// StatusPage is the HTTP status of the status page, 0 when it does not
	// answer.
	StatusPage int
	DBErr      string
}

// Event is one line of the story.
type Event struct {
	At   time.Duration
	Text string
}

// Story follows the demo's samples and records what happened: the
// milestones the final check looks for, and member transitions.
type Story struct {
	topo   *Topology
	Events []Event

	prev           *Sample
	landed         bool
	flapSeen       bool
	degradedSeen   bool
	drainedSeen    bool
	silenced       bool
	staleSeen      bool
	dryRunSeen     bool
	firstHeartbeat bool

	printed int // events already written as plain lines
}

// NewStory starts a story for a topology.
func NewStory(t *Topology) *Story { return &Story{topo: t} }

func (s *Story) add(at time.Duration, format string, args ...any) {
	s.Events = append(s.Events, Event{At: at, Text: fmt.Sprintf(format, args...)})
}

// Note records something the demo did (drain, silence).
func (s *Story) Note(at time.Duration, text string) { s.add(at, "%s", text) }

// Silenced records that the silent amphora was stopped.
func (s *Story) Silenced(at time.Duration) {
	s.silenced = true
	s.add(at, "%s stopped (SIGSTOP): it sends no more heartbeats", s.topo.SilentAmphora)
}

// Observe takes the next sample and records what changed.
func (s *Story) Observe(cur Sample) {
	at := cur.At
	if !s.firstHeartbeat && cur.HeartbeatsAccepted > 0 {
		s.firstHeartbeat = true
		s.add(at, "first heartbeats accepted by the health manager")
	}
	if !s.landed && len(cur.LBs) > 0 && countOf(cur.LBs, "OFFLINE") == 0 {
		s.landed = true
		s.add(at, "all %d load balancers have a status from heartbeats", len(cur.LBs))
	}
	if s.landed && s.prev != nil {
		for _, id := range sortedKeys(cur.Members) {
			was, now := s.prev.Members[id], cur.Members[id]
			if was == now || was == "" || was == "OFFLINE" {
				continue
			}
			s.add(at, "%s %s -> %s%s", id, was, now, s.why(id, now))
			if now == "ERROR" {
				s.flapSeen = true
			}
		}
		for _, id := range sortedKeys(cur.LBs) {
			if now := cur.LBs[id]; now != s.prev.LBs[id] && (now == "DEGRADED" || now == "ERROR") {
				s.degradedSeen = true
			}
		}
	}
	if s.landed && (countOf(cur.LBs, "DEGRADED") > 0 || countOf(cur.LBs, "ERROR") > 0) {
		s.degradedSeen = true
	}
	if !s.drainedSeen && cur.Members[s.topo.DrainedMember] == "DRAINING" {
		s.drainedSeen = true
		s.add(at, "%s is DRAINING", s.topo.DrainedMember)
	}
	if !s.staleSeen && s.silenced && slices.Contains(cur.Stale, s.topo.SilentAmphora) {
		s.staleSeen = true
		s.add(at, "%s is stale: no heartbeat for %s", s.topo.SilentAmphora, s.topo.HeartbeatTimeout)
	}
	if !s.dryRunSeen && cur.DryRunFailovers > 0 {
		s.dryRunSeen = true
		s.add(at, "failover_driver noop: the health manager would fail over %s", strings.Join(cur.Stale, ", "))
	}
	s.prev = &cur
}

// why explains a member's new status by its server's behaviour.
func (s *Story) why(member, status string) string {
	if status != "ERROR" {
		return ""
	}
	for _, m := range s.topo.Members() {
		if m.ID == member {
			switch m.Behaviour.Kind {
			case Answer503:
				return " (its server answers 503)"
			case Refuse:
				return " (its server refuses connections)"
			}
		}
	}
	return ""
}

// Check is one item of the final verdict.
type Check struct {
	What string
	OK   bool
}

// Verdict says whether the whole story happened, judged on what was
// observed and on the last sample.
func (s *Story) Verdict() []Check {
	var last Sample
	if s.prev != nil {
		last = *s.prev
	}
	othersStale := slices.DeleteFunc(slices.Clone(last.Stale), func(id string) bool { return id == s.topo.SilentAmphora })
	return []Check{
		{"heartbeats reached the health manager", s.firstHeartbeat},
		{fmt.Sprintf("all %d load balancers got a status from heartbeats", len(s.topo.LBs)), s.landed},
		{"a flapping member server turned its member ERROR", s.flapSeen},
		{"a load balancer was DEGRADED or ERROR meanwhile", s.degradedSeen},
		{fmt.Sprintf("the drained member %s is DRAINING", s.topo.DrainedMember), last.Members[s.topo.DrainedMember] == "DRAINING"},
		{"members without a health monitor are NO_MONITOR", countOf(last.Members, "NO_MONITOR") > 0},
		{fmt.Sprintf("the silent amphora %s went stale", s.topo.SilentAmphora), s.staleSeen},
		{"the noop failover driver logged what it would fail over", s.dryRunSeen},
		{"every other amphora is fresh", len(othersStale) == 0 && len(last.Unheard) == 0 && s.prev != nil},
	}
}

func countOf(m map[string]string, status string) int {
	n := 0
	for _, v := range m {
		if v == status {
			n++
		}
	}
	return n
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func clock(d time.Duration) string {
	d = d.Round(time.Second)
	return fmt.Sprintf("%02d:%02d", int(d.Minutes()), int(d.Seconds())%60)
}

// Screen renders the one-screen summary. rate is heartbeats per second
// accepted since the previous sample.
// With color, load balancer statuses are painted with ANSI colors.
func Screen(t *Topology, cur Sample, rate float64, events []Event, duration time.Duration, color bool) string {
	var b strings.Builder
	footer := "Ctrl-C stops everything"
	if duration > 0 {
		footer = fmt.Sprintf("stops by itself at %s", clock(duration))
	}
	fmt.Fprintf(&b, "octavia-vpp-health demo   %s   (%s)\n", clock(cur.At), footer)
	page := "not answering yet"
	if cur.StatusPage != 0 {
		page = fmt.Sprintf("answering, HTTP %d", cur.StatusPage)
	}
	fmt.Fprintf(&b, "status page     %s  (%s)\n", t.StatusURL, page)
	fmt.Fprintf(&b, "metrics         %s\n", t.MetricsURL)
	if lb := t.LBOfMember(t.DrainedMember); lb != nil {
		a := lb.Amphorae[0]
		fmt.Fprintf(&b, "agent API       http://127.0.0.1:%d/status  (%s, drains a member)\n", a.StatusPort, a.ID)
	}
	if cur.DBErr != "" {
		fmt.Fprintf(&b, "database        %s\n", cur.DBErr)
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "load balancers  %3d   %s\n", len(cur.LBs), counts(cur.LBs, "ONLINE", "DEGRADED", "ERROR", "OFFLINE"))
	fmt.Fprintf(&b, "members         %3d   %s\n", len(cur.Members), counts(cur.Members, "ONLINE", "ERROR", "DRAINING", "NO_MONITOR", "OFFLINE"))
	amps := len(t.Amphorae())
	stale := "none"
	if len(cur.Stale) > 0 {
		stale = strings.Join(cur.Stale, ", ")
	}
	unheard := ""
	if len(cur.Unheard) > 0 {
		unheard = fmt.Sprintf("  not heard yet %d", len(cur.Unheard))
	}
	fmt.Fprintf(&b, "amphorae        %3d   fresh %d%s  stale: %s\n", amps, amps-len(cur.Stale)-len(cur.Unheard), unheard, stale)
	if cur.Metrics {
		fmt.Fprintf(&b, "heartbeats      %.1f/s  (%.0f accepted, %.0f rejected)\n", rate, cur.HeartbeatsAccepted, cur.HeartbeatsRejected)
		wf := "nothing yet"
		if cur.DryRunFailovers > 0 {
			wf = fmt.Sprintf("would have failed over %s (%.0f noop attempts)", strings.Join(cur.Stale, ", "), cur.DryRunFailovers)
		}
		fmt.Fprintf(&b, "failover (noop) %s\n", wf)
	} else {
		b.WriteString("heartbeats      (metrics not reachable)\n\n")
	}
	b.WriteString("\n")
	const cols = 4
	rows := (len(t.LBs) + cols - 1) / cols
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
			i := c*rows + r
			if i >= len(t.LBs) {
				continue
			}
			lb := t.LBs[i]
			name := lb.Name
			if lb.Topology == "ACTIVE_STANDBY" {
				name += "*"
			}
			st := cur.LBs[lb.ID]
			cell := fmt.Sprintf("%-10s %-8s", name, st)
			if color {
				cell = paint(st, cell)
			}
			if c > 0 {
				b.WriteString(" ")
			}
			b.WriteString(cell)
		}
		b.WriteString("\n")
	}
	b.WriteString("(* ACTIVE_STANDBY)\n\n")
	const shown = 5
	if len(events) > shown {
		events = events[len(events)-shown:]
	}
	for _, e := range events {
		fmt.Fprintf(&b, "%s  %s\n", clock(e.At), e.Text)
	}
	return b.String()
}

// Line is the summary as one line, for a log or a pipe.
func Line(cur Sample, rate float64) string {
	return fmt.Sprintf("%s lbs[%s] members[%s] stale[%s] hb/s=%.1f would-failover=%.0f",
		clock(cur.At), counts(cur.LBs, "ONLINE", "DEGRADED", "ERROR", "OFFLINE"),
		counts(cur.Members, "ONLINE", "ERROR", "DRAINING", "NO_MONITOR", "OFFLINE"),
		strings.Join(cur.Stale, ","), rate, cur.DryRunFailovers)
}

func counts(m map[string]string, order ...string) string {
	parts := make([]string, 0, len(order))
	for _, s := range order {
		parts = append(parts, fmt.Sprintf("%s %d", s, countOf(m, s)))
	}
	for _, s := range sortedKeys(invert(m)) {
		if !slices.Contains(order, s) {
			parts = append(parts, fmt.Sprintf("%s %d", s, countOf(m, s)))
		}
	}
	return strings.Join(parts, "  ")
}

func invert(m map[string]string) map[string]string {
	out := map[string]string{}
	for _, v := range m {
		out[v] = v
	}
	return out
}

// paint colors text by an operating status: green, yellow, red.
func paint(status, text string) string {
	code := ""
	switch status {
	case "ONLINE":
		code = "32"
	case "DEGRADED":
		code = "33"
	case "ERROR":
		code = "31"
	default:
		return text
	}
	return "\033[" + code + "m" + text + "\033[0m"
}
