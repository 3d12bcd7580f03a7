package pgstore

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/octavia-vpp/health/healthdb"
)

// topologyCache keeps the topologies of live amphorae between batches, so
// that a steady heartbeat costs a check of its rows' versions instead of a
// read of its load balancer's graph. It is opt-in ([health_manager]
// topology_cache_seconds): see docs/deviations.md.
//
// Before a cached topology is used, every row it was read from (the
// amphora, its load balancer, listeners, pools and members) is looked up by
// its physical address (ctid) in one query per table, and must still be
// there with the same xmin. Any UPDATE or DELETE of one of those rows, by
// the API, the worker, another health manager or this one, ends that
// version and sends the load balancer back to a full read. What the check
// cannot see is a row inserted under an unchanged load balancer; Octavia's
// API never does that (it sets the load balancer PENDING_UPDATE in the
// same transaction), and the time limit bounds any other writer.
type topologyCache struct {
	store *Store
	ttl   time.Duration

	mu        sync.Mutex
	amphorae  map[string]*cachedAmphora
	lbs       map[string]*cachedLB
	lastSweep time.Time
}

type cachedAmphora struct {
	computeID string
	lbID      string
	version   rowVersion
}

type cachedLB struct {
	lb       *healthdb.LoadBalancer // never handed out: each batch gets a copy
	versions *lbVersions
	loaded   time.Time
}

// cacheStats says how a load was served.
type cacheStats struct {
	Hits, Misses, Invalidated int
}

func newTopologyCache(store *Store, ttl time.Duration) *topologyCache {
	return &topologyCache{store: store, ttl: ttl, amphorae: map[string]*cachedAmphora{}, lbs: map[string]*cachedLB{}}
}

// NewTopologyCache implements healthdb.TopologyCacher: a cache of this
// store's topologies, each kept at most ttl.
func (s *Store) NewTopologyCache(ttl time.Duration) healthdb.TopologyCache {
	return newTopologyCache(s, ttl)
}

// Load implements healthdb.TopologyCache.
func (c *topologyCache) Load(ctx context.Context, ids []string, now time.Time) (map[string]*healthdb.Topology, error) {
	topos, _, err := c.load(ctx, ids, now)
	return topos, err
}

// load returns the same topologies Store.LoadTopologies would, at time now.
func (c *topologyCache) load(ctx context.Context, ids []string, now time.Time) (map[string]*healthdb.Topology, cacheStats, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var stats cacheStats
	c.sweep(now)

	var candidates, misses []string
	for _, id := range ids {
		if a := c.amphorae[id]; a != nil {
			if lb := c.lbs[a.lbID]; lb != nil && now.Sub(lb.loaded) < c.ttl {
				candidates = append(candidates, id)
				continue
			}
		}
		misses = append(misses, id)
	}
	valid, err := c.validate(ctx, candidates)
	if err != nil {
		return nil, stats, err
	}
	var hits []string
	for _, id := range candidates {
		if valid[id] {
			hits = append(hits, id)
			continue
		}
		stats.Invalidated++
		misses = append(misses, id)
	}

	topos := map[string]*healthdb.Topology{}
	batchLBs := map[string]*healthdb.LoadBalancer{}
	if len(misses) > 0 {
		fresh, versions, err := c.store.loadTopologies(ctx, misses)
		if err != nil {
			return nil, stats, err
		}
		for id, t := range fresh {
			topos[id] = t
			if t.LB == nil {
				// Zombies and amphorae without a live load balancer are rare
				// and may come back to life: always read them.
				delete(c.amphorae, id)
				continue
			}
			batchLBs[t.LB.ID] = t.LB
			c.amphorae[id] = &cachedAmphora{computeID: t.ComputeID, lbID: t.LB.ID, version: versions.amphorae[id]}
			if v := versions.lbs[t.LB.ID]; v != nil {
				c.lbs[t.LB.ID] = &cachedLB{lb: copyLoadBalancer(t.LB), versions: v, loaded: now}
			}
		}
		for _, id := range misses {
			if fresh[id] == nil {
				delete(c.amphorae, id)
			}
		}
	}
	stats.Misses = len(misses)
	for _, id := range hits {
		a := c.amphorae[id]
		lb := batchLBs[a.lbID]
		if lb == nil {
			lb = copyLoadBalancer(c.lbs[a.lbID].lb)
			batchLBs[a.lbID] = lb
		}
		topos[id] = &healthdb.Topology{AmphoraID: id, AmphoraExists: true, ComputeID: a.computeID, LB: lb}
		stats.Hits++
	}
	return topos, stats, nil
}

// selectVersions finds which of the given tuples are still visible.
func selectVersions(table string) string {
	return `SELECT ctid, xmin FROM ` + table + ` WHERE ctid = ANY($1::tid[])`
}

var (
	selectAmphoraVersions = selectVersions("amphora")
	selectGraphVersions   = func() (q [numGraphTables]string) {
		for i, name := range graphTableNames {
			q[i] = selectVersions(name)
		}
		return q
	}()
)

