package statuspage

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Snapshot is everything the page shows, as of Taken. It is shared by all
// requests: never modify one.
type Snapshot struct {
	Taken time.Time `json:"taken"`
	// QueryTime is how long the database reads took.
	QueryTime time.Duration `json:"query_ns"`
	// Error is why the database part is missing, or "".
	Error string `json:"error,omitempty"`

	Fleet     Fleet          `json:"fleet"`
	Histogram Histogram      `json:"heartbeat_age"`
	LBs       []LoadBalancer `json:"load_balancers"`
	// LBsListed < Fleet.LoadBalancers when the list is capped.
	LBsListed     int  `json:"load_balancers_listed"`
	MembersCapped bool `json:"members_capped"`

	Transitions      []TransitionView `json:"transitions"`
	TransitionsTotal int64            `json:"transitions_total"`
	Failovers        []FailoverView   `json:"failovers"`
	FailoversTotal   int64            `json:"failovers_total"`
	// Shadow is set in shadow mode.
	Shadow *ShadowView `json:"shadow,omitempty"`
}

// Fleet is the summary line.
type Fleet struct {
	// Amphorae counts amphora_health rows; Fresh + Stale + Busy = Amphorae.
	Amphorae int `json:"amphorae"`
	Fresh    int `json:"fresh"`
	// Stale: silent for heartbeat_timeout and not claimed.
	Stale int `json:"stale"`
	// Busy: claimed for failover (amphora_health.busy).
	Busy            int            `json:"busy"`
	FailoverStopped int            `json:"failover_stopped"`
	LoadBalancers   int            `json:"load_balancers"`
	LBByStatus      map[string]int `json:"load_balancers_by_status"`

	HeartbeatTimeout  time.Duration `json:"heartbeat_timeout_ns"`
	FailoverThreshold int           `json:"failover_threshold,omitempty"`
	DryRun            bool          `json:"dry_run"`

	Counters
	// HeartbeatRate and RejectRate are per second over the last few
	// seconds; RatesKnown is false until two readings exist.
	HeartbeatRate float64 `json:"heartbeats_per_second"`
	RejectRate    float64 `json:"rejections_per_second"`
	RatesKnown    bool    `json:"rates_known"`
}

// FailoverCount is the number of failover requests, all results.
func (f Fleet) FailoverCount() float64 {
	var n float64
	for _, v := range f.Failovers {
		n += v
	}
	return n
}

// LoadBalancer is one listed load balancer and its tree.
type LoadBalancer struct {
	ID           string     `json:"id"`
	Name         string     `json:"name"`
	Provisioning string     `json:"provisioning_status"`
	Operating    string     `json:"operating_status"`
	Amphorae     []Amphora  `json:"amphorae"`
	Listeners    []Listener `json:"listeners"`
	Pools        []Pool     `json:"pools"`
	// Silent counts the amphorae that are stale or claimed for failover.
	Silent int    `json:"silent_amphorae"`
	Search string `json:"-"`
}

type Amphora struct {
	ID        string `json:"id"`
	Role      string `json:"role"`
	Status    string `json:"status"`
	NetworkIP string `json:"lb_network_ip"`
	// Age is the time since the last applied heartbeat; HasHealth is false
	// when there is no amphora_health row.
	Age       time.Duration `json:"age_ns"`
	HasHealth bool          `json:"has_health"`
	Stale     bool          `json:"stale"`
	Busy      bool          `json:"busy"`
}

type Listener struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Protocol    string `json:"protocol"`
	Port        int    `json:"port"`
	Operating   string `json:"operating_status"`
	Enabled     bool   `json:"enabled"`
	DefaultPool string `json:"default_pool_id,omitempty"`
}

type Pool struct {
	ID        string   `json:"id"`
	Name      string   `json:"name"`
	Protocol  string   `json:"protocol"`
	Algorithm string   `json:"lb_algorithm"`
	Operating string   `json:"operating_status"`
	Members   []Member `json:"members"`
}

type Member struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Address   string `json:"address"`
	Port      int    `json:"port"`
	Operating string `json:"operating_status"`
	Enabled   bool   `json:"enabled"`
	Backup    bool   `json:"backup"`
}

