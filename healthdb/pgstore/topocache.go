package pgstore

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/octavia-vpp/health/healthdb"
)

// topologyCache keeps the topologies of live amphorae between batches, so
// that a steady heartbeat costs one index lookup of its load balancer's
// versions instead of a read of its graph ([health_manager]
// topology_cache_seconds; docs/deviations.md, docs/schema.md "Topology
// versions").
//
// Every insert, update and delete of a row the topology read uses
// (amphora, load_balancer, listener, pool, member) bumps its load
// balancer's topology version in the same transaction, by trigger; every
// status write of a health manager of ours bumps the status version
// instead (Store.Apply). Versions are values of one sequence and never go
// back. A cached topology is used only while both versions, read in a
// snapshot after it was read, are still the ones it was read under: a
// commit that changed any of its rows is visible in that snapshot
// together with its bump, or else it committed after the snapshot, and
// the batch saw what a fresh read at that moment would have seen.
//
// The triggers are the cache's foundation, so the same statement that
// reads the versions also checks that every trigger is still there,
// enabled, and unchanged (its pg_trigger row's oid and xmin: disabling and
// re-enabling a trigger writes a new row version, which changes its xmin).
// If one is missing or disabled the cache turns itself off, says so once
// at ERROR, and every batch reads afresh until a check, once a minute,
// finds them all again.
//
// What no trigger sees is bounded by the time limit (ttl): changes made
// with session_replication_role = replica (superusers only), or by
// anything that sets ovh_health.status_writer without bumping.
//
// Each load balancer is kept as one compact string (topocompact.go) and
// each batch gets its own expansion of it. The entries' bytes are bounded
// (maxBytes, [health_manager] topology_cache_max_mb): a full cache admits
// no more load balancers, which are then read every batch, as with the
// cache off.
type topologyCache struct {
	store    *Store
	ttl      time.Duration
	maxBytes int64 // the bound of bytes; <= 0: none
	log      *slog.Logger

	mu       sync.Mutex
	amphorae map[string]cachedAmphora // keys are substrings of the values' ids
	lbs      map[string]cachedLB      // keys are substrings of the values' blobs
	codes    codeTable
	epoch    int64 // the truncate epoch the entries were read under
	// triggers is what the last full check found (nil: none yet, or the
	// cache is off); checked is when it ran.
	triggers  []triggerRow
	enabled   bool
	checked   time.Time
	lastSweep time.Time

	hits, misses, invalidated atomic.Uint64
	on                        atomic.Bool
	// bytes is what the entries hold by the count of entryBytes, written
	// under mu.
	bytes atomic.Int64
}

// cachedAmphora is one allocation: its three ids in one string.
type cachedAmphora struct {
	ids               string // amphora id, compute id, load balancer id
	idEnd, computeEnd uint32
	// topology is the load balancer's topology version when this amphora
	// was read: an amphora row change bumps its load balancer, so the
	// entry is good only while the load balancer's entry has this same
	// version (the load balancer may have been re-read since).
	topology int64
}

func newCachedAmphora(id, computeID, lbID string, topology int64) cachedAmphora {
	return cachedAmphora{ids: id + computeID + lbID, idEnd: uint32(len(id)),
		computeEnd: uint32(len(id) + len(computeID)), topology: topology}
}

func (a cachedAmphora) id() string        { return a.ids[:a.idEnd] }
func (a cachedAmphora) computeID() string { return a.ids[a.idEnd:a.computeEnd] }
func (a cachedAmphora) lbID() string      { return a.ids[a.computeEnd:] }

type cachedLB struct {
	blob    string // codeTable.compact's; each batch gets its own expansion
	version lbVersion
	expires time.Time
}

// What an entry costs beyond its string, by the count of maxBytes: its map
// slot with the key's and value's headers, and the string allocation's
// rounding up to a size class, on average.
const (
	lbEntryOverhead      = 96
	amphoraEntryOverhead = 80
)

func (e cachedLB) entryBytes() int64      { return int64(len(e.blob)) + lbEntryOverhead }
func (a cachedAmphora) entryBytes() int64 { return int64(len(a.ids)) + amphoraEntryOverhead }

