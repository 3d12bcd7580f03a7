package manager

import "testing"

// The heap may grow to the target while that is more than twice the live
// heap; past that, Go's default (100) holds, and the memory limit never
// falls below what GOGC=100 lets the heap reach.
func TestGCPacing(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		name          string
		target, live  uint64
		percent       int
		limitAtLeast  uint64
		limitAtMostMB int64
	}{
		{"small live heap, goal at the target", 128 * mib, 16 * mib, 700, 128 * mib, 170},
		{"nothing live yet counts as 1 MiB", 128 * mib, 0, 10_000, 128 * mib, 170},
		{"target just above twice the live heap", 128 * mib, 60 * mib, 113, 128 * mib, 170},
		{"live heap past half the target: Go's default", 128 * mib, 100 * mib, 100, 200 * mib, 260},
		{"live heap past the target", 128 * mib, 400 * mib, 100, 800 * mib, 980},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			percent, limit := gcPacing(tt.target, tt.live)
			if percent != tt.percent {
				t.Errorf("percent = %d, want %d", percent, tt.percent)
			}
			if uint64(limit) < tt.limitAtLeast || limit > tt.limitAtMostMB*mib {
				t.Errorf("limit = %d MiB, want from %d to %d MiB", limit/mib, tt.limitAtLeast/mib, tt.limitAtMostMB)
			}
		})
	}
}
