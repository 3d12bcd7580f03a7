//go:build !unix

package heartbeat

import (
	"testing"
	"time"
)

func processCPU() time.Duration { return 0 }

func cpuPerOp(*testing.B, time.Duration) {}
