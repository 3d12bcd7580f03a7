package healthdb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
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
	// RepeatInterval is how long the outcome of deleting one compute id is
	// re-used before it is deleted again (default one minute): a zombie
	// keeps sending heartbeats until Nova has removed it.
	RepeatInterval time.Duration
	// Timeout bounds one Nova call (default 10 s); the call holds up the
	// heartbeat batch that found the zombie.
	Timeout time.Duration
	// Now is the clock; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
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
//     Nova does not know counts as deleted, as in Octavia's driver. The
//     same compute id is deleted at most once per RepeatInterval; repeats
//     within it get the first attempt's outcome.
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
	if cfg.RepeatInterval <= 0 {
		cfg.RepeatInterval = time.Minute
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &novaDeleter{cfg: cfg, recent: map[string]deleteAttempt{}}, nil
}

type noopDeleter struct{}

func (noopDeleter) DeleteCompute(context.Context, string) error { return nil }

type novaDeleter struct {
	cfg       ComputeConfig
	mu        sync.Mutex
	recent    map[string]deleteAttempt // compute id -> last attempt
	lastPrune time.Time
}

type deleteAttempt struct {
	at  time.Time
	err error
}

func (d *novaDeleter) DeleteCompute(ctx context.Context, computeID string) error {
	now := d.cfg.Now()
	d.mu.Lock()
	if now.Sub(d.lastPrune) > d.cfg.RepeatInterval {
		for id, a := range d.recent {
			if now.Sub(a.at) >= d.cfg.RepeatInterval {
				delete(d.recent, id)
			}
		}
		d.lastPrune = now
	}
	if a, ok := d.recent[computeID]; ok && now.Sub(a.at) < d.cfg.RepeatInterval {
		d.mu.Unlock()
		if a.err != nil {
			return fmt.Errorf("delete compute %s: not retried before %s: %w", computeID, a.at.Add(d.cfg.RepeatInterval).UTC().Format(time.RFC3339), a.err)
		}
		return nil
	}
	d.mu.Unlock()

	err := d.delete(ctx, computeID)
	d.mu.Lock()
	d.recent[computeID] = deleteAttempt{at: now, err: err}
	d.mu.Unlock()
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
