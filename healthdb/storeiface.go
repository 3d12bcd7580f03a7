package healthdb

import (
	"context"
	"log/slog"
	"time"
)

// The store interfaces are what the updater and the watcher need of a
// database, declared here where they are consumed. pgstore.Store (PostgreSQL)
// implements them; healthdb/memstore implements them in memory for tests
// that do not test SQL; healthdb/storetest is the conformance suite every
// implementation must pass (see docs/architecture.md).

// UpdaterStore reads topologies and writes the net effect of a heartbeat
// batch: what the Updater and its zombie-delete worker need.
type UpdaterStore interface {
	// LoadTopologies reads the topologies of the given amphorae. Amphorae
	// without a row are absent from the result; amphorae of one load
	// balancer share one *LoadBalancer. Listeners, pools and members are
	// sorted by id (byte order).
	LoadTopologies(ctx context.Context, amphoraIDs []string) (map[string]*Topology, error)
	// Apply writes a batch atomically: it upserts amphora_health
	// (last_update = the store's clock, busy left as it is, false on a new
	// row) and sets operating_status and updated_at only on rows whose
	// status really changes.
	Apply(ctx context.Context, w *Writes) error
}

// WatcherStore is what the Watcher needs: the get_stale_amphora steps,
// the release of claims, and the reads around a failover.
type WatcherStore interface {
	// CandidatesExist reports whether any amphora in ALLOCATED or
	// FAILOVER_STOPPED has a health row.
	CandidatesExist(ctx context.Context) (bool, error)
	// ClaimStale un-stops recovered amphorae, counts the stale ones,
	// applies the failover_threshold breaker and claims up to Limit
	// candidates, atomically; staleness is judged on the store's clock.
	// Two concurrent callers never claim the same amphora.
	ClaimStale(ctx context.Context, req ClaimRequest) (ClaimResult, error)
	// Unclaim sets busy = false again on the given amphorae.
	Unclaim(ctx context.Context, amphoraIDs []string) error
	// LoadBalancerOfClaim returns the load balancer of a claimed amphora
	// (see pgstore.Store.LoadBalancerOfClaim).
	LoadBalancerOfClaim(ctx context.Context, amphoraID string) (lbID, provisioningStatus string, ok bool, err error)
	// TxStatus tells what became of a claim transaction whose COMMIT
	// outcome was unknown (a *ClaimCommitUnknownError). A store that never
	// returns that error may answer TxAborted.
	TxStatus(ctx context.Context, txID int64) (string, error)
}

// TopologyCacher is a store that can keep topologies between batches
// ([health_manager] topology_cache_seconds). The PostgreSQL store checks
// each cached load balancer's versions, kept by triggers, before each use;
// a store that does not implement it is read afresh every batch.
type TopologyCacher interface {
	// maxBytes bounds what the cache holds ([health_manager]
	// topology_cache_max_mb; <= 0: no bound).
	NewTopologyCache(ttl time.Duration, maxBytes int64, log *slog.Logger) TopologyCache
}

// TopologyCache returns the topologies LoadTopologies would, at time now.
type TopologyCache interface {
	Load(ctx context.Context, amphoraIDs []string, now time.Time) (map[string]*Topology, error)
	// Stats says whether the cache is on and how it served the amphorae
	// of every load so far.
	Stats() TopologyCacheStats
}

// TopologyCacheStats counts amphorae by how a TopologyCache served them:
// from the cache, read because they were not cached (or the cache is
// off), or read because their cached topology was out of date.
type TopologyCacheStats struct {
	Enabled                   bool
	Hits, Misses, Invalidated uint64
	// Bytes is what the cached entries hold, by the count that
	// topology_cache_max_mb bounds.
	Bytes uint64
}