// validate reports which candidate amphorae's cached topologies still
// match the database: the amphora row and every row of its load balancer's
// graph are still there, unchanged. Load balancers that fail are dropped.
func (c *topologyCache) validate(ctx context.Context, candidates []string) (map[string]bool, error) {
	if len(candidates) == 0 {
		return nil, nil
	}
	var ampTIDs []pgtype.TID
	var graphTIDs [numGraphTables][]pgtype.TID
	seenLB := map[string]bool{}
	for _, id := range candidates {
		a := c.amphorae[id]
		ampTIDs = append(ampTIDs, a.version.tid)
		if seenLB[a.lbID] {
			continue
		}
		seenLB[a.lbID] = true
		for t, rows := range c.lbs[a.lbID].versions.rows {
			for _, v := range rows {
				graphTIDs[t] = append(graphTIDs[t], v.tid)
			}
		}
	}
	batch := &pgx.Batch{}
	batch.Queue(selectAmphoraVersions, ampTIDs)
	for t := range graphTIDs {
		if len(graphTIDs[t]) > 0 {
			batch.Queue(selectGraphVersions[t], graphTIDs[t])
		}
	}
	results := c.store.pool.SendBatch(ctx, batch)
	defer results.Close()
	readVisible := func(table string, expected int) (map[pgtype.TID]uint32, error) {
		visible := make(map[pgtype.TID]uint32, expected)
		err := eachRow(results, func(rows pgx.Rows) error {
			if f := rows.FieldDescriptions(); f[0].Format != pgx.BinaryFormatCode || f[1].Format != pgx.BinaryFormatCode {
				var v rowVersion // a pool in simple-protocol mode gets text
				if err := rows.Scan(&v.tid, &v.xmin); err != nil {
					return err
				}
				visible[v.tid] = v.xmin
				return nil
			}
			tid, xmin, err := decodeVersion(rows.RawValues())
			if err != nil {
				return err
			}
			visible[tid] = xmin
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("check cached %s rows: %w", table, err)
		}
		return visible, nil
	}
	ampVisible, err := readVisible("amphora", len(ampTIDs))
	if err != nil {
		return nil, err
	}
	var graphVisible [numGraphTables]map[pgtype.TID]uint32
	for t := range graphTIDs {
		if len(graphTIDs[t]) == 0 {
			continue
		}
		if graphVisible[t], err = readVisible(graphTableNames[t], len(graphTIDs[t])); err != nil {
			return nil, err
		}
	}
	lbValid := map[string]bool{}
	for lbID := range seenLB {
		ok := true
		for t, rows := range c.lbs[lbID].versions.rows {
			for _, v := range rows {
				if x, found := graphVisible[t][v.tid]; !found || x != v.xmin {
					ok = false
				}
			}
		}
		lbValid[lbID] = ok
		if !ok {
			delete(c.lbs, lbID)
		}
	}
	valid := make(map[string]bool, len(candidates))
	for _, id := range candidates {
		a := c.amphorae[id]
		x, found := ampVisible[a.version.tid]
		valid[id] = found && x == a.version.xmin && lbValid[a.lbID]
	}
	return valid, nil
}

// decodeVersion reads a (ctid, xmin) row in PostgreSQL's binary format
// (tid: 4-byte block, 2-byte offset; xid: 4 bytes), which pgx uses for
// both: Scan through pgtype cost more than the check's query.
func decodeVersion(values [][]byte) (pgtype.TID, uint32, error) {
	if len(values) != 2 || len(values[0]) != 6 || len(values[1]) != 4 {
		return pgtype.TID{}, 0, fmt.Errorf("unexpected (ctid, xmin) encoding")
	}
	tid := pgtype.TID{BlockNumber: binary.BigEndian.Uint32(values[0]), OffsetNumber: binary.BigEndian.Uint16(values[0][4:]), Valid: true}
	return tid, binary.BigEndian.Uint32(values[1]), nil
}

// sweep drops expired entries, at most once per ttl, so that amphorae
// that stopped heartbeating do not hold memory.
func (c *topologyCache) sweep(now time.Time) {
	if now.Sub(c.lastSweep) < c.ttl {
		return
	}
	c.lastSweep = now
	for id, lb := range c.lbs {
		if now.Sub(lb.loaded) >= c.ttl {
			delete(c.lbs, id)
		}
	}
	for id, a := range c.amphorae {
		if c.lbs[a.lbID] == nil {
			delete(c.amphorae, id)
		}
	}
}

// copyLoadBalancer deep-copies the parts a batch changes in memory.
func copyLoadBalancer(lb *healthdb.LoadBalancer) *healthdb.LoadBalancer {
	out := *lb
	out.Listeners = append([]healthdb.Listener(nil), lb.Listeners...)
	out.Pools = make([]healthdb.Pool, len(lb.Pools))
	for i, p := range lb.Pools {
		p.Members = append([]healthdb.Member(nil), p.Members...)
		out.Pools[i] = p
	}
	return &out
}
