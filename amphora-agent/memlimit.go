package agent

import (
	"context"
	"log/slog"
	"os"
	"runtime/debug"
	rtmetrics "runtime/metrics"
	"time"
)

// DefaultMemoryLimitMiB is memory_limit_mib's default: none. With 1,000
// TCP members a limit of 14 takes the resident set from 24-25 MiB to
// 22-23 for four times as many collections; with HTTP members, whose
// probes make much more garbage, it costs 14% of a CPU in collections
// (docs/performance.md, "Amphora agent"). An operator who would rather
// pay that than the memory sets it.
const DefaultMemoryLimitMiB = 0

// DefaultGCPercent is gc_percent's default. The agent's live heap is
// small (about 2.5 MB at 1,000 members) and it makes little garbage once
// its reconcile ticks and heartbeats reuse their memory, so collecting
// at 1.5 times the live heap rather than twice it costs a few
// milliseconds of CPU a second and keeps about a megabyte and a half
// less resident at 1,000 members (docs/performance.md, "Amphora agent").
const DefaultGCPercent = 50

// MinGCPercent is the least gc_percent accepted: below it the collector
// would run nearly all the time.
const MinGCPercent = 10

// ApplyGCPercent sets the collector's GOGC to pct unless GOGC is in the
// environment, which wins, and reports whether it did.
func ApplyGCPercent(pct int) bool {
	if os.Getenv("GOGC") != "" || pct < MinGCPercent {
		return false
	}
	debug.SetGCPercent(pct)
	return true
}

// memoryLimitCheck is how often the floor is recomputed.
const memoryLimitCheck = 10 * time.Second

// RunMemoryLimit keeps Go's soft memory limit at mib MiB until ctx ends,
// raised when needed to the runtime's memory outside the heap plus one and
// a half times the live heap. The floor matters: a limit near what the
// process needs anyway would make the collector run all the time (up to
// half a CPU) on a large description, when all it should do is collect
// sooner than GOGC would on a small one. mib 0, or GOMEMLIMIT in the
// environment, leaves the runtime's setting alone.
func RunMemoryLimit(ctx context.Context, mib int, log *slog.Logger) {
	if mib <= 0 || os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	set := func() {
		limit := max(int64(mib)<<20, memoryFloor())
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

// memoryFloor is the least limit that leaves the heap half its live size
// to grow into: what the runtime holds outside the heap (stacks, metadata,
// buffers) plus 1.5 times the live heap.
func memoryFloor() int64 {
	s := []rtmetrics.Sample{
		{Name: "/memory/classes/total:bytes"},
		{Name: "/memory/classes/heap/released:bytes"},
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/unused:bytes"},
		{Name: "/memory/classes/heap/free:bytes"},
		{Name: "/gc/heap/live:bytes"},
	}
	rtmetrics.Read(s)
	var v [6]int64
	for i := range s {
		if s[i].Value.Kind() == rtmetrics.KindUint64 {
			v[i] = int64(s[i].Value.Uint64())
		}
	}
	outside := v[0] - v[1] - v[2] - v[3] - v[4]
	return outside + v[5]*3/2
}
