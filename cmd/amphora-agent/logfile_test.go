package main

import (
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/octavia-vpp/health/internal/testproc"
)

// TestAgentLogFileRotation runs the agent with oslo.log's options in
// [DEFAULT] (log_dir, use_json, debug): its lines go to
// <log_dir>/amphora-agent.log as JSON objects; after logrotate's rename
// and a SIGHUP the next lines go to a new file of the old name.
func TestAgentLogFileRotation(t *testing.T) {
	const key = "agent-logfile-key-77c1"
	dir := t.TempDir()
	bin := testproc.Binary(t, "github.com/octavia-vpp/health/cmd/amphora-agent")
	hm, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hm.Close()
	lbPath := filepath.Join(dir, "lb.json")
	if err := os.WriteFile(lbPath, []byte(lbValid), 0o600); err != nil {
		t.Fatal(err)
	}
	logDir := filepath.Join(dir, "log")
	if err := os.Mkdir(logDir, 0o700); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "amphora-agent.conf")
	body := "[DEFAULT]\ndebug = true\nlog_dir = " + logDir + "\nuse_json = true\nlog_rotation_type = none\n" +
		"[amphora_agent]\namphora_id = amp\nstatus_bind =\n[health_manager]\nheartbeat_key = " + key +
		"\ncontroller_ip_port_list = " + hm.LocalAddr().String() + "\nheartbeat_interval = 0.05\n" +
		"[haproxy_amphora]\nbase_path = " + dir + "\n[vpp]\ndataplane = sim\nlb_config_file = " + lbPath +
		"\nstartup_min_delay = 0\nstartup_max_delay = 0.1\n"
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config-file", conf, "run")
	var stdout, stderr testproc.Output
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()

	path := filepath.Join(logDir, "amphora-agent.log")
	// lines waits for the file at p to hold a complete line and returns
	// its complete lines.
	lines := func(p string) []string {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			b, _ := os.ReadFile(p)
			if i := strings.LastIndexByte(string(b), '\n'); i >= 0 {
				return strings.Split(string(b[:i]), "\n")
			}
			if time.Now().After(deadline) {
				t.Fatalf("no line in %s; standard error:\n%s", p, stderr.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// heartbeat waits for a datagram: the agent has logged "heartbeat
	// sent" at DEBUG level.
	heartbeat := func() {
		t.Helper()
		buf := make([]byte, 65536)
		hm.SetReadDeadline(time.Now().Add(20 * time.Second))
		if _, _, err := hm.ReadFrom(buf); err != nil {
			t.Fatalf("no heartbeat: %v; standard error:\n%s", err, stderr.String())
		}
	}
	heartbeat()
	lines(path)
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	lines(path)
	heartbeat()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("exit after SIGTERM: %v", err)
	}

	levels := map[string]bool{}
	for _, p := range []string{path + ".1", path} {
		for _, line := range lines(p) {
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatalf("%s: not a JSON line: %q: %v", p, line, err)
			}
			if m["msg"] == nil || m["time"] == nil {
				t.Errorf("%s: %q lacks msg or time", p, line)
			}
			levels[m["level"].(string)] = true
			if strings.Contains(line, key) {
				t.Errorf("%s: the key is logged: %q", p, line)
			}
		}
	}
	if !levels["DEBUG"] {
		t.Errorf("no DEBUG line: [DEFAULT] debug ignored; levels %v", levels)
	}
	if s := stderr.String(); s != "" {
		t.Errorf("standard error used beside the log file:\n%s", s)
	}
}
