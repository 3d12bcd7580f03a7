package main

import (
	"encoding/base64"
	"encoding/hex"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/octavia-vpp/health/heartbeat"
	"github.com/octavia-vpp/health/internal/testproc"
)

// TestAgentLogsHoldNoKey runs the agent binary at debug level on the
// simulator and reloads it with a config whose heartbeat key opens a """
// value it never closes, with a bad LB description, and with a new key.
// Its heartbeats must verify under the new key afterwards, and its output
// must never show either key, in clear, hex or base64.
func TestAgentLogsHoldNoKey(t *testing.T) {
	const key1, key2 = "agent-key-one-5e1d9c", "agent-key-two-a04f7b"
	dir := t.TempDir()
	bin := testproc.Binary(t, "github.com/octavia-vpp/health/cmd/amphora-agent")
	hm, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hm.Close()
	lbPath := filepath.Join(dir, "lb.json")
	writeLB := func(body string) {
		if err := os.WriteFile(lbPath, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeLB(lbValid)
	conf := filepath.Join(dir, "amphora-agent.conf")
	writeConf := func(keyLine string) {
		body := "[amphora_agent]\namphora_id = amp\nstatus_bind =\n[health_manager]\n" + keyLine +
			"\ncontroller_ip_port_list = " + hm.LocalAddr().String() + "\nheartbeat_interval = 0.05\n" +
			"[haproxy_amphora]\nbase_path = " + dir + "\n[vpp]\ndataplane = sim\nlb_config_file = " + lbPath +
			"\nstartup_min_delay = 0\nstartup_max_delay = 0.1\n"
		if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeConf("heartbeat_key = " + key1)

	cmd := exec.Command(bin, "--debug", "--config-file", conf, "run")
	var stdout, stderr testproc.Output
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()

	// verifiedUnder waits for a heartbeat that opens under key.
	verifiedUnder := func(key string) {
		t.Helper()
		kr, err := heartbeat.NewKeyring(heartbeat.KeyringConfig{Keys: []string{key}})
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 65536)
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			hm.SetReadDeadline(time.Now().Add(time.Second))
			n, _, err := hm.ReadFrom(buf)
			if err != nil {
				continue
			}
			if _, _, err := kr.Open(buf[:n]); err == nil {
				return
			}
		}
		t.Fatalf("no heartbeat under %q; the log:\n%s", key, stderr.String())
	}
	verifiedUnder(key1)

	reload := func(want string) {
		t.Helper()
		before := strings.Count(stderr.String(), want)
		if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(20 * time.Second)
		for strings.Count(stderr.String(), want) <= before {
			if time.Now().After(deadline) {
				t.Fatalf("no %q after SIGHUP; the log:\n%s", want, stderr.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	writeConf(`heartbeat_key = """` + key2)
	reload("reload: config file rejected")
	writeLB(`{"loadbalancer_id": "lb", "vip_addresses": ["not-an-address"]}`)
	writeConf("heartbeat_key = " + key2 + "\nbogus line without a delimiter " + key2)
	reload("reload: config file rejected")
	writeLB(lbValid)
	writeConf("heartbeat_key = " + key2)
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	verifiedUnder(key2)

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
	logs := stdout.String() + stderr.String()
	if !strings.Contains(logs, "level=DEBUG") {
		t.Errorf("no DEBUG line: the agent did not run at debug level:\n%s", logs)
	}
	for _, key := range []string{key1, key2} {
		for _, form := range []string{key, hex.EncodeToString([]byte(key)), base64.StdEncoding.EncodeToString([]byte(key)),
			strconv.Quote(key)} {
			if strings.Contains(logs, form) {
				t.Errorf("the logs show the key %q (as %q):\n%s", key, form, logs)
			}
		}
	}
}
