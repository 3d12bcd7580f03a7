// Package memstore is an in-memory implementation of the healthdb store
// interfaces (healthdb.UpdaterStore and healthdb.WatcherStore), for tests
// that exercise the updater's or the watcher's logic rather than SQL. It
// gives the same results as the PostgreSQL store for the status
// procedure, the claims and the failover_threshold breaker: both pass the
// conformance suite in healthdb/storetest.
//
// Every call is one atomic step under one lock, which is the strongest
// isolation PostgreSQL could give: two claimers never get the same
// amphora. Times are the store's clock (New's now), as naive UTC truncated
// to microseconds, the form PostgreSQL's timestamp columns hold; the
// PostgreSQL store uses the database server's clock the same way.
package memstore

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	"github.com/octavia-vpp/health/healthdb"
)

// Octavia's amphora and provisioning statuses the store's rules name.
const (
	statusDeleted         = "DELETED"
	statusPendingDelete   = "PENDING_DELETE"
	statusAllocated       = "ALLOCATED"
	statusFailoverStopped = "FAILOVER_STOPPED"
)

// Amphora is a row of Octavia's amphora table, as far as the health
// manager reads it. Empty LoadBalancerID and ComputeID stand for NULL.
type Amphora struct {
	ID, LoadBalancerID, Status, ComputeID string
	UpdatedAt                             *time.Time
}

// LoadBalancer is a row of load_balancer.
type LoadBalancer struct {
	ID, ProvisioningStatus, OperatingStatus string
	Enabled                                 bool
	UpdatedAt                               *time.Time
}

// Listener is a row of listener; empty DefaultPoolID stands for NULL.
type Listener struct {
	ID, LoadBalancerID, Protocol, OperatingStatus, DefaultPoolID string
	Enabled                                                      bool
	UpdatedAt                                                    *time.Time
}

// Pool is a row of pool.
type Pool struct {
	ID, LoadBalancerID, OperatingStatus string
	UpdatedAt                           *time.Time
}

// Member is a row of member.
type Member struct {
	ID, PoolID, OperatingStatus string
	Enabled                     bool
	UpdatedAt                   *time.Time
}

// Health is a row of amphora_health.
type Health struct {
	LastUpdate time.Time
	Busy       bool
}

// operatingStatuses are the rows of Octavia's operating_status table.
var operatingStatuses = map[string]bool{
	"DEGRADED": true, "DRAINING": true, "ERROR": true, "NO_MONITOR": true, "OFFLINE": true, "ONLINE": true,
}

// Tables whose operating_status Apply writes, for OperatingStatus.
const (
	TableLoadBalancer = "load_balancer"
	TableListener     = "listener"
	TablePool         = "pool"
	TableMember       = "member"
)

// Operations a fault may be injected into (SetFault).
const (
	OpLoadTopologies      = "LoadTopologies"
	OpApply               = "Apply"
	OpCandidatesExist     = "CandidatesExist"
	OpClaimStale          = "ClaimStale"
	OpUnclaim             = "Unclaim"
	OpLoadBalancerOfClaim = "LoadBalancerOfClaim"
)

// Store holds Octavia's rows in memory. It is safe for concurrent use.
type Store struct {
	now func() time.Time

	mu        sync.Mutex
	fault     func(op string) error
	amphorae  map[string]*Amphora
	lbs       map[string]*LoadBalancer
	listeners map[string]*Listener
	pools     map[string]*Pool
	members   map[string]*Member
	health    map[string]*Health
	// listenerStats: listener_statistics by (listener id, amphora id).
	listenerStats map[[2]string]healthdb.ListenerStatsRow
}

var (
	_ healthdb.UpdaterStore = (*Store)(nil)
	_ healthdb.WatcherStore = (*Store)(nil)
)

// New returns an empty store on the given clock; nil means time.Now.
func New(now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{now: now, amphorae: map[string]*Amphora{}, lbs: map[string]*LoadBalancer{},
		listeners: map[string]*Listener{}, pools: map[string]*Pool{}, members: map[string]*Member{},
		health: map[string]*Health{}}
}

// Now is the store's clock in the form it writes: naive UTC, microseconds.
func (s *Store) Now() time.Time { return dbTime(s.now()) }

func dbTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// SetFault makes every call of an operation fail with fault(op) when that
// is not nil, before it reads or writes anything; nil removes it.
func (s *Store) SetFault(fault func(op string) error) {
	s.mu.Lock()
	s.fault = fault
	s.mu.Unlock()
}

// begin takes the lock and checks for an injected fault; on error the lock
// is released.
func (s *Store) begin(op string) error {
	s.mu.Lock()
	if s.fault != nil {
		if err := s.fault(op); err != nil {
			s.mu.Unlock()
			return err
		}
	}
	return nil
}

