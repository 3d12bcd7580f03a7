package shadow

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/octavia-vpp/health/healthdb"
)

// Kind is what a disagreement is about.
type Kind string

// The kinds of disagreement (docs/shadow.md says what each means).
const (
	// KindStatus: a load balancer, listener, pool or member
	// operating_status differs from ours at two heartbeats in a row.
	KindStatus Kind = "status"
	// KindHealth: we would refresh an amphora's amphora_health row and its
	// last_update did not advance, or the reverse, two heartbeats in a row.
	KindHealth Kind = "health"
	// KindFailover: we would fail an amphora over and Octavia did not
	// within heartbeat_timeout + health_check_interval, or Octavia claimed
	// one we would keep.
	KindFailover Kind = "failover"
	// KindStatistics: listener_statistics sums drifted from ours by more
	// than one heartbeat's deltas.
	KindStatistics Kind = "statistics"
)

// Kinds lists every kind, in the order reports print them.
var Kinds = []Kind{KindStatus, KindHealth, KindFailover, KindStatistics}

// Disagreement is one decision of ours that Octavia's manager did not
// make. It is a JSON line of the disagreement file: "b64" and "srcaddr"
// make it a line replay reads.
type Disagreement struct {
	Time time.Time `json:"time"`
	Kind Kind      `json:"kind"`
	// Entity is the table ("load_balancer", "listener", "pool", "member",
	// "amphora_health", "amphora", "listener_statistics") and ID the row.
	Entity    string `json:"entity"`
	ID        string `json:"id"`
	AmphoraID string `json:"amphora_id"`
	// Ours and Octavia are the two values.
	Ours    string `json:"ours"`
	Octavia string `json:"octavia"`
	// Message describes the heartbeat that caused our decision.
	Message string `json:"message"`
	// B64 is that heartbeat's datagram, base64, as replay reads it.
	B64     string `json:"b64,omitempty"`
	SrcAddr string `json:"srcaddr,omitempty"`
}

func (d Disagreement) String() string {
	return fmt.Sprintf("%s %s %s (amphora %s): ours %s, Octavia's %s; %s", d.Kind, d.Entity, d.ID, d.AmphoraID,
		d.Ours, d.Octavia, d.Message)
}

// Cause is the heartbeat behind a decision, as disagreements cite it.
type Cause struct {
	Message string
	B64     string
	SrcAddr string
}

// Counters are the listener_statistics counters a heartbeat adds to
// (active_connections is a gauge Octavia replaces, and is not compared).
type Counters struct {
	BytesIn, BytesOut, TotalConns, RequestErrors int64
}

func (c Counters) add(o Counters) Counters {
	return Counters{c.BytesIn + o.BytesIn, c.BytesOut + o.BytesOut, c.TotalConns + o.TotalConns, c.RequestErrors + o.RequestErrors}
}

func (c Counters) sub(o Counters) Counters {
	return Counters{c.BytesIn - o.BytesIn, c.BytesOut - o.BytesOut, c.TotalConns - o.TotalConns, c.RequestErrors - o.RequestErrors}
}

// within reports whether every counter lies in [0, limit].
func (c Counters) within(limit Counters) bool {
	in := func(v, l int64) bool { return v >= 0 && v <= l }
	return in(c.BytesIn, limit.BytesIn) && in(c.BytesOut, limit.BytesOut) &&
		in(c.TotalConns, limit.TotalConns) && in(c.RequestErrors, limit.RequestErrors)
}

func (c Counters) String() string {
	return fmt.Sprintf("bytes_in=%d bytes_out=%d total_connections=%d request_errors=%d",
		c.BytesIn, c.BytesOut, c.TotalConns, c.RequestErrors)
}

// Observation is one heartbeat as the shadow saw it: the rows read when
// it arrived (what Octavia's manager had written so far) and our
// decision on them.
type Observation struct {
	AmphoraID string
	Time      time.Time
	// Topology is the amphora's topology as read before deciding.
	Topology *healthdb.Topology
	Decision healthdb.Decision
	// Health is the amphora's amphora_health row; nil when there is none.
	Health *healthdb.AmphoraHealthRow
	// Seq is the heartbeat's "seq" (HasSeq false without one): a gap
	// means heartbeats went to other controllers, and the statistics
	// comparison starts again.
	Seq    int64
	HasSeq bool
	// Stats are the amphora's listener_statistics sums by listener id, as
	// read; Deltas what this heartbeat reports per listener. Nil Stats
	// skips the statistics comparison.
	Stats  map[string]Counters
	Deltas map[string]Counters
	// Absolute says the heartbeat's counters are totals, which Octavia
	// writes over the row (versions before 3), not deltas it adds.
	Absolute bool
	Cause    Cause
}