// TransitionView is a recorded transition with the entity's name.
type TransitionView struct {
	TransitionEvent
	Name string `json:"name"`
}

// FailoverView is a recorded failover with its amphora's load balancer.
type FailoverView struct {
	FailoverEvent
	LoadBalancerID   string `json:"load_balancer_id"`
	LoadBalancerName string `json:"load_balancer_name"`
}

// Histogram is the heartbeat age across amphorae.
type Histogram struct {
	Bars []Bar `json:"bars"`
	// StaleX is where heartbeat_timeout falls, for the marker line.
	StaleX float64 `json:"-"`
	Max    int     `json:"-"`
}

// Bar is one age bucket, with its SVG geometry.
type Bar struct {
	Label string `json:"label"`
	// From and To bound the ages, in seconds; To is 0 for the open last
	// bucket.
	From  float64 `json:"from_seconds"`
	To    float64 `json:"to_seconds"`
	Count int     `json:"count"`
	Stale bool    `json:"stale"`
	X, Y  float64 `json:"-"`
	W, H  float64 `json:"-"`
}

// SVG geometry of the histogram.
const (
	plotWidth   = 640
	plotHeight  = 150
	plotBuckets = 20
)

// histogram lays out the buckets read from the database: buckets over
// [0, 2*heartbeat_timeout) plus one for older (ages in the future count
// as 0). Heights are logarithmic, so a handful of stale amphorae stays
// visible next to a hundred thousand fresh ones.
func histogram(counts []bucketCount, timeout time.Duration) Histogram {
	n := len(counts) - 2
	if n <= 0 {
		return Histogram{}
	}
	width := 2 * timeout.Seconds() / float64(n)
	h := Histogram{}
	bars := make([]Bar, n+1)
	for i := range bars {
		c := counts[i+1].total
		if i == 0 {
			c += counts[0].total
		}
		from := float64(i) * width
		b := Bar{From: from, To: from + width, Count: c, Stale: from >= timeout.Seconds()}
		b.Label = fmt.Sprintf("%s–%s", seconds(from), seconds(from+width))
		if i == n {
			b.To = 0
			b.Label = "≥ " + seconds(from)
		}
		bars[i] = b
		h.Max = max(h.Max, c)
	}
	slot := float64(plotWidth) / float64(len(bars))
	for i := range bars {
		b := &bars[i]
		b.X = float64(i)*slot + 1
		b.W = slot - 2
		if b.Count > 0 {
			b.H = max(2, plotHeight*logScale(b.Count)/logScale(h.Max))
		}
		b.Y = plotHeight - b.H
	}
	h.Bars = bars
	h.StaleX = float64(n) / 2 * slot
	return h
}

func logScale(n int) float64 {
	return math.Log10(1 + float64(n))
}

func seconds(s float64) string {
	if s == float64(int(s)) {
		return fmt.Sprintf("%ds", int(s))
	}
	return fmt.Sprintf("%.1fs", s)
}

