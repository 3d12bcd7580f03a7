package healthdb

import "time"

// The rows shadow mode reads to compare its decisions with what Octavia's
// own health manager wrote (healthdb/shadow, docs/shadow.md). The stores
// read them without writing or locking anything.

// AmphoraHealthRow is one amphora_health row with its amphora's status.
type AmphoraHealthRow struct {
	AmphoraID string
	// Status is the amphora row's status; empty when there is no amphora
	// row.
	Status     string
	LastUpdate time.Time
	Busy       bool
	// LBProvisioningStatus is the provisioning_status of the amphora's
	// load balancer; empty without one.
	LBProvisioningStatus string
}

// ListenerStatsRow is one listener_statistics row: the sums Octavia's
// stats_db driver keeps per (listener, amphora).
type ListenerStatsRow struct {
	ListenerID, AmphoraID                                     string
	BytesIn, BytesOut, ActiveConns, TotalConns, RequestErrors int64
}