// putLB admits or replaces a load balancer's entry, unless that would take
// the cache beyond maxBytes: then the load balancer is not cached (its old
// entry, if any, is dropped) and is read afresh each batch, as with the
// cache off, until entries free their bytes.
func (c *topologyCache) putLB(e cachedLB) bool {
	id := blobID(e.blob)
	c.dropLB(id)
	if c.maxBytes > 0 && c.bytes.Load()+e.entryBytes() > c.maxBytes {
		return false
	}
	c.lbs[id] = e
	c.bytes.Add(e.entryBytes())
	return true
}

func (c *topologyCache) dropLB(id string) {
	if e, ok := c.lbs[id]; ok {
		delete(c.lbs, id)
		c.bytes.Add(-e.entryBytes())
	}
}

func (c *topologyCache) putAmphora(a cachedAmphora) {
	c.dropAmphora(a.id())
	if c.maxBytes > 0 && c.bytes.Load()+a.entryBytes() > c.maxBytes {
		return
	}
	c.amphorae[a.id()] = a
	c.bytes.Add(a.entryBytes())
}

func (c *topologyCache) dropAmphora(id string) {
	if a, ok := c.amphorae[id]; ok {
		delete(c.amphorae, id)
		c.bytes.Add(-a.entryBytes())
	}
}

// empty drops every entry.
func (c *topologyCache) empty() {
	clear(c.lbs)
	clear(c.amphorae)
	c.bytes.Store(0)
}

// cacheStats says how a load was served.
type cacheStats struct {
	Hits, Misses, Invalidated int
}

// triggerCheckInterval is how often a cache that turned itself off looks
// for its triggers again.
const triggerCheckInterval = time.Minute

func newTopologyCache(store *Store, ttl time.Duration, maxBytes int64, log *slog.Logger) *topologyCache {
	if log == nil {
		log = slog.Default()
	}
	c := &topologyCache{store: store, ttl: ttl, maxBytes: maxBytes, log: log,
		amphorae: map[string]cachedAmphora{}, lbs: map[string]cachedLB{}}
	store.cachesMu.Lock()
	store.caches = append(store.caches, c)
	store.cachesMu.Unlock()
	return c
}

// NewTopologyCache implements healthdb.TopologyCacher: a cache of this
// store's topologies, each kept at most ttl, holding at most maxBytes
// (<= 0: no bound).
func (s *Store) NewTopologyCache(ttl time.Duration, maxBytes int64, log *slog.Logger) healthdb.TopologyCache {
	return newTopologyCache(s, ttl, maxBytes, log)
}

// Load implements healthdb.TopologyCache.
func (c *topologyCache) Load(ctx context.Context, ids []string, now time.Time) (map[string]*healthdb.Topology, error) {
	topos, _, err := c.load(ctx, ids, now)
	return topos, err
}

// Stats implements healthdb.TopologyCache.
func (c *topologyCache) Stats() healthdb.TopologyCacheStats {
	return healthdb.TopologyCacheStats{
		Enabled: c.on.Load(), Hits: c.hits.Load(), Misses: c.misses.Load(), Invalidated: c.invalidated.Load(),
		Bytes: uint64(max(c.bytes.Load(), 0)),
	}
}

