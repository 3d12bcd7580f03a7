package healthdb

import (
	"sync"

	"github.com/octavia-vpp/health/heartbeat"
)

// statusPass carries the state of steps 6 to 10 of the procedure.
type statusPass struct {
	d                *Decision
	lb               *LoadBalancer
	lbStatus         string
	processed        map[string]bool
	potentialOffline map[string]string
}

func (p *statusPass) change(list *[]StatusChange, id, from, to string) {
	if to != "" && !equalStatus(from, to) {
		*list = append(*list, StatusChange{ID: id, From: from, To: to})
	}
}

// listeners runs step 7; it reports false when Octavia would abort.
func (p *statusPass) listeners(msg *heartbeat.Message) bool {
	reported := make(map[string]*heartbeat.Listener, len(msg.Listeners))
	for i := range msg.Listeners {
		reported[msg.Listeners[i].ID] = &msg.Listeners[i]
	}
	odd := &msg.ListenersOdd
	for i := range p.lb.Listeners {
		l := &p.lb.Listeners[i]
		r, ok := reported[l.ID]
		if odd.Kind != heartbeat.KindNormal {
			// An array or a string (anything else failed the count):
			// Python's "in" may find the id, and indexing then fails.
			if found, _ := odd.Contains(l.ID); found {
				p.d.abort(AbortListenersNotObject, `"listeners" is `+odd.Kind.String()+" holding listener "+l.ID)
				return false
			}
		}
		if !ok {
			status := StatusOffline
			if l.Enabled && p.lb.ProvisioningStatus == "ACTIVE" {
				status = StatusError
			}
			p.change(&p.d.Listeners, l.ID, l.OperatingStatus, status)
			continue
		}
		if r.NotObject {
			p.d.abort(AbortListenerNotObject, "listener "+l.ID+" is not an object")
			return false
		}
		var status string
		switch r.Status { // an absent or non-string status is unknown: no change
		case "OPEN":
			status = StatusOnline
		case "FULL":
			status = StatusDegraded
			if p.lbStatus == StatusOnline {
				p.lbStatus = StatusDegraded
			}
		}
		p.change(&p.d.Listeners, l.ID, l.OperatingStatus, status)
		if r.Empty { // {} is false to Python: its pools are not looked at
			continue
		}
		if msg.VersionNotComparable {
			p.d.abort(AbortVersionNotComparable, `"ver" cannot be compared with 2`)
			return false
		}
		if msg.PoolsPerListener() {
			if !r.HasPools {
				p.d.abort(AbortListenerPoolsMissing, "listener "+l.ID+" reported no pools")
				return false
			}
			if r.PoolsNotObject {
				p.d.abort(AbortPoolsNotObject, "the pools of listener "+l.ID+" are not an object")
				return false
			}
			if !p.pools(heartbeat.NormalizePools(r.Pools)) {
				return false
			}
		}
	}
	return true
}

// pools runs pool processing for every database pool not yet processed;
// it reports false when Octavia would abort.
func (p *statusPass) pools(reported []heartbeat.Pool) bool {
	byID := make(map[string]*heartbeat.Pool, len(reported))
	for i := range reported {
		byID[reported[i].Key] = &reported[i]
	}
	if p.processed == nil {
		p.processed = make(map[string]bool, len(p.lb.Pools))
	}
	for i := range p.lb.Pools {
		pool := &p.lb.Pools[i]
		if p.processed[pool.ID] {
			continue
		}
		r, ok := byID[pool.ID]
		if !ok {
			p.potentialOffline[pool.ID] = pool.OperatingStatus
			continue
		}
		p.processed[pool.ID] = true
		if !p.pool(pool, r) {
			return false
		}
	}
	return true
}

