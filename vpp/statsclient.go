package vpp

import (
	"context"
	"fmt"
	"time"

	"go.fd.io/govpp/adapter"
	"go.fd.io/govpp/adapter/statsclient"
)

// StatsSocketDialer returns a StatsDialer for VPP's stats socket ("" means
// /run/vpp/stats.sock). Each call connects a new client, waiting for the
// socket file up to the context deadline (at most 3 s).
func StatsSocketDialer(path string) StatsDialer {
	if path == "" {
		path = adapter.DefaultStatsSocket
	}
	return func(ctx context.Context) (StatsSource, error) {
		wait := 3 * time.Second
		if d, ok := ctx.Deadline(); ok && time.Until(d) < wait {
			wait = max(time.Until(d), 10*time.Millisecond)
		}
		sc := statsclient.NewStatsClient(path, statsclient.SetSocketRetryTimeout(wait))
		if err := sc.Connect(); err != nil {
			return nil, fmt.Errorf("connect stats socket %s: %w", path, err)
		}
		return sc, nil
	}
}