// PutAmphora inserts or replaces an amphora row.
func (s *Store) PutAmphora(a Amphora) { s.mu.Lock(); s.amphorae[a.ID] = &a; s.mu.Unlock() }

// PutLoadBalancer inserts or replaces a load_balancer row.
func (s *Store) PutLoadBalancer(lb LoadBalancer) { s.mu.Lock(); s.lbs[lb.ID] = &lb; s.mu.Unlock() }

// PutListener inserts or replaces a listener row.
func (s *Store) PutListener(l Listener) { s.mu.Lock(); s.listeners[l.ID] = &l; s.mu.Unlock() }

// PutPool inserts or replaces a pool row.
func (s *Store) PutPool(p Pool) { s.mu.Lock(); s.pools[p.ID] = &p; s.mu.Unlock() }

// PutMember inserts or replaces a member row.
func (s *Store) PutMember(m Member) { s.mu.Lock(); s.members[m.ID] = &m; s.mu.Unlock() }

// PutHealth inserts or replaces an amphora_health row.
func (s *Store) PutHealth(amphoraID string, h Health) {
	h.LastUpdate = dbTime(h.LastUpdate)
	s.mu.Lock()
	s.health[amphoraID] = &h
	s.mu.Unlock()
}

// DeleteHealth removes an amphora_health row, as Octavia's failover does.
func (s *Store) DeleteHealth(amphoraID string) {
	s.mu.Lock()
	delete(s.health, amphoraID)
	s.mu.Unlock()
}

// Amphora returns a copy of an amphora row.
func (s *Store) Amphora(id string) (Amphora, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.amphorae[id]
	if a == nil {
		return Amphora{}, false
	}
	return *a, true
}

// Health returns a copy of an amphora_health row.
func (s *Store) Health(amphoraID string) (Health, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.health[amphoraID]
	if h == nil {
		return Health{}, false
	}
	return *h, true
}

// OperatingStatus returns the operating_status and updated_at of a row of
// one of the Table* tables.
func (s *Store) OperatingStatus(table, id string) (status string, updatedAt *time.Time, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	status, updatedAt, ok = "", nil, false
	s.eachStatus(table, func(rowID string, st *string, at **time.Time) {
		if rowID == id {
			status, updatedAt, ok = *st, *at, true
		}
	})
	return status, updatedAt, ok
}

// eachStatus visits the operating_status and updated_at fields of a
// table's rows; s.mu is held.
func (s *Store) eachStatus(table string, visit func(id string, status *string, updatedAt **time.Time)) {
	switch table {
	case TableLoadBalancer:
		for id, r := range s.lbs {
			visit(id, &r.OperatingStatus, &r.UpdatedAt)
		}
	case TableListener:
		for id, r := range s.listeners {
			visit(id, &r.OperatingStatus, &r.UpdatedAt)
		}
	case TablePool:
		for id, r := range s.pools {
			visit(id, &r.OperatingStatus, &r.UpdatedAt)
		}
	case TableMember:
		for id, r := range s.members {
			visit(id, &r.OperatingStatus, &r.UpdatedAt)
		}
	}
}

// LoadTopologies implements healthdb.UpdaterStore with the PostgreSQL
// store's rules: a live amphora (not DELETED) on a load balancer that is
// not DELETED gets that load balancer's graph; the versionless-UDP flag
// says whether a UDP listener's default pool has an enabled member.
func (s *Store) LoadTopologies(_ context.Context, amphoraIDs []string) (map[string]*healthdb.Topology, error) {
	if err := s.begin(OpLoadTopologies); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	topos := make(map[string]*healthdb.Topology, len(amphoraIDs))
	lbs := map[string]*healthdb.LoadBalancer{}
	for _, id := range amphoraIDs {
		a := s.amphorae[id]
		if a == nil {
			continue
		}
		t := &healthdb.Topology{AmphoraID: id, AmphoraExists: true, ComputeID: a.ComputeID}
		if row := s.lbs[a.LoadBalancerID]; a.Status != statusDeleted && row != nil && row.ProvisioningStatus != statusDeleted {
			lb := lbs[row.ID]
			if lb == nil {
				lb = s.graph(row)
				lbs[row.ID] = lb
			}
			t.LB = lb
		}
		topos[id] = t
	}
	return topos, nil
}