// load returns the same topologies Store.LoadTopologies would, at time now.
func (c *topologyCache) load(ctx context.Context, ids []string, now time.Time) (topos map[string]*healthdb.Topology, stats cacheStats, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	defer func() {
		c.hits.Add(uint64(stats.Hits))
		c.misses.Add(uint64(stats.Misses))
		c.invalidated.Add(uint64(stats.Invalidated))
	}()
	if !c.ready(ctx, now) {
		topos, _, err = c.store.loadTopologies(ctx, ids, false)
		stats.Misses = len(ids)
		return topos, stats, err
	}
	c.sweep(now)

	// What the candidates were cached as, taken before validate, which
	// may empty the cache.
	type candidate struct{ id, lbID, computeID string }
	var candidates []candidate
	var misses []string
	for _, id := range ids {
		if a, ok := c.amphorae[id]; ok {
			if lb, ok := c.lbs[a.lbID()]; ok && now.Before(lb.expires) && lb.version.topology == a.topology {
				candidates = append(candidates, candidate{id, a.lbID(), a.computeID()})
				continue
			}
		}
		misses = append(misses, id)
	}
	lbIDs := make([]string, 0, len(candidates))
	for _, cand := range candidates {
		lbIDs = append(lbIDs, cand.lbID)
	}
	valid, err := c.validate(ctx, lbIDs, now)
	if err != nil {
		return nil, stats, err
	}
	if !c.enabled { // validate found a trigger missing
		topos, _, err = c.store.loadTopologies(ctx, ids, false)
		stats.Misses = len(ids)
		return topos, stats, err
	}
	topos = make(map[string]*healthdb.Topology, len(ids))
	batchLBs := map[string]*healthdb.LoadBalancer{}
	for _, cand := range candidates {
		if !valid[cand.lbID] {
			stats.Invalidated++
			misses = append(misses, cand.id)
			continue
		}
		lb := batchLBs[cand.lbID]
		if lb == nil {
			lb = c.codes.expand(c.lbs[cand.lbID].blob)
			batchLBs[cand.lbID] = lb
		}
		topos[cand.id] = &healthdb.Topology{AmphoraID: cand.id, AmphoraExists: true, ComputeID: cand.computeID, LB: lb}
		stats.Hits++
	}
	stats.Misses = len(misses)
	if len(misses) == 0 {
		return topos, stats, nil
	}
	fresh, versions, err := c.store.loadTopologies(ctx, misses, true)
	if err != nil {
		if ctx.Err() != nil {
			return nil, stats, err
		}
		// Perhaps only the versions cannot be read: read without them.
		c.disable(now, "cannot read the topology versions: "+err.Error())
		topos, _, err = c.store.loadTopologies(ctx, ids, false)
		stats = cacheStats{Misses: len(ids)}
		return topos, stats, err
	}
	if versions.epoch != c.epoch {
		// A table was truncated since the entries were read.
		c.empty()
		c.epoch = versions.epoch
	}
	for _, id := range misses {
		t := fresh[id]
		if t == nil || t.LB == nil {
			// Unknown amphorae, zombies and amphorae without a live load
			// balancer are rare and may come back to life: always read.
			c.dropAmphora(id)
			if t != nil {
				topos[id] = t
			}
			continue
		}
		if lb := batchLBs[t.LB.ID]; lb != nil {
			// The other amphora of an ACTIVE_STANDBY pair was a hit:
			// both must share one in-memory load balancer, the fresh one.
			*lb = *t.LB
			t.LB = lb
		}
		topos[id] = t
		batchLBs[t.LB.ID] = t.LB
		v := versions.lbs[t.LB.ID]
		if e, ok := c.lbs[t.LB.ID]; ok && e.version == v {
			// The other amphora of the pair was read in this batch too.
			c.putAmphora(newCachedAmphora(id, t.ComputeID, t.LB.ID, v.topology))
			continue
		}
		e := cachedLB{blob: c.codes.compact(t.LB), version: v, expires: c.expiry(now)}
		if c.putLB(e) {
			c.putAmphora(newCachedAmphora(id, t.ComputeID, t.LB.ID, v.topology))
		} else {
			c.dropAmphora(id)
		}
	}
	return topos, stats, nil
}

// expiry spreads the entries' ends over the last quarter of the time
// limit, so that those read together at start-up are not all read again
// in the same second.
func (c *topologyCache) expiry(now time.Time) time.Time {
	return now.Add(c.ttl - rand.N(c.ttl/4+1))
}

// validateVersions reads the current versions of the given load
// balancers and of the truncate epoch ('*'), and, in the same snapshot,
// counts the expected triggers still there unchanged and enabled (the
// writer -1 row). The snapshot matters: a trigger disabled before it is
// seen disabled or, re-enabled, with a new xmin; one disabled after it
// can only have missed changes made after it.
const validateVersions = `
SELECT load_balancer_id, writer, version FROM ovh_lb_version WHERE load_balancer_id = ANY($1::varchar[])
UNION ALL
SELECT NULL, -1, count(*)
FROM pg_trigger t JOIN unnest($2::int8[], $3::text[]) AS e(oid, xmin) ON t.oid::int8 = e.oid AND t.xmin::text = e.xmin
WHERE t.tgenabled IN ('O', 'A')`

