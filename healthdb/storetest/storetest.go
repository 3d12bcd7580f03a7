// Package storetest is the conformance suite of the healthdb store
// interfaces. Every store (PostgreSQL, memstore, a later MySQL one) runs
// it through a Backend that seeds and reads its rows; the suite then
// checks that the store gives the results Octavia's schema and the
// PostgreSQL store define for the status procedure, the claims, the
// failover_threshold breaker and recovery.
package storetest

import (
	"time"

	"github.com/octavia-vpp/health/healthdb"
)

// Store is what the suite tests: both store interfaces.
type Store interface {
	healthdb.UpdaterStore
	healthdb.WatcherStore
}

// Backend is one empty store under test, with the means to seed and read
// its rows. Its methods fail the test they were made for on error. Empty
// id arguments (lbID, computeID, defaultPool) stand for NULL.
type Backend interface {
	Store() Store
	// Now is the store's clock, as naive UTC: the clock it stamps
	// last_update and updated_at with and judges staleness on.
	Now() time.Time

	AddLoadBalancer(id, provisioning, operating string, enabled bool)
	AddAmphora(id, lbID, status, computeID string)
	AddListener(id, lbID, protocol, operating string, enabled bool, defaultPool string)
	AddPool(id, lbID, operating string)
	AddMember(id, poolID, operating string, enabled bool)
	// AddHealth inserts an amphora_health row last updated age ago by
	// the store's clock.
	AddHealth(amphoraID string, age time.Duration, busy bool)

	// Health reads an amphora_health row; ok is false when there is none.
	Health(amphoraID string) (lastUpdate time.Time, busy, ok bool)
	// AmphoraStatus reads an amphora's status and updated_at.
	AmphoraStatus(id string) (status string, updatedAt *time.Time)
	// OperatingStatus reads the operating_status and updated_at of a row of
	// load_balancer, listener, pool or member.
	OperatingStatus(table, id string) (status string, updatedAt *time.Time)
}