// graph builds a load balancer's topology, sorted by id; s.mu is held.
func (s *Store) graph(row *LoadBalancer) *healthdb.LoadBalancer {
	lb := &healthdb.LoadBalancer{ID: row.ID, Enabled: row.Enabled, ProvisioningStatus: row.ProvisioningStatus,
		OperatingStatus: row.OperatingStatus}
	for _, l := range s.listeners {
		if l.LoadBalancerID != row.ID {
			continue
		}
		hasEnabled := false
		if l.Protocol == "UDP" && l.DefaultPoolID != "" {
			for _, m := range s.members {
				if m.PoolID == l.DefaultPoolID && m.Enabled {
					hasEnabled = true
					break
				}
			}
		}
		lb.Listeners = append(lb.Listeners, healthdb.Listener{ID: l.ID, OperatingStatus: l.OperatingStatus,
			Protocol: l.Protocol, Enabled: l.Enabled, DefaultPoolHasEnabledMember: hasEnabled})
	}
	for _, p := range s.pools {
		if p.LoadBalancerID != row.ID {
			continue
		}
		pool := healthdb.Pool{ID: p.ID, OperatingStatus: p.OperatingStatus}
		for _, m := range s.members {
			if m.PoolID == p.ID {
				pool.Members = append(pool.Members, healthdb.Member{ID: m.ID, OperatingStatus: m.OperatingStatus})
			}
		}
		sort.Slice(pool.Members, func(i, j int) bool { return pool.Members[i].ID < pool.Members[j].ID })
		lb.Pools = append(lb.Pools, pool)
	}
	sort.Slice(lb.Listeners, func(i, j int) bool { return lb.Listeners[i].ID < lb.Listeners[j].ID })
	sort.Slice(lb.Pools, func(i, j int) bool { return lb.Pools[i].ID < lb.Pools[j].ID })
	return lb
}

// Apply implements healthdb.UpdaterStore: health rows are upserted with
// last_update = now and busy left alone (false on a new row), and
// operating_status and updated_at are set only on rows whose status
// changes (compared exactly, as SQL's <> does).
func (s *Store) Apply(_ context.Context, w *healthdb.Writes) error {
	if w.Empty() {
		return nil
	}
	if err := s.begin(OpApply); err != nil {
		return err
	}
	defer s.mu.Unlock()
	tables := map[string]map[string]string{
		TableLoadBalancer: w.LoadBalancers, TableListener: w.Listeners, TablePool: w.Pools, TableMember: w.Members,
	}
	// Octavia's schema keeps operating_status to the names of its
	// operating_status table (a foreign key): a batch that would write
	// another name fails whole, before anything is written.
	var invalid error
	for table, changes := range tables {
		s.eachStatus(table, func(id string, status *string, _ **time.Time) {
			if to, ok := changes[id]; ok && *status != to && !operatingStatuses[to] && invalid == nil {
				invalid = fmt.Errorf("memstore: %s %s: %q is not an operating status", table, id, to)
			}
		})
	}
	if invalid != nil {
		return invalid
	}
	now := dbTime(s.now())
	for _, id := range w.Health {
		if h := s.health[id]; h != nil {
			h.LastUpdate = now
		} else {
			s.health[id] = &Health{LastUpdate: now}
		}
	}
	for table, changes := range tables {
		if len(changes) == 0 {
			continue
		}
		s.eachStatus(table, func(id string, status *string, updatedAt **time.Time) {
			if to, ok := changes[id]; ok && *status != to {
				*status = to
				at := now
				*updatedAt = &at
			}
		})
	}
	return nil
}

// candidate says whether an amphora may be failed over; s.mu is held.
func (s *Store) candidate(id string) bool {
	a := s.amphorae[id]
	return a != nil && (a.Status == statusAllocated || a.Status == statusFailoverStopped)
}

// CandidatesExist implements healthdb.WatcherStore.
func (s *Store) CandidatesExist(context.Context) (bool, error) {
	if err := s.begin(OpCandidatesExist); err != nil {
		return false, err
	}
	defer s.mu.Unlock()
	for id := range s.health {
		if s.candidate(id) {
			return true, nil
		}
	}
	return false, nil
}