// assemble builds the snapshot's database part from v.
func assemble(s *Snapshot, v *dbView, now time.Time, timeout time.Duration) {
	f := &s.Fleet
	for _, c := range v.ageBuckets {
		f.Amphorae += c.total
		f.Busy += c.busy
		f.Stale += c.stale
	}
	f.Fresh = f.Amphorae - f.Busy - f.Stale
	f.FailoverStopped = v.failoverStopped
	f.LBByStatus = v.lbByStatus
	for _, n := range v.lbByStatus {
		f.LoadBalancers += n
	}
	s.Histogram = histogram(v.ageBuckets, timeout)
	s.MembersCapped = v.membersCapped

	byID := make(map[string]*LoadBalancer, len(v.lbs))
	s.LBs = make([]LoadBalancer, len(v.lbs))
	for i, lb := range v.lbs {
		s.LBs[i] = LoadBalancer{ID: lb.id, Name: lb.name, Provisioning: lb.provisioning, Operating: lb.operating}
	}
	for i := range s.LBs {
		byID[s.LBs[i].ID] = &s.LBs[i]
	}
	s.LBsListed = len(s.LBs)
	cutoff := now.Add(-timeout)
	for _, a := range v.amphorae {
		lb := byID[a.lbID]
		if lb == nil {
			continue
		}
		am := Amphora{ID: a.id, Role: a.role, Status: a.status, NetworkIP: a.networkIP, Busy: a.busy}
		if a.lastUpdate != nil {
			am.HasHealth = true
			am.Age = max(0, now.Sub(*a.lastUpdate)).Truncate(100 * time.Millisecond)
			am.Stale = !a.busy && a.lastUpdate.Before(cutoff)
		}
		lb.Amphorae = append(lb.Amphorae, am)
	}
	for _, l := range v.listeners {
		if lb := byID[l.lbID]; lb != nil {
			lb.Listeners = append(lb.Listeners, Listener{ID: l.id, Name: l.name, Protocol: l.protocol, Port: l.port,
				Operating: l.operating, Enabled: l.enabled, DefaultPool: l.defaultPool})
		}
	}
	poolIdx := map[string][2]int{} // pool id -> (lb index, pool index)
	for i := range s.LBs {
		lb := &s.LBs[i]
		for _, p := range v.pools {
			if p.lbID == lb.ID {
				poolIdx[p.id] = [2]int{i, len(lb.Pools)}
				lb.Pools = append(lb.Pools, Pool{ID: p.id, Name: p.name, Protocol: p.protocol, Algorithm: p.algorithm, Operating: p.operating})
			}
		}
	}
	for _, m := range v.members {
		if at, ok := poolIdx[m.poolID]; ok {
			p := &s.LBs[at[0]].Pools[at[1]]
			p.Members = append(p.Members, Member{ID: m.id, Name: m.name, Address: m.address, Port: m.port,
				Operating: m.operating, Enabled: m.enabled, Backup: m.backup})
		}
	}
	for i := range s.LBs {
		lb := &s.LBs[i]
		for _, a := range lb.Amphorae {
			if a.Stale || a.Busy {
				lb.Silent++
			}
		}
		lb.Search = searchText(lb)
	}
	// Problems first, then by name.
	slices.SortStableFunc(s.LBs, func(a, b LoadBalancer) int {
		return cmp.Or(cmp.Compare(lbRank(&a), lbRank(&b)), cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID))
	})
	for i := range s.Transitions {
		t := &s.Transitions[i]
		t.Name = v.names[t.Entity+"/"+t.ID]
	}
	for i := range s.Failovers {
		fv := &s.Failovers[i]
		if lb, ok := v.failoverLBs[fv.AmphoraID]; ok {
			fv.LoadBalancerID, fv.LoadBalancerName = lb.lbID, lb.lbName
		}
	}
}

// searchText is what the filter matches: every name, id, address and
// status in the load balancer's tree, lower case.
func searchText(lb *LoadBalancer) string {
	parts := []string{lb.ID, lb.Name, lb.Provisioning, lb.Operating}
	for _, a := range lb.Amphorae {
		parts = append(parts, a.ID, a.Role, a.Status, a.NetworkIP)
	}
	for _, l := range lb.Listeners {
		parts = append(parts, l.ID, l.Name, l.Protocol, fmt.Sprint(l.Port), l.Operating)
	}
	for _, p := range lb.Pools {
		parts = append(parts, p.ID, p.Name, p.Operating)
		for _, m := range p.Members {
			parts = append(parts, m.ID, m.Name, m.Address, m.Operating)
		}
	}
	return strings.ToLower(strings.Join(parts, " "))
}

// lbRank orders load balancers for the list: ERROR, DEGRADED, then any
// with a silent amphora, then by operating status.
func lbRank(lb *LoadBalancer) int {
	r := 2 * statusRank(lb.Operating)
	if lb.Silent > 0 && r > 2 {
		r = 3
	}
	return r
}

// statusRank orders operating statuses worst first.
func statusRank(s string) int {
	switch strings.ToUpper(s) {
	case "ERROR":
		return 0
	case "DEGRADED":
		return 1
	case "OFFLINE":
		return 2
	case "DRAINING":
		return 3
	case "NO_MONITOR":
		return 4
	case "ONLINE":
		return 5
	}
	return 6
}
