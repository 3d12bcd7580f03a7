package main

import (
	"context"
	"encoding/base64"
	"encoding/hex"
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

	"github.com/octavia-vpp/health/healthdb/failover/failovertest"
	"github.com/octavia-vpp/health/healthdb/manager/managertest"
	"github.com/octavia-vpp/health/heartbeat"
	"github.com/octavia-vpp/health/internal/testproc"
	"github.com/octavia-vpp/health/test/pgtest"
)

// TestLogsHoldNoSecrets runs the binary at debug level through what makes
// it talk about its secrets: datagrams with bad MACs, heartbeats under the
// current and the previous key, reloads that fail (an unclosed quoted key,
// a value substituting the key, an unsupported database URL with a
// password) and one that rotates the keys and the database password, and
// failovers that Keystone first refuses and then accepts with a token.
// Neither stdout nor stderr may show a key, a password or the token, in
// clear, hex or base64. (serve has no DEBUG lines of its own today; debug
// is on so that any added later are covered.)
func TestLogsHoldNoSecrets(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewDB(t)
	conn := managertest.SeedOneLB(t, ctx, url)
	// amp-2 is stale from the start: the watcher fails it over.
	if _, err := conn.Exec(ctx, `INSERT INTO amphora_health (amphora_id, last_update, busy) VALUES ('amp-2', $1::timestamp, false)`,
		time.Now().UTC().Add(-10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	bin, err := builtBinary()
	if err != nil {
		t.Fatal(err)
	}
	fake := failovertest.New(t)
	fake.RejectAuth(true)

	const (
		key0, key1, key2 = "hygiene-key-zero-7f3a", "hygiene-key-one-19c4", "hygiene-key-two-e85b"
		dbPassword1      = "db-pw-one-4b2e9d"
		dbPassword2      = "db-pw-two-5c8a1f"
		dbPassword3      = "db-pw-three/6d@9b2e" // a "/" and an "@", as RedactURL once missed
	)
	secrets := []string{key0, key1, key2, dbPassword1, dbPassword2, dbPassword3, failovertest.Password}
	// The trust-authenticated test cluster ignores a password in the URL.
	withPassword := func(pw string) string { return strings.Replace(url, "@", ":"+pw+"@", 1) }

	udpPort, metricsPort := testproc.FreePort(t, "udp"), testproc.FreePort(t, "tcp")
	conf := filepath.Join(t.TempDir(), "octavia.conf")
	writeConf := func(healthManager, connection string) {
		content := fmt.Sprintf(`[DEFAULT]
debug = true
[database]
connection = %s
[health_manager]
%s
bind_ip = 127.0.0.1
bind_port = %d
metrics_bind = 127.0.0.1:%d
health_batch_wait_ms = 5
heartbeat_timeout = 1
health_check_interval = 1
failover_driver = octavia_api
[controller_worker]
compute_driver = compute_noop_driver
%s`, connection, healthManager, udpPort, metricsPort, fake.ServiceAuthSection())
		if err := os.WriteFile(conf, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeConf("heartbeat_key = "+key1+"\nheartbeat_key_previous = "+key0, withPassword(dbPassword1))

	cmd := exec.Command(bin, "--config-file", conf, "serve")
	var stdout, stderr testproc.Output
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
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
	send := func(key string) {
		kr, _ := heartbeat.NewKeyring(heartbeat.KeyringConfig{Keys: []string{key}})
		udp.Write(kr.SealMessage(managertest.TypicalHeartbeat("amp-1", "UP")))
	}
	// Heartbeats keep amp-1 fresh, so that the manager is not deaf and
	// fails amp-2 over.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
				send(key1)
			}
		}
	}()
	send(key0)
	send("not-the-key")
	udp.Write([]byte("garbage without a MAC"))
	counted := func(series string) func() bool {
		return func() bool {
			v := testproc.MetricValue(testproc.Scrape(t, metricsAddr), series)
			return v != "" && v != "0"
		}
	}
	waitLogged(t, "bad MACs counted", &stderr, counted(`octavia_hm_heartbeats_rejected_total{reason="bad_mac"}`))
	waitLogged(t, "a failover Keystone refused", &stderr, counted(`octavia_hm_failovers_total{result="error"}`))

	const failed, reloaded = "reload failed", "configuration reloaded"
	reload := func(healthManager, connection, want string) {
		t.Helper()
		before := strings.Count(stderr.String(), want)
		writeConf(healthManager, connection)
		if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		waitLogged(t, want, &stderr, func() bool { return strings.Count(stderr.String(), want) > before })
	}
	reload(`heartbeat_key = """`+key2, withPassword(dbPassword1), failed)
	reload("heartbeat_key = "+key2+"\nqueue_size = $heartbeat_key", withPassword(dbPassword1), failed)
	reload("heartbeat_key = "+key2, strings.Replace(withPassword(dbPassword3), "postgres", "mysql", 1), failed)
	reload("heartbeat_key = "+key2+"\nheartbeat_key_previous = "+key1, withPassword(dbPassword2), reloaded)

	send(key2)
	send(key0) // no longer configured
	fake.RejectAuth(false)
	waitLogged(t, "amp-2 failed over with a token", &stderr, func() bool { return fake.Failovers()["amp-2"] == 1 })

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

	tokens := fake.Tokens()
	if len(tokens) == 0 {
		t.Fatal("Keystone issued no token")
	}
	secrets = append(secrets, tokens...)
	logs := stdout.String() + stderr.String()
	for _, want := range []string{"debug=true", failed, reloaded, "401"} {
		if !strings.Contains(logs, want) {
			t.Errorf("the logs lack %q, so the scenario did not run as meant:\n%s", want, logs)
		}
	}
	for _, s := range secrets {
		for _, form := range []string{s, hex.EncodeToString([]byte(s)), base64.StdEncoding.EncodeToString([]byte(s)),
			base64.RawURLEncoding.EncodeToString([]byte(s)), strings.ReplaceAll(s, "/", "%2F")} {
			if strings.Contains(logs, form) {
				t.Errorf("the logs show the secret %q (as %q):\n%s", s, form, logs)
			}
		}
	}
}

// waitLogged is waitFor that shows the daemon's log when it times out.
func waitLogged(t *testing.T, what string, logs *testproc.Output, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; the log:\n%s", what, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
