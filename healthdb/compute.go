package healthdb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/octavia-vpp/health/healthdb/failover"
)

// ComputeConfig configures the deleter that [controller_worker]
// compute_driver names.
type ComputeConfig struct {
	// Driver is compute_nova_driver (Octavia's default, also when empty)
	// or compute_noop_driver.
	Driver string
	// Session, Region and Interface reach Nova for compute_nova_driver:
	// [service_auth], and [nova] region_name and endpoint_type.
	Session           *failover.Session
	Region, Interface string
	// Timeout bounds one Nova call (default 10 s). The call runs on the
	// zombie-delete worker, never on the heartbeat path.
	Timeout time.Duration
	Logger  *slog.Logger
}

// NewComputeDeleter returns the deleter of a driver that needs nothing
// else: compute_noop_driver. compute_nova_driver needs a Keystone session;
// use NewComputeDeleterFor.
func NewComputeDeleter(driver string, log *slog.Logger) (ComputeDeleter, error) {
	return NewComputeDeleterFor(ComputeConfig{Driver: driver, Logger: log})
}

// NewComputeDeleterFor returns the deleter cfg.Driver names.
//
//   - compute_noop_driver: succeeds without doing anything, as Octavia's.
//   - compute_nova_driver: deletes the server through Nova's API. A server
//     Nova does not know counts as deleted, as in Octavia's driver.
//
// How often one compute id is deleted is the updater's business (its
// zombie-delete worker remembers each outcome for a while).
func NewComputeDeleterFor(cfg ComputeConfig) (ComputeDeleter, error) {
	switch cfg.Driver {
	case "compute_noop_driver":
		return noopDeleter{}, nil
	case "compute_nova_driver", "":
	default:
		return nil, fmt.Errorf("[controller_worker] compute_driver %q is not supported (use compute_nova_driver or compute_noop_driver)", cfg.Driver)
	}
	if cfg.Session == nil {
		return nil, errors.New("[controller_worker] compute_driver compute_nova_driver needs [service_auth] credentials")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &novaDeleter{cfg: cfg}, nil
}

type noopDeleter struct{}

func (noopDeleter) DeleteCompute(context.Context, string) error { return nil }

type novaDeleter struct {
	cfg ComputeConfig
}

func (d *novaDeleter) DeleteCompute(ctx context.Context, computeID string) error {
	err := d.delete(ctx, computeID)
	if err == nil {
		d.cfg.Logger.Warn("zombie amphora: its compute instance was deleted", "compute_id", computeID)
	}
	return err
}

func (d *novaDeleter) delete(ctx context.Context, computeID string) error {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	sc, err := d.cfg.Session.ServiceClient(ctx, "compute", d.cfg.Region, d.cfg.Interface)
	if err != nil {
		return fmt.Errorf("delete compute %s: %w", computeID, err)
	}
	err = servers.Delete(ctx, sc, computeID).ExtractErr()
	if gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		d.cfg.Logger.Warn("zombie amphora's compute instance is already gone", "compute_id", computeID)
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete compute %s through nova: %w", computeID, err)
	}
	return nil
}
