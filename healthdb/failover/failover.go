// Package failover holds the ways a stale amphora is failed over (the
// dispatch drivers selected by [health_manager] failover_driver) and the
// Keystone session they and the Nova compute deleter share.
//
// A driver only reports what happened; the watcher in package healthdb
// decides what to do about it (keep the claim, release it, back off).
package failover

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
)

// Driver fails over one amphora.
//
// A nil error means the failover was accepted: the amphora stays claimed
// (amphora_health.busy) and Octavia's worker replaces it. The sentinel
// errors below mean the request was refused for a reason the caller acts
// on; any other error is transient (network, 5xx, authentication).
type Driver interface {
	Failover(ctx context.Context, amphoraID string) error
	// FailoverLoadBalancer fails over a whole load balancer. The watcher
	// calls it only for a stale amphora whose amphora failover was refused
	// because its load balancer is in ERROR, which the amphora failover
	// API does not accept and the load balancer failover API does. The
	// results mean what Failover's do.
	FailoverLoadBalancer(ctx context.Context, loadBalancerID string) error
}

// Sentinel errors a Driver returns, wrapped.
var (
	// ErrImmutable: the API refused to move the load balancer to
	// PENDING_UPDATE (HTTP 409): it is in a PENDING_* state, or, for an
	// amphora failover, in ERROR.
	ErrImmutable = errors.New("load balancer is immutable")
	// ErrNotFound: the API does not know the amphora or load balancer
	// (HTTP 404).
	ErrNotFound = errors.New("not found")
	// ErrDryRun: the noop driver logged the failover and did nothing.
	ErrDryRun = errors.New("dry run: failover not performed")
)

// Driver names, as [health_manager] failover_driver takes them.
const (
	DriverOctaviaAPI = "octavia_api"
	DriverNoop       = "noop"
)

// Noop logs and counts failovers without performing them.
type Noop struct {
	Log *slog.Logger
}

func (n Noop) logger() *slog.Logger {
	if n.Log == nil {
		return slog.Default()
	}
	return n.Log
}

// Failover logs the amphora and returns ErrDryRun.
func (n Noop) Failover(_ context.Context, amphoraID string) error {
	n.logger().Warn("failover_driver is noop: amphora would be failed over", "amphora_id", amphoraID)
	return ErrDryRun
}

// FailoverLoadBalancer logs the load balancer and returns ErrDryRun.
func (n Noop) FailoverLoadBalancer(_ context.Context, loadBalancerID string) error {
	n.logger().Warn("failover_driver is noop: load balancer would be failed over", "load_balancer_id", loadBalancerID)
	return ErrDryRun
}

// CheckDriverName reports an unknown failover_driver value.
func CheckDriverName(name string) error {
	switch name {
	case DriverOctaviaAPI, DriverNoop:
		return nil
	}
	return fmt.Errorf("[health_manager] failover_driver %q is not supported (use %s or %s)", name, DriverOctaviaAPI, DriverNoop)
}
