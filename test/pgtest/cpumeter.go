package pgtest

import (
	"context"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// CPUMeter measures the CPU time a benchmark costs this process and the
// test database's backends. On a machine shared with other work,
// wall-clock rates swing with the load; CPU time per operation mostly does
// not.
type CPUMeter struct {
	db      *pgxpool.Pool
	self    time.Duration
	backend map[int]time.Duration
}

// StartCPU starts measuring from now.
func StartCPU(b *testing.B, db *pgxpool.Pool) *CPUMeter {
	b.Helper()
	return &CPUMeter{db: db, self: SelfCPU(), backend: backendCPU(b, db)}
}

// Report adds go-cpu-us/op and pg-cpu-us/op (per unit of work, n units).
func (m *CPUMeter) Report(b *testing.B, n int) {
	b.Helper()
	self := SelfCPU() - m.self
	var pg time.Duration
	for pid, t := range backendCPU(b, m.db) {
		pg += t - m.backend[pid]
	}
	b.ReportMetric(float64(self.Nanoseconds())/1e3/float64(n), "go-cpu-us/op")
	b.ReportMetric(float64(pg.Nanoseconds())/1e3/float64(n), "pg-cpu-us/op")
}

// SelfCPU is this process's user and system CPU time so far.
func SelfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// backendCPU reads utime+stime of every backend connected to the test
// database from /proc (the server runs on this machine).
func backendCPU(b *testing.B, db *pgxpool.Pool) map[int]time.Duration {
	b.Helper()
	rows, err := db.Query(context.Background(), `SELECT pid FROM pg_stat_activity WHERE datname = current_database()`)
	if err != nil {
		b.Fatal(err)
	}
	out := map[int]time.Duration{}
	for rows.Next() {
		var pid int
		if err := rows.Scan(&pid); err != nil {
			b.Fatal(err)
		}
		out[pid] = procCPU(pid)
	}
	rows.Close()
	return out
}

// procCPU is fields 14 and 15 of /proc/<pid>/stat, in clock ticks
// (USER_HZ, 100 on Linux).
func procCPU(pid int) time.Duration {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(raw)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(fields) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}