// pool is Octavia's _process_pool_status for a reported pool; it reports
// false when Octavia would abort.
func (p *statusPass) pool(pool *Pool, r *heartbeat.Pool) bool {
	if r.NotObject {
		p.d.abort(AbortPoolNotObject, "pool "+pool.ID+" is not an object")
		return false
	}
	var status string
	switch r.Status { // an absent or non-string status is unknown
	case "UP":
		status = StatusOnline
	case "DOWN":
		status = StatusError
		p.lbStatus = StatusError
	}
	if r.MembersAbsent {
		p.d.abort(AbortMembersMissing, "pool "+pool.ID+" reported no members")
		return false
	}
	members := newMemberLookup(r.Members, pool.Members)
	defer members.release()
	odd := &r.MembersOdd
	for i := range pool.Members {
		m := &pool.Members[i]
		reported := members.find(i, m.ID)
		ok := reported != nil
		if odd.Kind != heartbeat.KindNormal {
			found, sized := odd.Contains(m.ID)
			if !sized || found {
				p.d.abort(AbortMembersNotObject, "the members of pool "+pool.ID+" are "+odd.Kind.String())
				return false
			}
		}
		if ok && reported.StatusOdd != heartbeat.KindNormal {
			p.d.abort(AbortMemberStatusNotString, "member "+m.ID+" status is "+reported.StatusOdd.String())
			return false
		}
		var to string
		switch {
		case !ok:
			if m.OperatingStatus != StatusNoMonitor {
				to = StatusOffline
			}
		case hasPrefix(reported.Status, "UP"):
			to = StatusOnline
		case hasPrefix(reported.Status, "DOWN"):
			to = StatusError
			if status == StatusOnline {
				status = StatusDegraded
				if p.lbStatus == StatusOnline {
					p.lbStatus = StatusDegraded
				}
			}
		case reported.Status == "DRAIN":
			to = StatusDraining
		case reported.Status == "MAINT":
			to = StatusOffline
		case reported.Status == "no check":
			to = StatusNoMonitor
		}
		p.change(&p.d.Members, m.ID, m.OperatingStatus, to)
	}
	p.change(&p.d.Pools, pool.ID, pool.OperatingStatus, status)
	return true
}

func hasPrefix(s, prefix string) bool { return len(s) >= len(prefix) && s[:len(prefix)] == prefix }

// equalStatus is Octavia's "changed?" test, which ignores case.
func equalStatus(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// memberLookup finds a pool's reported members by id, the last one when an
// id repeats (as a Python dict built from the datagram keeps it). It is
// the per-member part of the status rules, so it avoids what a map costs
// per heartbeat where it can: when the heartbeat lists exactly the
// database's members in the database's order (id order), the i-th database
// member is the i-th reported one; a short list is scanned; only a long,
// differently ordered one is indexed, in a map reused across heartbeats.
type memberLookup struct {
	reported   []heartbeat.Member
	positional bool
	byID       *map[string]int32
}

// memberScanMax is how many reported members are scanned rather than
// indexed: with random UUIDs a comparison mostly stops at the first byte.
const memberScanMax = 16

// maxPooledIndex keeps one huge heartbeat from pinning its index.
const maxPooledIndex = 4096

var memberIndexes = sync.Pool{New: func() any { m := make(map[string]int32); return &m }}

func newMemberLookup(reported []heartbeat.Member, db []Member) memberLookup {
	// Positions stand for ids only where the database's ids are distinct,
	// which ascending order (the topology's) proves in passing.
	l := memberLookup{reported: reported, positional: len(reported) == len(db)}
	for i := 0; l.positional && i < len(db); i++ {
		l.positional = reported[i].ID == db[i].ID && (i == 0 || db[i-1].ID < db[i].ID)
	}
	if !l.positional && len(reported) > memberScanMax {
		l.byID = memberIndexes.Get().(*map[string]int32)
		index := *l.byID
		for i := range reported {
			index[reported[i].ID] = int32(i) // a repeated member id: the last one wins
		}
	}
	return l
}

// find returns the reported member with database member i's id, or nil.
func (l *memberLookup) find(i int, id string) *heartbeat.Member {
	switch {
	case l.positional:
		// The database's ids are distinct, so a positional match leaves
		// no repeated id among the reported ones.
		return &l.reported[i]
	case l.byID != nil:
		if j, ok := (*l.byID)[id]; ok {
			return &l.reported[j]
		}
		return nil
	}
	for j := len(l.reported) - 1; j >= 0; j-- {
		if l.reported[j].ID == id {
			return &l.reported[j]
		}
	}
	return nil
}

func (l *memberLookup) release() {
	if l.byID == nil {
		return
	}
	if len(*l.byID) <= maxPooledIndex {
		clear(*l.byID)
		memberIndexes.Put(l.byID)
	}
	l.byID = nil
}
