package vpp

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

func TestStatsSocketDialerMissingSocket(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := StatsSocketDialer(filepath.Join(t.TempDir(), "stats.sock"))(ctx)
	if err == nil {
		t.Fatal("dialing a missing stats socket succeeded")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("took %v despite a 200ms deadline", d)
	}
}
