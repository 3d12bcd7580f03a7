package failover

import (
	"context"
	"fmt"
	"net/http"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/loadbalancer/v2/amphorae"
	"github.com/gophercloud/gophercloud/v2/openstack/loadbalancer/v2/loadbalancers"
)

// OctaviaAPI fails over through the Octavia API's
// PUT /v2/octavia/amphorae/{id}/failover, the call behind "openstack
// loadbalancer amphora failover". The API itself test-and-sets the load
// balancer to PENDING_UPDATE and casts the failover to the worker, so the
// caller must not touch the load balancer first.
type OctaviaAPI struct {
	Session *Session
	// Region and Interface select the load-balancer endpoint
	// ([service_auth] region_name and interface).
	Region, Interface string
}

// Failover asks the API to fail the amphora over. 409 is ErrImmutable and
// 404 ErrNotFound; anything else but 202 is transient. The API answers 409
// unless the load balancer is ACTIVE.
func (o *OctaviaAPI) Failover(ctx context.Context, amphoraID string) error {
	sc, err := o.Session.ServiceClient(ctx, "load-balancer", o.Region, o.Interface)
	if err != nil {
		return err
	}
	return classify(amphorae.Failover(ctx, sc, amphoraID).ExtractErr(), "amphora", amphoraID)
}

// FailoverLoadBalancer asks the API to fail the load balancer over
// (PUT /v2/lbaas/loadbalancers/{id}/failover, "openstack loadbalancer
// failover"). The API accepts ACTIVE and ERROR load balancers and answers
// 409 otherwise; the answers map as Failover's do.
func (o *OctaviaAPI) FailoverLoadBalancer(ctx context.Context, loadBalancerID string) error {
	sc, err := o.Session.ServiceClient(ctx, "load-balancer", o.Region, o.Interface)
	if err != nil {
		return err
	}
	return classify(loadbalancers.Failover(ctx, sc, loadBalancerID).ExtractErr(), "load balancer", loadBalancerID)
}

func classify(err error, kind, id string) error {
	switch {
	case err == nil:
		return nil
	case gophercloud.ResponseCodeIs(err, http.StatusConflict):
		return fmt.Errorf("octavia API failover of %s %s: %w", kind, id, ErrImmutable)
	case gophercloud.ResponseCodeIs(err, http.StatusNotFound):
		return fmt.Errorf("octavia API failover of %s %s: %w", kind, id, ErrNotFound)
	}
	return fmt.Errorf("octavia API failover of %s %s: %w", kind, id, err)
}
