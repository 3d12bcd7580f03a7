package manager

import (
	"context"
	"log/slog"
	"math"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// gcTuneEvery is how often the live heap is read to pace the collector.
const gcTuneEvery = time.Second

// gcPacing is the collector's setting for a heap target: GOGC such that the
// heap grows to target before the next collection, never below Go's
// default of 100 (twice the live heap); and, as a backstop should the live
// heap jump between two readings, a soft memory limit of a fifth more
// than the larger of the target and twice the live heap, plus room for
// what is not heap. The limit never falls below what GOGC=100 would let
// the heap reach, so it cannot make the collector run back to back.
//
// At a steady rate the manager allocates about 20 KB per heartbeat and
// keeps 15 to 50 MB live (5,000 to 100,000 amphorae): with Go's default it
// collected three times a second at 3,000 heartbeats/s and the scavenger
// returned and faulted back pages all along; see docs/performance.md.
func gcPacing(target, live uint64) (percent int, limit int64) {
	live = max(live, 1<<20)
	percent = 100
	if target > 2*live {
		percent = int(min((target-live)*100/live, 10_000))
	}
	limit = int64(float64(max(target, 2*live))*1.2) + 16<<20
	return percent, limit
}

// gcTuner paces the collector for [health_manager] gc_heap_target_mb.
type gcTuner struct {
	target  uint64
	percent int
	sample  []metrics.Sample
}

// newGCTuner returns nil, leaving Go's defaults, when the option is 0 or
// the environment sets GOGC or GOMEMLIMIT (the operator's own choice).
func newGCTuner(targetMB int, log *slog.Logger) *gcTuner {
	if targetMB <= 0 {
		return nil
	}
	for _, env := range []string{"GOGC", "GOMEMLIMIT"} {
		if _, ok := os.LookupEnv(env); ok {
			log.Info("gc_heap_target_mb ignored: the environment sets the collector", "variable", env)
			return nil
		}
	}
	t := &gcTuner{target: uint64(targetMB) << 20, sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
	t.adjust()
	return t
}

// adjust reads the live heap and sets the collector's pace for it.
func (t *gcTuner) adjust() {
	metrics.Read(t.sample)
	var live uint64
	if t.sample[0].Value.Kind() == metrics.KindUint64 {
		live = t.sample[0].Value.Uint64()
	}
	percent, limit := gcPacing(t.target, live)
	debug.SetMemoryLimit(limit)
	// Only a real change: each call recomputes the collector's goal.
	if t.percent == 0 || math.Abs(float64(percent-t.percent)) > float64(t.percent)/10 {
		debug.SetGCPercent(percent)
		t.percent = percent
	}
}

// run adjusts the pace every gcTuneEvery until ctx ends.
func (t *gcTuner) run(ctx context.Context) {
	if t == nil {
		return
	}
	tick := time.NewTicker(gcTuneEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			t.adjust()
		}
	}
}
