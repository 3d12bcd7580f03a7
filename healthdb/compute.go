package healthdb

import (
	"context"
	"fmt"
	"log/slog"
)

// NewComputeDeleter returns the deleter that [controller_worker]
// compute_driver names.
//
//   - compute_noop_driver: succeeds without doing anything, as Octavia's.
//   - compute_nova_driver (Octavia's default): the Nova client arrives with
//     stale-amphora failover; until then this logs the instance it would
//     delete, at WARNING, and reports success, so that a zombie is treated
//     as deleted (its heartbeats never refresh amphora_health).
func NewComputeDeleter(driver string, log *slog.Logger) (ComputeDeleter, error) {
	switch driver {
	case "compute_noop_driver":
		return noopDeleter{}, nil
	case "compute_nova_driver", "":
		return logDeleter{log: log}, nil
	}
	return nil, fmt.Errorf("[controller_worker] compute_driver %q is not supported (use compute_nova_driver or compute_noop_driver)", driver)
}

type noopDeleter struct{}

func (noopDeleter) DeleteCompute(context.Context, string) error { return nil }

type logDeleter struct{ log *slog.Logger }

func (d logDeleter) DeleteCompute(_ context.Context, computeID string) error {
	d.log.Warn("zombie amphora: its compute instance should be deleted; the Nova driver is not built yet, so delete it by hand",
		"compute_id", computeID)
	return nil
}
