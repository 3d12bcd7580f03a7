//go:build demo

package main

// The whole demo, as `make run` starts it (make demo-test). It needs what
// make run needs: Go, PostgreSQL's binaries (installed by apt when
// missing) and about two minutes.

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// runDir is a fresh directory the demo works in, reachable by the
// postgres user when the test runs as root.
func runDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "demo-test-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func demoCommand(ctx context.Context, t *testing.T, dir string, env ...string) *exec.Cmd {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, filepath.Join(root, "test/demo/run.sh"))
	cmd.Env = append(os.Environ(), append(env, "DEMO_RUN_DIR="+dir)...)
	// Its own process group, as a shell gives a foreground job, so that a
	// Ctrl-C can be sent to the group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

// leftovers lists the processes whose command line mentions dir.
func leftovers(dir string) []string {
	var out []string
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(b, []byte(dir)) {
			continue
		}
		out = append(out, filepath.Base(filepath.Dir(p))+": "+string(bytes.ReplaceAll(b, []byte{0}, []byte{' '})))
	}
	return out
}

func checkNothingLeft(t *testing.T, dir string) {
	t.Helper()
	// Processes the script waited for are gone; give PostgreSQL's
	// children a moment to follow their postmaster.
	deadline := time.Now().Add(10 * time.Second)
	for {
		left := leftovers(dir)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes left behind:\n%s", strings.Join(left, "\n"))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// closedClone copies the working tree (tracked and untracked files, not
// ignored ones) into a directory of mode 0700, as a clone under /root/src
// is: the postgres user cannot enter it.
func closedClone(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	closed, err := os.MkdirTemp("", "demo-closed-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(closed) })
	if err := os.Chmod(closed, 0o700); err != nil {
		t.Fatal(err)
	}
	clone := filepath.Join(closed, "src")
	if err := os.Mkdir(clone, 0o755); err != nil {
		t.Fatal(err)
	}
	cp := exec.Command("bash", "-c", `set -o pipefail; git ls-files -z --cached --others --exclude-standard | `+
		`while IFS= read -r -d '' f; do if [ -e "$f" ]; then printf '%s\0' "$f"; fi; done | tar --null -T - -cf - | tar -xf - -C "$1"`, "sh", clone)
	cp.Dir = root
	if out, err := cp.CombinedOutput(); err != nil {
		t.Fatalf("copying the tree: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(clone, "Makefile")); err != nil {
		t.Fatalf("copying the tree: %v", err)
	}
	return clone
}

// pgHomes lists the directories test/pg.sh makes under /tmp when the
// postgres user cannot reach the demo's.
func pgHomes() map[string]bool {
	m, _ := filepath.Glob("/tmp/octavia-vpp-pg.*")
	out := map[string]bool{}
	for _, d := range m {
		out[d] = true
	}
	return out
}

// TestDemoStory runs the demo for 70 seconds and checks its story. As
// root it runs `make run` itself, from a copy of the tree inside a
// mode-0700 directory, where the demo's PostgreSQL (run as postgres)
// cannot reach .run/: test/pg.sh must keep its files elsewhere, and
// remove them at the end.
func TestDemoStory(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var cmd *exec.Cmd
	var dir string
	before := pgHomes()
	if os.Geteuid() == 0 {
		dir = closedClone(t)
		cmd = exec.CommandContext(ctx, "make", "--no-print-directory", "run")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "DEMO_SECONDS=70")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.WaitDelay = 10 * time.Second
	} else {
		dir = runDir(t)
		cmd = demoCommand(ctx, t, dir, "DEMO_SECONDS=70")
	}
	start := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("make run with DEMO_SECONDS=70 in %s took %v:\n%s", dir, time.Since(start).Round(time.Second), out)
	for d := range pgHomes() {
		if !before[d] {
			t.Errorf("%s left behind", d)
		}
	}
	if err != nil {
		t.Fatalf("the demo failed: %v", err)
	}
	for _, want := range []string{"ok   the silent amphora amp-03-a went stale", "ok   every other amphora is fresh", "stopped;"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	checkNothingLeft(t, dir)
}

func TestDemoStopsOnSignal(t *testing.T) {
	for _, tc := range []struct {
		name  string
		group bool // to the whole process group, as a terminal's Ctrl-C
		sig   syscall.Signal
	}{
		{"Ctrl-C", true, syscall.SIGINT},
		{"SIGTERM to the script", false, syscall.SIGTERM},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := runDir(t)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			cmd := demoCommand(ctx, t, dir)
			pr, pw := io.Pipe()
			cmd.Stdout, cmd.Stderr = pw, pw
			var mu sync.Mutex
			var log strings.Builder
			running := make(chan struct{})
			go func() {
				sc := bufio.NewScanner(pr)
				once := sync.Once{}
				for sc.Scan() {
					mu.Lock()
					log.WriteString(sc.Text() + "\n")
					mu.Unlock()
					// The first summary line: everything is up.
					if strings.Contains(sc.Text(), "lbs[") {
						once.Do(func() { close(running) })
					}
				}
			}()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			dump := func() string { mu.Lock(); defer mu.Unlock(); return log.String() }
			select {
			case <-running:
			case <-time.After(2 * time.Minute):
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				t.Fatalf("the demo did not come up:\n%s", dump())
			}
			pid := cmd.Process.Pid
			if tc.group {
				pid = -pid
			}
			if err := syscall.Kill(pid, tc.sig); err != nil {
				t.Fatal(err)
			}
			err := cmd.Wait()
			pw.Close()
			if err != nil {
				t.Errorf("exit after %v: %v\n%s", tc.sig, err, dump())
			}
			if !strings.Contains(dump(), "stopped;") {
				t.Errorf("no clean stop:\n%s", dump())
			}
			checkNothingLeft(t, dir)
			t.Logf("pid %s stopped cleanly", strconv.Itoa(cmd.Process.Pid))
		})
	}
}