// FailoverRules are the stale-amphora rules' settings.
type FailoverRules struct {
	HeartbeatTimeout, HealthCheckInterval time.Duration
	// Threshold is failover_threshold when ThresholdSet: with at least
	// this many stale amphorae none is failed over.
	Threshold    int
	ThresholdSet bool
}

// Comparator holds the comparison rules and their state. It does no I/O
// and is not safe for concurrent use.
type Comparator struct {
	// LastUpdateResolution is amphora_health.last_update's resolution:
	// a second on MySQL and MariaDB (DATETIME), 0 (exact enough) on
	// PostgreSQL. Two heartbeats closer than twice that cannot be told
	// apart by the row.
	LastUpdateResolution time.Duration

	statuses  map[string]*statusTrack // entity/id
	health    map[string]*healthTrack
	stats     map[string]*statsTrack
	causes    map[string]Cause // amphora id -> its last heartbeat
	failovers map[string]*failoverTrack
	busy      map[string]bool // amphorae seen busy at the last poll
}

// NewComparator returns a comparator with nothing seen yet.
func NewComparator() *Comparator {
	return &Comparator{statuses: map[string]*statusTrack{}, health: map[string]*healthTrack{},
		stats: map[string]*statsTrack{}, causes: map[string]Cause{}, failovers: map[string]*failoverTrack{},
		busy: map[string]bool{}}
}

// statusTrack is one entity's status: what the latest heartbeat of each
// amphora that touched the entity led us to expect, and how many
// heartbeats touching it in a row have read a value none of those
// decisions accounts for.
type statusTrack struct {
	touched   int // heartbeats that touched the entity
	byAmphora map[string]decidedStatus
	differing int
	reported  bool
}

type decidedStatus struct {
	value string
	at    int // touched, when decided
}

// statusMemory is how many heartbeats touching an entity an amphora's
// decision stays an acceptable value after it was made: both amphorae of
// a pair heartbeat in turn, and Octavia applies heartbeats concurrently,
// so its row may hold the other amphora's decision before last.
const statusMemory = 3

// accounts reports whether one of the recent decisions is value.
func (t *statusTrack) accounts(value string) bool {
	for _, d := range t.byAmphora {
		if t.touched-d.at <= statusMemory && strings.EqualFold(d.value, value) {
			return true
		}
	}
	return false
}

func (t *statusTrack) record(amphora, value string) {
	t.touched++
	t.byAmphora[amphora] = decidedStatus{value: value, at: t.touched}
	for a, d := range t.byAmphora {
		if t.touched-d.at > statusMemory {
			delete(t.byAmphora, a)
		}
	}
}

type healthTrack struct {
	wouldWrite bool
	hadRow     bool
	last       time.Time
	at         time.Time // the heartbeat's arrival, when last was read
	differing  int
	reported   bool
	cause      Cause
}

type statsTrack struct {
	seq      int64
	absolute bool
	base     map[string]Counters // V0: read at the first heartbeat
	first    map[string]Counters // d0: the first heartbeat's deltas
	summed   map[string]Counters // deltas of the heartbeats since, but not the newest
}

type failoverTrack struct {
	since    time.Time
	reported bool
}

// Heartbeat compares what the database shows at a heartbeat's arrival
// with what our decision on the amphora's previous heartbeat expected,
// then records this heartbeat's expectations. It returns the new
// disagreements.
func (c *Comparator) Heartbeat(o Observation) []Disagreement {
	var out []Disagreement
	out = append(out, c.compareStatuses(o)...)
	out = append(out, c.compareHealth(o)...)
	out = append(out, c.compareStats(o)...)
	c.causes[o.AmphoraID] = o.Cause
	return out
}

