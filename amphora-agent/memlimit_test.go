package agent

import (
	"context"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestRunMemoryLimit(t *testing.T) {
	t.Setenv("GOMEMLIMIT", "")
	prev := debug.SetMemoryLimit(-1)
	defer debug.SetMemoryLimit(prev)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { RunMemoryLimit(ctx, 4096, nil); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for debug.SetMemoryLimit(-1) != 4096<<20 {
		if time.Now().After(deadline) {
			t.Fatalf("limit %d, want %d", debug.SetMemoryLimit(-1), 4096<<20)
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done

	// A floor below what the process holds is raised.
	debug.SetMemoryLimit(prev)
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	cancelled, stop := context.WithCancel(ctx)
	stop()
	keep := make([]byte, 4<<20) // live across the collection below
	runtime.GC()
	RunMemoryLimit(cancelled, 1, nil)
	runtime.KeepAlive(keep)
	if got := debug.SetMemoryLimit(-1); got <= 6<<20 {
		t.Errorf("limit %d with a 1 MiB floor: not raised above the live heap", got)
	}

	// 0 and GOMEMLIMIT leave the runtime alone.
	debug.SetMemoryLimit(prev)
	RunMemoryLimit(cancelled, 0, nil)
	t.Setenv("GOMEMLIMIT", "1GiB")
	RunMemoryLimit(cancelled, 8, nil)
	if got := debug.SetMemoryLimit(-1); got != prev {
		t.Errorf("limit %d, want the runtime's %d", got, prev)
	}
}

func TestApplyGCPercent(t *testing.T) {
	prev := debug.SetGCPercent(100)
	defer debug.SetGCPercent(prev)
	t.Setenv("GOGC", "")
	if !ApplyGCPercent(40) || debug.SetGCPercent(100) != 40 {
		t.Error("gc_percent 40 not applied")
	}
	if ApplyGCPercent(MinGCPercent-1) || debug.SetGCPercent(100) != 100 {
		t.Error("a gc_percent below the minimum applied")
	}
	t.Setenv("GOGC", "200")
	if ApplyGCPercent(40) || debug.SetGCPercent(100) != 100 {
		t.Error("gc_percent applied over GOGC in the environment")
	}
}
