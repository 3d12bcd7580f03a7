package healthdb

import "time"

// ClaimRequest is one get_stale_amphora step.
type ClaimRequest struct {
	// HeartbeatTimeout: amphorae whose last_update is older than this, by
	// the database's clock, are stale.
	HeartbeatTimeout time.Duration
	// Threshold is failover_threshold, applied only when ThresholdSet.
	Threshold    int
	ThresholdSet bool
	// Limit is the most amphorae claimed; 0 claims none (the other steps
	// still run).
	Limit int
	// Exclude lists amphorae not to claim.
	Exclude []string
}

// ClaimResult says what a claim step did.
type ClaimResult struct {
	// Recovered counts amphorae moved from FAILOVER_STOPPED back to
	// ALLOCATED because their heartbeats are fresh again.
	Recovered int
	// Stale is the number of stale, not busy amphora_health rows, whatever
	// their amphora's status (Octavia's count).
	Stale int
	// BreakerOpen is set when Stale reached the threshold; then every
	// stale amphora was marked FAILOVER_STOPPED, Stopped of them newly,
	// and none was claimed.
	BreakerOpen bool
	Stopped     int
	// Claimed are the amphorae now marked busy by this call.
	Claimed []Claimed
}

// Claimed is one amphora claimed for failover.
type Claimed struct {
	AmphoraID string
	// LoadBalancerID is empty for an amphora on no load balancer.
	LoadBalancerID string
	LastUpdate     time.Time
}
