//go:build faults

// Package faults breaks the health manager's surroundings on purpose: the
// database goes away or slows down, the manager is killed, several managers
// share one database, amphorae fall silent en masse, garbage floods the
// heartbeat port, statistics flushes lose their COMMIT or its answer, and
// amphora agents and their VPP restart in every order. Each scenario runs
// the built octavia-health-manager binary as separate processes, against a
// PostgreSQL server of its own (package pgtest), a fake Octavia API and
// Keystone (package failovertest) that counts every failover request, and
// simulated amphorae sending V3 heartbeats (package loadgen) or built
// amphora-agent processes on fake VPP processes, and asserts an outcome:
// failovers counted at the API, listener_statistics sums computed from what
// was sent or what VPP counted, metrics read from /metrics.
//
// Run it with `make faults` (go test -tags faults ./test/faults/). Each
// scenario prints one line starting with "FAULTS" carrying its figures;
// docs/reliability.md records them.
package faults

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// hmBinary is the octavia-health-manager built once for every scenario.
var hmBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "faults-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "faults:", err)
		os.Exit(1)
	}
	hmBinary = filepath.Join(dir, "octavia-health-manager")
	build := exec.Command("go", "build", "-o", hmBinary, "github.com/octavia-vpp/health/cmd/octavia-health-manager")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "faults: build octavia-health-manager:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
