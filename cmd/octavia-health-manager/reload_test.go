package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/octavia-vpp/health/healthdb/manager/managertest"
	"github.com/octavia-vpp/health/heartbeat"
	"github.com/octavia-vpp/health/internal/testproc"
	"github.com/octavia-vpp/health/test/pgtest"
)

func TestSIGHUPKeyRotation(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewDB(t)
	conn := managertest.SeedOneLB(t, ctx, url)
	bin, err := builtBinary()
	if err != nil {
		t.Fatal(err)
	}
	udpPort, metricsPort := testproc.FreePort(t, "udp"), testproc.FreePort(t, "tcp")
	conf := filepath.Join(t.TempDir(), "octavia.conf")
	writeConf := func(keys string) {
		content := fmt.Sprintf("[database]\nconnection = %s\n[health_manager]\n%s\nbind_ip = 127.0.0.1\nbind_port = %d\n"+
			"metrics_bind = 127.0.0.1:%d\nhealth_batch_wait_ms = 5\nfailover_driver = noop\n"+
			"[controller_worker]\ncompute_driver = compute_noop_driver\n", url, keys, udpPort, metricsPort)
		if err := os.WriteFile(conf, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeConf("heartbeat_key = old-s3cret")

	cmd := exec.Command(bin, "--config-file", conf, "serve")
	var stderr testproc.Output
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", metricsPort)
	testproc.WaitFor(t, "the daemon's /healthz", func() bool {
		resp, err := http.Get("http://" + metricsAddr + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == 200
	})
	udp, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", udpPort))
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	seal := func(key, amphora string) []byte {
		kr, _ := heartbeat.NewKeyring(heartbeat.KeyringConfig{Keys: []string{key}})
		return kr.SealMessage(managertest.TypicalHeartbeat(amphora, "UP"))
	}

	// Before the reload, the new key is unknown.
	udp.Write(seal("new-s3cret", "amp-2"))
	testproc.WaitFor(t, "the new key rejected", func() bool {
		return testproc.MetricValue(testproc.Scrape(t, metricsAddr), `octavia_hm_heartbeats_rejected_total{reason="bad_mac"}`) == "1"
	})

	writeConf("heartbeat_key = new-s3cret\nheartbeat_key_previous = old-s3cret")
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testproc.WaitFor(t, "the reload", func() bool { return strings.Contains(stderr.String(), "configuration reloaded") })
	udp.Write(seal("old-s3cret", "amp-1"))
	udp.Write(seal("new-s3cret", "amp-2"))
	testproc.WaitFor(t, "both keys accepted", func() bool {
		body := testproc.Scrape(t, metricsAddr)
		return testproc.MetricValue(body, `octavia_hm_heartbeats_accepted_total{key="primary",mac="hex"}`) == "1" &&
			testproc.MetricValue(body, `octavia_hm_heartbeats_accepted_total{key="previous",mac="hex"}`) == "1"
	})
	testproc.WaitFor(t, "both health rows", func() bool {
		var n int
		conn.QueryRow(ctx, `SELECT count(*) FROM amphora_health WHERE amphora_id IN ('amp-1', 'amp-2')`).Scan(&n)
		return n == 2
	})

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
	log := stderr.String()
	if strings.Contains(log, "s3cret") {
		t.Errorf("the log shows key material:\n%s", log)
	}
	for _, want := range []string{"primary_key_changed=true", "previous_keys=1", "health manager stopped"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
}
