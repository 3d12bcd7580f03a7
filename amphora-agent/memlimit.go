package agent

import (
	"context"
	"log/slog"
	"os"
	"runtime/debug"
	rtmetrics "runtime/metrics"
	"time"
)

// DefaultMemoryLimitMiB is memory_limit_mib's default: with 1,000 members
// the live heap is about 4 MiB, and a 10 MiB soft limit keeps the
// process's resident set at about 20 MiB, of which about 12 are the
// binary's own pages (docs/performance.md, "Amphora agent").
const DefaultMemoryLimitMiB = 10

// memoryLimitCheck is how often the limit is raised to follow the live heap.
const memoryLimitCheck = 30 * time.Second

// RunMemoryLimit keeps Go's soft memory limit at mib MiB, or at twice the
// live heap when that is more, until ctx ends. The floor matters: a limit
// below the live heap would make the collector run all the time (up to
// half a CPU) on a large description, when all it should do is collect
// sooner than GOGC would on a small one. mib 0, or GOMEMLIMIT in the
// environment, leaves the runtime's setting alone.
func RunMemoryLimit(ctx context.Context, mib int, log *slog.Logger) {
	if mib <= 0 || os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	floor := int64(mib) << 20
	sample := []rtmetrics.Sample{{Name: "/gc/heap/live:bytes"}}
	set := func() {
		rtmetrics.Read(sample)
		limit := floor
		if sample[0].Value.Kind() == rtmetrics.KindUint64 {
			limit = max(limit, 2*int64(sample[0].Value.Uint64()))
		}
		if prev := debug.SetMemoryLimit(limit); prev != limit && log != nil {
			log.Debug("go memory limit", "bytes", limit)
		}
	}
	set()
	t := time.NewTicker(memoryLimitCheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			set()
		}
	}
}
