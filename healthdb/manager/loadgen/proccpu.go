package loadgen

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times: 100 on
// every Linux architecture Go supports.
const clockTicks = 100

// procStat is what TreeCPU needs of /proc/PID/stat.
type procStat struct {
	ppid                         int
	utime, stime, cutime, cstime uint64
}

func readProcStat(path string) (procStat, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return procStat{}, err
	}
	// The command name, in parentheses, may hold spaces: fields start
	// after the last ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("%s: no ')'", path)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 15 {
		return procStat{}, fmt.Errorf("%s: %d fields", path, len(f))
	}
	// f[0] is the state (field 3); ppid is field 4, utime..cstime 14-17.
	var s procStat
	s.ppid, err = strconv.Atoi(f[1])
	for k, dst := range []*uint64{&s.utime, &s.stime, &s.cutime, &s.cstime} {
		if err != nil {
			break
		}
		*dst, err = strconv.ParseUint(f[11+k], 10, 64)
	}
	return s, err
}

// TreeCPU is the CPU time, in seconds, of the processes roots and their
// children: the roots' user+system time and that of their reaped children
// (cutime, cstime), plus the user+system time of their live children. A
// child that exits between two readings moves from the second part to
// the first, so the difference of two readings counts it once: a
// PostgreSQL cluster's postmaster and its backends.
func TreeCPU(roots []int) (float64, error) {
	isRoot := map[int]bool{}
	var ticks uint64
	for _, pid := range roots {
		s, err := readProcStat(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return 0, err
		}
		isRoot[pid] = true
		ticks += s.utime + s.stime + s.cutime + s.cstime
	}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, path := range stats {
		s, err := readProcStat(path)
		if err != nil || !isRoot[s.ppid] {
			continue // gone since the listing, or not a child
		}
		ticks += s.utime + s.stime
	}
	return float64(ticks) / clockTicks, nil
}