// ClaimStale implements healthdb.WatcherStore with get_stale_amphora's
// steps, as the PostgreSQL store runs them, in one atomic step.
func (s *Store) ClaimStale(_ context.Context, req healthdb.ClaimRequest) (healthdb.ClaimResult, error) {
	if err := s.begin(OpClaimStale); err != nil {
		return healthdb.ClaimResult{}, err
	}
	defer s.mu.Unlock()
	now := dbTime(s.now())
	expiry := now.Add(-req.HeartbeatTimeout)
	var res healthdb.ClaimResult
	for id, h := range s.health {
		if a := s.amphorae[id]; a != nil && a.Status == statusFailoverStopped && !h.Busy && !h.LastUpdate.Before(expiry) {
			a.Status = statusAllocated
			a.UpdatedAt = &now
			res.Recovered++
		}
	}
	var stale []string
	for id, h := range s.health {
		if !h.Busy && h.LastUpdate.Before(expiry) {
			stale = append(stale, id)
		}
	}
	sort.Strings(stale)
	res.Stale = len(stale)
	if req.ThresholdSet && res.Stale >= req.Threshold {
		res.BreakerOpen = true
		for _, id := range stale {
			a := s.amphorae[id]
			if a == nil || a.Status == statusDeleted || a.Status == statusPendingDelete {
				continue
			}
			if a.Status != statusFailoverStopped {
				res.Stopped++
			}
			a.Status = statusFailoverStopped
			a.UpdatedAt = &now
		}
		return res, nil
	}
	if req.Limit <= 0 {
		return res, nil
	}
	excluded := make(map[string]bool, len(req.Exclude))
	for _, id := range req.Exclude {
		excluded[id] = true
	}
	var candidates []string
	for _, id := range stale {
		if s.candidate(id) && !excluded[id] {
			candidates = append(candidates, id)
		}
	}
	rand.Shuffle(len(candidates), func(i, j int) { candidates[i], candidates[j] = candidates[j], candidates[i] })
	if len(candidates) > req.Limit {
		candidates = candidates[:req.Limit]
	}
	for _, id := range candidates {
		h := s.health[id]
		h.Busy = true
		res.Claimed = append(res.Claimed, healthdb.Claimed{AmphoraID: id,
			LoadBalancerID: s.amphorae[id].LoadBalancerID, LastUpdate: h.LastUpdate})
	}
	sort.Slice(res.Claimed, func(i, j int) bool { return res.Claimed[i].AmphoraID < res.Claimed[j].AmphoraID })
	return res, nil
}

// Unclaim implements healthdb.WatcherStore.
func (s *Store) Unclaim(_ context.Context, amphoraIDs []string) error {
	if len(amphoraIDs) == 0 {
		return nil
	}
	if err := s.begin(OpUnclaim); err != nil {
		return err
	}
	defer s.mu.Unlock()
	for _, id := range amphoraIDs {
		if h := s.health[id]; h != nil {
			h.Busy = false
		}
	}
	return nil
}

// LoadBalancerOfClaim implements healthdb.WatcherStore.
func (s *Store) LoadBalancerOfClaim(_ context.Context, amphoraID string) (lbID, provisioningStatus string, ok bool, err error) {
	if err := s.begin(OpLoadBalancerOfClaim); err != nil {
		return "", "", false, err
	}
	defer s.mu.Unlock()
	h := s.health[amphoraID]
	if h == nil || !h.Busy || !s.candidate(amphoraID) {
		return "", "", false, nil
	}
	lb := s.lbs[s.amphorae[amphoraID].LoadBalancerID]
	if lb == nil {
		return "", "", false, nil
	}
	return lb.ID, lb.ProvisioningStatus, true, nil
}

// TxStatus implements healthdb.WatcherStore. This store never leaves a
// claim's outcome unknown, so no transaction id is ever asked about; any
// is answered as aborted (nothing to release).
func (s *Store) TxStatus(context.Context, int64) (string, error) { return healthdb.TxAborted, nil }

// ReadAmphoraHealth returns the amphora_health rows of the given amphorae
// (all when ids is nil) with their amphorae's statuses, for shadow mode.
func (s *Store) ReadAmphoraHealth(_ context.Context, amphoraIDs []string) ([]healthdb.AmphoraHealthRow, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []healthdb.AmphoraHealthRow
	add := func(id string, h *Health) {
		row := healthdb.AmphoraHealthRow{AmphoraID: id, LastUpdate: h.LastUpdate, Busy: h.Busy}
		if a := s.amphorae[id]; a != nil {
			row.Status = a.Status
			if lb := s.lbs[a.LoadBalancerID]; lb != nil {
				row.LBProvisioningStatus = lb.ProvisioningStatus
			}
		}
		out = append(out, row)
	}
	if amphoraIDs == nil {
		for id, h := range s.health {
			add(id, h)
		}
	}
	for _, id := range amphoraIDs {
		if h := s.health[id]; h != nil {
			add(id, h)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].AmphoraID < out[j].AmphoraID })
	return out, dbTime(s.now()), nil
}

// PutListenerStats sets a listener_statistics row.
func (s *Store) PutListenerStats(r healthdb.ListenerStatsRow) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.listenerStats == nil {
		s.listenerStats = map[[2]string]healthdb.ListenerStatsRow{}
	}
	s.listenerStats[[2]string{r.ListenerID, r.AmphoraID}] = r
}

// ReadListenerStatistics returns the listener_statistics rows of the
// given amphorae, for shadow mode.
func (s *Store) ReadListenerStatistics(_ context.Context, amphoraIDs []string) ([]healthdb.ListenerStatsRow, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	want := make(map[string]bool, len(amphoraIDs))
	for _, id := range amphoraIDs {
		want[id] = true
	}
	var out []healthdb.ListenerStatsRow
	for _, r := range s.listenerStats {
		if want[r.AmphoraID] {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ListenerID < out[j].ListenerID })
	return out, nil
}
