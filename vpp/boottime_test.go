package vpp

import (
	"math"
	"testing"
	"time"
)

// TestBootTimeOfRejectsNonsense holds what FuzzScrapeCounters found: a NaN
// or oversized /sys/boottime became a boot time in 1677.
func TestBootTimeOfRejectsNonsense(t *testing.T) {
	for _, sec := range []float64{0, -1, math.NaN(), math.Inf(1), math.Inf(-1), 1e300, math.MaxInt64 / 1e9} {
		if got := bootTimeOf(sec); !got.IsZero() {
			t.Errorf("bootTimeOf(%g) = %v; want none", sec, got)
		}
	}
	if got := bootTimeOf(1.7e9); !got.Equal(time.Unix(1.7e9, 0)) {
		t.Errorf("bootTimeOf(1.7e9) = %v", got)
	}
}
