package failover

import (
	"context"
	"fmt"
	"net/http"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/loadbalancer/v2/amphorae"
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
// 404 ErrNotFound; anything else but 202 is transient.
func (o *OctaviaAPI) Failover(ctx context.Context, amphoraID string) error {
	sc, err := o.Session.ServiceClient(ctx, "load-balancer", o.Region, o.Interface)
	if err != nil {
		return err
	}
	err = amphorae.Failover(ctx, sc, amphoraID).ExtractErr()
	switch {
	case err == nil:
		return nil
	case gophercloud.ResponseCodeIs(err, http.StatusConflict):
		return fmt.Errorf("octavia API failover of amphora %s: %w", amphoraID, ErrImmutable)
	case gophercloud.ResponseCodeIs(err, http.StatusNotFound):
		return fmt.Errorf("octavia API failover of amphora %s: %w", amphoraID, ErrNotFound)
	}
	return fmt.Errorf("octavia API failover of amphora %s: %w", amphoraID, err)
}