// compareStatuses judges each entity of the amphora's load balancer per
// entity, not per amphora: both amphorae of an ACTIVE_STANDBY load
// balancer report on the same listeners, pools and members, and Octavia's
// rows follow whichever heartbeat it applied last. When a heartbeat
// arrives, Octavia may not have applied it yet (the row holds what the
// previous heartbeat touching the entity led us to expect, or, as
// Octavia applies heartbeats concurrently, the other amphora's latest)
// or may have applied it already (the row holds what our decision on
// this heartbeat leaves it at). A value that is none of these is a
// difference, and a difference read again at the next heartbeat touching
// the entity is a disagreement.
func (c *Comparator) compareStatuses(o Observation) []Disagreement {
	lb := o.Topology.LB
	if lb == nil {
		return nil
	}
	observed := observedStatuses(lb)
	// This heartbeat's decision applied to what was read: what the
	// database holds once Octavia applied the heartbeat, if it agrees.
	decided := make(map[string]string, len(observed))
	for k, v := range observed {
		decided[k] = v
	}
	d := &o.Decision
	set := func(entity string, changes []healthdb.StatusChange) {
		for _, ch := range changes {
			decided[entity+"/"+ch.ID] = ch.To
		}
	}
	set("listener", d.Listeners)
	set("pool", d.Pools)
	set("member", d.Members)
	if d.LoadBalancer != nil {
		decided["load_balancer/"+d.LoadBalancer.ID] = d.LoadBalancer.To
	}
	keys := make([]string, 0, len(decided))
	for k := range decided {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []Disagreement
	for _, k := range keys {
		t := c.statuses[k]
		if t == nil {
			t = &statusTrack{byAmphora: map[string]decidedStatus{}}
			t.record(o.AmphoraID, decided[k])
			c.statuses[k] = t
			continue
		}
		db, seen := observed[k]
		if !seen || t.accounts(db) || strings.EqualFold(db, decided[k]) {
			t.differing, t.reported = 0, false
		} else {
			t.differing++
			if t.differing >= 2 && !t.reported {
				t.reported = true
				entity, id, _ := strings.Cut(k, "/")
				out = append(out, Disagreement{Time: o.Time, Kind: KindStatus, Entity: entity, ID: id, AmphoraID: o.AmphoraID,
					Ours: decided[k], Octavia: db, Message: describeCause(o.Cause.Message, k, d), B64: o.Cause.B64, SrcAddr: o.Cause.SrcAddr})
			}
		}
		t.record(o.AmphoraID, decided[k])
	}
	return out
}

// describeCause adds to a heartbeat's description the change we decided
// for the entity, if any.
func describeCause(msg, key string, d *healthdb.Decision) string {
	entity, id, _ := strings.Cut(key, "/")
	var list []healthdb.StatusChange
	switch entity {
	case "listener":
		list = d.Listeners
	case "pool":
		list = d.Pools
	case "member":
		list = d.Members
	case "load_balancer":
		if d.LoadBalancer != nil {
			list = []healthdb.StatusChange{*d.LoadBalancer}
		}
	}
	for _, ch := range list {
		if ch.ID == id {
			return fmt.Sprintf("%s; we set %s %s from %s to %s", msg, entity, id, ch.From, ch.To)
		}
	}
	return fmt.Sprintf("%s; we left %s %s as it was", msg, entity, id)
}

func observedStatuses(lb *healthdb.LoadBalancer) map[string]string {
	m := map[string]string{"load_balancer/" + lb.ID: lb.OperatingStatus}
	for i := range lb.Listeners {
		m["listener/"+lb.Listeners[i].ID] = lb.Listeners[i].OperatingStatus
	}
	for i := range lb.Pools {
		p := &lb.Pools[i]
		m["pool/"+p.ID] = p.OperatingStatus
		for j := range p.Members {
			m["member/"+p.Members[j].ID] = p.Members[j].OperatingStatus
		}
	}
	return m
}

func (c *Comparator) compareHealth(o Observation) []Disagreement {
	var out []Disagreement
	hasRow := o.Health != nil
	var last time.Time
	if hasRow {
		last = o.Health.LastUpdate
	}
	t := c.health[o.AmphoraID]
	if t != nil && t.hadRow && hasRow && !last.After(t.last) && t.wouldWrite && c.LastUpdateResolution > 0 &&
		o.Time.Sub(t.at) < 2*c.LastUpdateResolution {
		// Too close to the heartbeat the row was last read at for a
		// last_update of whole seconds (MySQL's DATETIME) to show a new
		// write: judged at a later heartbeat against the same read.
		return nil
	}
	if t != nil {
		advanced := hasRow && (!t.hadRow || last.After(t.last))
		if advanced == t.wouldWrite {
			t.differing, t.reported = 0, false
		} else {
			t.differing++
			if t.differing >= 2 && !t.reported {
				t.reported = true
				ours, octavia := "refreshed", "last_update did not advance"
				if !t.wouldWrite {
					ours, octavia = "not refreshed", "last_update advanced"
				}
				out = append(out, Disagreement{Time: o.Time, Kind: KindHealth, Entity: "amphora_health", ID: o.AmphoraID,
					AmphoraID: o.AmphoraID, Ours: ours, Octavia: octavia, Message: t.cause.Message, B64: t.cause.B64, SrcAddr: t.cause.SrcAddr})
			}
		}
	} else {
		t = &healthTrack{}
		c.health[o.AmphoraID] = t
	}
	t.wouldWrite = o.Decision.Health == healthdb.HealthWrite
	t.hadRow, t.last, t.at = hasRow, last, o.Time
	t.cause = o.Cause
	t.cause.Message = fmt.Sprintf("%s; health outcome %s", o.Cause.Message, o.Decision.Health)
	return out
}

// compareStats checks, per listener, that Octavia's sums grew by the
// deltas of the heartbeats in between. With V0 read at the first
// heartbeat h0 and Vk at hk, Octavia may or may not have applied h0
// before the first read and hk before the last, so Vk - V0 - (d1+...+dk-1)
// lies in [0, d0 + dk] when we agree.
func (c *Comparator) compareStats(o Observation) []Disagreement {
	if o.Stats == nil {
		delete(c.stats, o.AmphoraID)
		return nil
	}
	t := c.stats[o.AmphoraID]
	if o.Absolute {
		return c.compareAbsoluteStats(o, t)
	}
	if t == nil || t.absolute || !o.HasSeq || o.Seq != t.seq+1 {
		c.stats[o.AmphoraID] = &statsTrack{seq: o.Seq, base: o.Stats, first: o.Deltas, summed: map[string]Counters{}}
		return nil
	}
	var out []Disagreement
	ids := make([]string, 0, len(o.Stats))
	for id := range o.Stats {
		ids = append(ids, id)
	}
	for id := range t.base {
		if _, ok := o.Stats[id]; !ok {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	drifted := false
	for _, id := range ids {
		grew := o.Stats[id].sub(t.base[id])
		drift := grew.sub(t.summed[id])
		if drift.within(t.first[id].add(o.Deltas[id])) {
			continue
		}
		drifted = true
		ours := t.base[id].add(t.summed[id])
		out = append(out, Disagreement{Time: o.Time, Kind: KindStatistics, Entity: "listener_statistics", ID: id,
			AmphoraID: o.AmphoraID, Ours: ours.String() + fmt.Sprintf(" (give or take %s)", t.first[id].add(o.Deltas[id])),
			Octavia: o.Stats[id].String(), Message: o.Cause.Message, B64: o.Cause.B64, SrcAddr: o.Cause.SrcAddr})
	}
	if drifted {
		// Reported once: the next drift is measured from here.
		c.stats[o.AmphoraID] = &statsTrack{seq: o.Seq, base: o.Stats, first: o.Deltas, summed: map[string]Counters{}}
		return out
	}
	t.seq = o.Seq
	for id, d := range o.Deltas {
		t.summed[id] = t.summed[id].add(d)
	}
	return out
}

// compareAbsoluteStats checks a heartbeat of totals: Octavia writes them
// over the row, so at hk's arrival the row holds hk-1's totals or, if
// Octavia was first, hk's.
func (c *Comparator) compareAbsoluteStats(o Observation, t *statsTrack) []Disagreement {
	c.stats[o.AmphoraID] = &statsTrack{seq: o.Seq, absolute: true, first: o.Deltas}
	if t == nil || !t.absolute || !o.HasSeq || o.Seq != t.seq+1 {
		return nil
	}
	ids := make([]string, 0, len(t.first))
	for id := range t.first {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var out []Disagreement
	for _, id := range ids {
		db, ok := o.Stats[id]
		if !ok || db == t.first[id] || db == o.Deltas[id] {
			continue
		}
		out = append(out, Disagreement{Time: o.Time, Kind: KindStatistics, Entity: "listener_statistics", ID: id,
			AmphoraID: o.AmphoraID, Ours: t.first[id].String() + " (or " + o.Deltas[id].String() + ")",
			Octavia: db.String(), Message: o.Cause.Message, B64: o.Cause.B64, SrcAddr: o.Cause.SrcAddr})
	}
	return out
}

// Poll applies the stale-amphora rules to every amphora_health row, read
// at the database's time now, and compares them with what Octavia's
// manager did: a failover shows as the row claimed (busy), removed, or
// its amphora leaving ALLOCATED.
func (c *Comparator) Poll(rows []healthdb.AmphoraHealthRow, now time.Time, r FailoverRules) []Disagreement {
	expiry := now.Add(-r.HeartbeatTimeout)
	byID := make(map[string]*healthdb.AmphoraHealthRow, len(rows))
	var stale []string
	for i := range rows {
		row := &rows[i]
		byID[row.AmphoraID] = row
		if !row.Busy && row.LastUpdate.Before(expiry) {
			stale = append(stale, row.AmphoraID)
		}
	}
	sort.Strings(stale)
	breaker := r.ThresholdSet && len(stale) >= r.Threshold
	var out []Disagreement
	// Octavia's health check takes stale amphorae one at a time, in a
	// random order, and ends its cycle at one whose load balancer it
	// cannot set PENDING_UPDATE (provisioning_status neither ACTIVE nor
	// ERROR): that amphora is not failed over while its load balancer is
	// busy, and the others may wait for a later cycle.
	blocked := false
	if !breaker {
		for _, id := range stale {
			if byID[id].Status == "ALLOCATED" && !failoverable(byID[id].LBProvisioningStatus) {
				blocked = true
				delete(c.failovers, id)
			}
		}
		for _, id := range stale {
			if byID[id].Status == "ALLOCATED" && failoverable(byID[id].LBProvisioningStatus) && c.failovers[id] == nil {
				c.failovers[id] = &failoverTrack{since: now}
			}
		}
	}
	window := r.HeartbeatTimeout + r.HealthCheckInterval
	ids := make([]string, 0, len(c.failovers))
	for id := range c.failovers {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		f := c.failovers[id]
		row := byID[id]
		switch {
		case row == nil || row.Busy || row.Status != "ALLOCATED":
			delete(c.failovers, id) // Octavia acted
		case !row.LastUpdate.Before(expiry):
			delete(c.failovers, id) // back before the window closed
		case !failoverable(row.LBProvisioningStatus):
			delete(c.failovers, id) // its load balancer is busy
		case blocked && !f.reported:
			f.since = now // Octavia's cycles may end before reaching it
		case now.Sub(f.since) > window && !f.reported:
			f.reported = true
			cause := c.causes[id]
			out = append(out, Disagreement{Time: now, Kind: KindFailover, Entity: "amphora", ID: id, AmphoraID: id,
				Ours:    "fail over (last_update " + row.LastUpdate.UTC().Format(time.RFC3339) + ")",
				Octavia: fmt.Sprintf("not failed over %s later", now.Sub(f.since).Round(time.Second)),
				Message: lastHeartbeat(cause), B64: cause.B64, SrcAddr: cause.SrcAddr})
		}
	}
	// The reverse: a row Octavia claimed that our rules find fresh.
	busy := make(map[string]bool, len(c.busy))
	for i := range rows {
		row := &rows[i]
		if !row.Busy {
			continue
		}
		busy[row.AmphoraID] = true
		if c.busy[row.AmphoraID] || row.LastUpdate.Before(expiry) {
			continue
		}
		cause := c.causes[row.AmphoraID]
		out = append(out, Disagreement{Time: now, Kind: KindFailover, Entity: "amphora", ID: row.AmphoraID, AmphoraID: row.AmphoraID,
			Ours: "keep (last_update " + row.LastUpdate.UTC().Format(time.RFC3339) + ")", Octavia: "claimed for failover",
			Message: lastHeartbeat(cause), B64: cause.B64, SrcAddr: cause.SrcAddr})
	}
	c.busy = busy
	return out
}

// failoverable reports whether Octavia's health check may fail over an
// amphora of a load balancer in this provisioning status (it sets it to
// PENDING_UPDATE from ACTIVE or ERROR only); empty: no load balancer.
func failoverable(lbProvisioningStatus string) bool {
	switch lbProvisioningStatus {
	case "", "ACTIVE", "ERROR":
		return true
	}
	return false
}

func lastHeartbeat(c Cause) string {
	if c.Message == "" {
		return "no heartbeat seen from this amphora"
	}
	return "last heartbeat: " + c.Message
}
