package healthdb

import (
	"context"
)

// provisioningStatusError is the load balancer provisioning_status that
// the amphora failover API refuses and the load balancer failover API
// accepts.
const provisioningStatusError = "ERROR"

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
