package healthdb

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// loadBalancerOfClaim reads the load balancer of an amphora this watcher
// still holds: claimed (busy), still a failover candidate, on a load
// balancer. No row means the claim is no longer what it was.
const loadBalancerOfClaim = `
SELECT lb.id, lb.provisioning_status
FROM amphora_health h
JOIN amphora a ON a.id = h.amphora_id
JOIN load_balancer lb ON lb.id = a.load_balancer_id
WHERE h.amphora_id = $1 AND h.busy AND a.status IN ('ALLOCATED', 'FAILOVER_STOPPED')`

// provisioningStatusError is the load balancer provisioning_status that
// the amphora failover API refuses and the load balancer failover API
// accepts.
const provisioningStatusError = "ERROR"

// LoadBalancerOfClaim returns the id and provisioning_status of the load
// balancer of a claimed amphora; ok is false when the amphora is no longer
// claimed, no longer a candidate, or on no load balancer.
func (s *Store) LoadBalancerOfClaim(ctx context.Context, amphoraID string) (lbID, provisioningStatus string, ok bool, err error) {
	err = s.pool.QueryRow(ctx, loadBalancerOfClaim, amphoraID).Scan(&lbID, &provisioningStatus)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", "", false, nil
	}
	if err != nil {
		return "", "", false, fmt.Errorf("read the load balancer of amphora %s: %w", amphoraID, err)
	}
	return lbID, provisioningStatus, true, nil
}

// failoverLoadBalancerInError handles an amphora failover the API refused
// (409). The amphora failover API accepts only ACTIVE load balancers;
// Octavia's own health manager also fails over the amphorae of a load
// balancer in ERROR, and the load balancer failover API accepts ERROR. So
// when the load balancer is in ERROR, its failover is requested instead:
// one call, for this one claim. Any other state (PENDING_*), or a state
// that cannot be read, keeps the refusal: the claim is released and a
// later check retries.
//
// The state is read from the database, not the API: it is the row the
// API's own test-and-set reads (no cache in between), it costs no further
// call to a service that has just refused us, and it needs no policy
// beyond the failover's. The read only chooses which request to send: the
// load balancer failover API re-checks the state under a row lock and
// answers 409 unless it is ACTIVE or ERROR, so a state that changes in
// between fails safe.
// viaLB says whether the load balancer failover was requested; err is its
// answer, or the refusal.
func (w *Watcher) failoverLoadBalancerInError(ctx context.Context, c Claimed, refused error) (viaLB bool, err error) {
	dbCtx, cancel := context.WithTimeout(ctx, w.cfg.DBTimeout)
	lbID, status, ok, err := w.cfg.Store.LoadBalancerOfClaim(dbCtx, c.AmphoraID)
	cancel()
	if err != nil {
		w.log.Warn("amphora failover refused and its load balancer's state could not be read; retried by a later health check",
			"amphora_id", c.AmphoraID, "err", err)
		return false, refused
	}
	if !ok || status != provisioningStatusError {
		return false, refused
	}
	w.log.Warn("amphora failover refused: its load balancer is in ERROR; failing the load balancer over",
		"amphora_id", c.AmphoraID, "load_balancer_id", lbID)
	return true, w.cfg.Driver.FailoverLoadBalancer(ctx, lbID)
}
