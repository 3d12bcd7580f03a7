//go:build linux

package loadgen

import (
	"os"
	"path/filepath"
	"testing"
)

func TestReadProcStat(t *testing.T) {
	// A command name may hold spaces and parentheses.
	line := "4242 (post gres) x) S 17 4242 4242 0 -1 4194560 100 0 0 0 1234 56 78 9 20 0 1 0 100 0 0\n"
	path := filepath.Join(t.TempDir(), "stat")
	if err := os.WriteFile(path, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := readProcStat(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := (procStat{ppid: 17, utime: 1234, stime: 56, cutime: 78, cstime: 9}); s != want {
		t.Errorf("readProcStat = %+v, want %+v", s, want)
	}
}

func TestTreeCPUOfThisProcess(t *testing.T) {
	if _, err := TreeCPU([]int{os.Getpid()}); err != nil {
		t.Fatal(err)
	}
	if _, err := TreeCPU([]int{1 << 30}); err == nil {
		t.Error("TreeCPU of a pid that does not exist: no error")
	}
}
