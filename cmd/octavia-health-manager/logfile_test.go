package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/octavia-vpp/health/healthdb/manager/managertest"
	"github.com/octavia-vpp/health/internal/testproc"
	"github.com/octavia-vpp/health/test/pgtest"
)

// TestLogFileReopenedOnSIGHUP runs the daemon with oslo.log's log_file,
// log_dir and use_json: JSON lines go to the file only; after
// logrotate's rename and a SIGHUP, the reload's lines go to a new file
// of the old name.
func TestLogFileReopenedOnSIGHUP(t *testing.T) {
	url := pgtest.NewDB(t)
	managertest.SeedOneLB(t, context.Background(), url)
	bin, err := builtBinary()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	udpPort, metricsPort := testproc.FreePort(t, "udp"), testproc.FreePort(t, "tcp")
	conf := filepath.Join(dir, "octavia.conf")
	content := fmt.Sprintf("[DEFAULT]\nlog_dir = %s\nlog_file = hm.log\nuse_json = true\nwatch_log_file = false\n"+
		"[database]\nconnection = %s\n[health_manager]\nheartbeat_key = s3cret-logfile\nbind_ip = 127.0.0.1\nbind_port = %d\n"+
		"metrics_bind = 127.0.0.1:%d\nfailover_driver = noop\n"+
		"[controller_worker]\ncompute_driver = compute_noop_driver\n", dir, url, udpPort, metricsPort)
	if err := os.WriteFile(conf, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config-file", conf, "serve")
	var stderr testproc.Output
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	testproc.WaitFor(t, "the daemon's /healthz", func() bool {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", metricsPort))
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == 200
	})
	path := filepath.Join(dir, "hm.log")
	read := func(p string) string { b, _ := os.ReadFile(p); return string(b) }
	testproc.WaitFor(t, "a line in "+path, func() bool { return strings.Contains(read(path), "\n") })
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testproc.WaitFor(t, "the reload logged in a new "+path, func() bool {
		return strings.Contains(read(path), "configuration reloaded")
	})
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()

	if strings.Contains(read(path+".1"), "configuration reloaded") {
		t.Errorf("the renamed file got the reload's line:\n%s", read(path+".1"))
	}
	for _, p := range []string{path + ".1", path} {
		for _, line := range strings.Split(strings.TrimSuffix(read(p), "\n"), "\n") {
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Errorf("%s: not a JSON line %q: %v", p, line, err)
			}
			if lvl, _ := m["level"].(string); lvl == "WARN" {
				t.Errorf("%s: level WARN, oslo writes WARNING: %q", p, line)
			}
			if strings.Contains(line, "s3cret-logfile") {
				t.Errorf("%s: the key is logged: %q", p, line)
			}
		}
	}
	if s := stderr.String(); s != "" {
		t.Errorf("standard error used beside log_file:\n%s", s)
	}
}
