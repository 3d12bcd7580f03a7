package agent

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/octavia-vpp/health/vpp"
)

// TestCounterFileSyncedOnlyWhereARollbackCouldRecount: the counter file is
// synced before a heartbeat leaves only while a crash of the kernel could
// bring back a version whose records do not name the VPP instance they
// were read from (restartDetectable), once more after such a version, and
// at a process's first write. Every write is on file either way.
func TestCounterFileSyncedOnlyWhereARollbackCouldRecount(t *testing.T) {
	boot := time.Unix(1_700_000_000, 0).UTC()
	known := func(k vpp.VIPKey, first uint64) vpp.VIPCounters {
		return vpp.VIPCounters{Key: k, FirstPackets: first, Base: vpp.CounterBase{
			LB:    vpp.SourceBase{Seen: true, BootTime: boot, Index: 1, Raw: [4]uint64{0, first}, Total: [4]uint64{0, first}},
			Route: vpp.SourceBase{Seen: true, BootTime: boot, Index: 2}}}
	}
	unknown := func(k vpp.VIPKey, first uint64) vpp.VIPCounters {
		c := known(k, first)
		c.Base.Route.BootTime = time.Time{}
		return c
	}
	cfg := DefaultConfig()
	cfg.BasePath = t.TempDir()
	a := &Agent{cfg: &cfg, counters: NewCounterFile()}
	listeners := []ListenerVIPs{{ID: "L1", VIPs: []vpp.VIPKey{key4}}, {ID: "L2", VIPs: []vpp.VIPKey{key2}}}
	for i, step := range []struct {
		name   string
		vips   []vpp.VIPCounters
		synced bool
	}{
		{"first write of the process", []vpp.VIPCounters{known(key4, 1)}, true},
		{"boot times known", []vpp.VIPCounters{known(key4, 2)}, false},
		{"still known", []vpp.VIPCounters{known(key4, 3)}, false},
		{"a VIP read without VPP's boot time", []vpp.VIPCounters{known(key4, 4), unknown(key2, 1)}, true},
		{"still without", []vpp.VIPCounters{known(key4, 5), unknown(key2, 2)}, true},
		{"boot time known again: once more, over the version without", []vpp.VIPCounters{known(key4, 6), known(key2, 3)}, true},
		{"known since", []vpp.VIPCounters{known(key4, 7), known(key2, 4)}, false},
	} {
		snap := &vpp.Counters{Taken: time.Unix(int64(i), 0), VIPs: step.vips}
		if len(step.vips) == 2 && step.vips[1].Key.Compare(step.vips[0].Key) < 0 {
			snap.VIPs = []vpp.VIPCounters{step.vips[1], step.vips[0]}
		}
		a.counters.Advance(snap, listeners, true)
		before := a.counterSyncs
		if err := a.saveCounters(); err != nil {
			t.Fatal(err)
		}
		if synced := a.counterSyncs > before; synced != step.synced {
			t.Errorf("%s: synced %v, want %v", step.name, synced, step.synced)
		}
		onFile, err := LoadCounterFile(filepath.Join(cfg.BasePath, CounterFileName))
		if err != nil || !reflect.DeepEqual(onFile, a.counters) {
			t.Fatalf("%s: file %+v %v, want %+v", step.name, onFile, err, a.counters)
		}
	}

	// Unchanged (no traffic since), the file is not written again.
	path := filepath.Join(cfg.BasePath, CounterFileName)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	a.counters.Advance(&vpp.Counters{VIPs: []vpp.VIPCounters{known(key4, 7), known(key2, 4)}}, listeners, true)
	if err := a.saveCounters(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("an unchanged counter file was written again (%v)", err)
	}

	// Records that are baselines, and a file without VIPs, repeat nothing.
	f := NewCounterFile()
	if !f.restartDetectable() {
		t.Error("a file without VIPs needs syncing")
	}
	f.VIPs[key4] = VIPRecord{Baseline: LossCorrupt}
	if !f.restartDetectable() {
		t.Error("a baseline record needs syncing")
	}
	f.VIPs[key2] = VIPRecord{Reported: Sample{Stot: 1}} // the simulator: no bases
	if f.restartDetectable() {
		t.Error("a record without a base was taken as detectable")
	}
}