// validate reports which of the candidate load balancers still
// have the versions their entries were read under, dropping the entries
// of those that do not. When the triggers changed it re-checks them:
// the cache is then emptied, and left off if one is missing.
func (c *topologyCache) validate(ctx context.Context, candidateLBs []string, now time.Time) (map[string]bool, error) {
	if len(candidateLBs) == 0 {
		return nil, nil
	}
	lbIDs := []string{"*"}
	seen := map[string]bool{}
	for _, lbID := range candidateLBs {
		if !seen[lbID] {
			seen[lbID] = true
			lbIDs = append(lbIDs, lbID)
		}
	}
	oids := make([]int64, len(c.triggers))
	xmins := make([]string, len(c.triggers))
	for i, t := range c.triggers {
		oids[i], xmins[i] = t.oid, t.xmin
	}
	current := make(map[string]lbVersion, len(lbIDs))
	var epoch int64
	var intact int64 = -1
	rows, err := c.store.pool.Query(ctx, validateVersions, lbIDs, oids, xmins)
	if err == nil {
		err = scanRows(rows, func(rows pgx.Rows) error {
			var lbID *string
			var writer int16
			var version int64
			if err := rows.Scan(&lbID, &writer, &version); err != nil {
				return err
			}
			switch {
			case writer < 0:
				intact = version
			case *lbID == "*":
				epoch = version
			default:
				v := current[*lbID]
				if writer == 0 {
					v.topology = version
				} else {
					v.status = version
				}
				current[*lbID] = v
			}
			return nil
		})
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		c.disable(now, "cannot check the topology versions: "+err.Error())
		return nil, nil
	}
	if intact != int64(len(c.triggers)) {
		if !c.checkTriggers(ctx, now) {
			return nil, nil
		}
		return map[string]bool{}, nil // emptied: every candidate is read again
	}
	if epoch != c.epoch {
		c.empty()
		c.epoch = epoch
		return map[string]bool{}, nil
	}
	valid := make(map[string]bool, len(lbIDs))
	for _, lbID := range lbIDs[1:] {
		if c.lbs[lbID].version == current[lbID] {
			valid[lbID] = true
		} else {
			c.dropLB(lbID)
		}
	}
	return valid, nil
}

// statusWritten updates the entries of the load balancers a status write
// of this store changed (Store.Apply, after its commit). An entry whose
// versions were exactly the ones the write replaced held the database's
// state just before it, so it gets the write's statuses and new version:
// our own writes do not cost a re-read. Any other entry is dropped.
func (c *topologyCache) statusWritten(w *healthdb.Writes, bumps []statusBump) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, b := range bumps {
		e, ok := c.lbs[b.lbID]
		if !ok {
			continue
		}
		c.dropLB(b.lbID)
		if e.version != (lbVersion{topology: b.topology, status: b.previous}) {
			continue
		}
		e.version.status = b.version
		lb := c.codes.expand(e.blob)
		applyStatuses(lb, w)
		e.blob = c.codes.compact(lb)
		c.putLB(e)
	}
}

// statusWritten tells every cache of this store about a committed status
// write.
func (s *Store) statusWritten(w *healthdb.Writes, bumps []statusBump) {
	s.cachesMu.Lock()
	caches := slices.Clone(s.caches)
	s.cachesMu.Unlock()
	for _, c := range caches {
		c.statusWritten(w, bumps)
	}
}

// applyStatuses sets the statuses a write gave to lb's rows, as the
// write's UPDATEs set them in the database.
func applyStatuses(lb *healthdb.LoadBalancer, w *healthdb.Writes) {
	if s, ok := w.LoadBalancers[lb.ID]; ok {
		lb.OperatingStatus = s
	}
	for i := range lb.Listeners {
		if s, ok := w.Listeners[lb.Listeners[i].ID]; ok {
			lb.Listeners[i].OperatingStatus = s
		}
	}
	for i := range lb.Pools {
		p := &lb.Pools[i]
		if s, ok := w.Pools[p.ID]; ok {
			p.OperatingStatus = s
		}
		for j := range p.Members {
			if s, ok := w.Members[p.Members[j].ID]; ok {
				p.Members[j].OperatingStatus = s
			}
		}
	}
}

