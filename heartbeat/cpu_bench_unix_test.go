//go:build unix

package heartbeat

import (
	"syscall"
	"testing"
	"time"
)

// processCPU is the CPU time this process has used. On a machine shared
// with other work wall-clock ns/op swing with the load; CPU time per
// operation mostly does not.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuPerOp reports the process CPU per operation since start as cpu-ns/op.
func cpuPerOp(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(processCPU()-start)/float64(b.N), "cpu-ns/op")
}