// The triggers of migration 00006, on every table the topology read uses.
var (
	topologyTables   = []string{"amphora", "load_balancer", "listener", "pool", "member"}
	topologyTriggers = []string{"ovh_topology_version", "ovh_topology_truncate"}
)

// triggerRow is one of our triggers as pg_trigger holds it.
type triggerRow struct {
	table, name string
	oid         int64
	xmin        string
	enabled     bool
}

const selectTriggers = `
SELECT r.tbl, t.tgname::text, t.oid::int8, t.xmin::text, t.tgenabled IN ('O', 'A')
FROM unnest($1::text[]) AS r(tbl)
JOIN pg_trigger t ON t.tgrelid = to_regclass(r.tbl)
WHERE t.tgname = ANY($2::text[]) AND t.tgfoid = to_regproc('ovh_topology_changed')`

// ready reports whether the cache is on, checking the triggers first
// when that is due: on first use, and once a minute while off.
func (c *topologyCache) ready(ctx context.Context, now time.Time) bool {
	if c.enabled {
		return true
	}
	if !c.checked.IsZero() && !now.Before(c.checked) && now.Sub(c.checked) < triggerCheckInterval {
		return false
	}
	return c.checkTriggers(ctx, now)
}

// checkTriggers looks for every trigger the cache needs, empties the
// cache, and turns it on if they are all there and enabled, off if not.
func (c *topologyCache) checkTriggers(ctx context.Context, now time.Time) bool {
	c.empty()
	c.checked = now
	var found []triggerRow
	rows, err := c.store.pool.Query(ctx, selectTriggers, topologyTables, topologyTriggers)
	if err == nil {
		err = scanRows(rows, func(rows pgx.Rows) error {
			var t triggerRow
			if err := rows.Scan(&t.table, &t.name, &t.oid, &t.xmin, &t.enabled); err != nil {
				return err
			}
			found = append(found, t)
			return nil
		})
	}
	if err != nil {
		c.disable(now, "cannot read pg_trigger: "+err.Error())
		return false
	}
	var missing []string
	for _, table := range topologyTables {
		for _, name := range topologyTriggers {
			i := slices.IndexFunc(found, func(t triggerRow) bool { return t.table == table && t.name == name })
			switch {
			case i < 0:
				missing = append(missing, name+" on "+table+" (missing)")
			case !found[i].enabled:
				missing = append(missing, name+" on "+table+" (disabled)")
			}
		}
	}
	if len(missing) > 0 {
		c.disable(now, "triggers not usable: "+strings.Join(missing, ", ")+
			"; run `octavia-health-manager migrate` (migration 00006) with a role allowed to create triggers on Octavia's tables, "+
			"or enable them; topology_cache_seconds = 0 turns the cache off without this message")
		return false
	}
	if !c.enabled && c.triggers != nil {
		c.log.Info("topology cache on again: every trigger it relies on is in place")
	} else if c.enabled {
		c.log.Info("topology cache emptied: its triggers were altered or re-created since they were last checked")
	}
	c.triggers, c.enabled = found, true
	c.on.Store(true)
	return true
}

// disable turns the cache off, saying why once per change of state.
func (c *topologyCache) disable(now time.Time, why string) {
	c.empty()
	c.checked = now
	if c.enabled || c.triggers == nil {
		c.log.Error("topology cache off: every batch reads its topologies afresh; checking again every minute",
			"reason", why)
	}
	c.enabled = false
	c.triggers = []triggerRow{} // not nil: the ERROR was said
	c.on.Store(false)
}

// sweep drops expired entries, at most once per ttl, so that amphorae
// that stopped heartbeating do not hold memory.
func (c *topologyCache) sweep(now time.Time) {
	if now.Sub(c.lastSweep) < c.ttl {
		return
	}
	c.lastSweep = now
	for id, lb := range c.lbs {
		if !now.Before(lb.expires) {
			c.dropLB(id)
		}
	}
	for id, a := range c.amphorae {
		if lb, ok := c.lbs[a.lbID()]; !ok || lb.version.topology != a.topology {
			c.dropAmphora(id)
		}
	}
}
