package main

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/octavia-vpp/health/heartbeat"
	"github.com/octavia-vpp/health/internal/testproc"
	"github.com/octavia-vpp/health/test/pgtest"
)

// TestToolsAcceptWhatServeAccepts: replay and decode build their keyring
// as serve does, so a heartbeat signed with heartbeat_key_previous, and one
// larger than the default inflated limit but within max_heartbeat_bytes,
// are accepted by both.
func TestToolsAcceptWhatServeAccepts(t *testing.T) {
	url := pgtest.NewDB(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, sql := range []string{
		`INSERT INTO load_balancer (id, provisioning_status, operating_status, enabled) VALUES ('lb-1', 'ACTIVE', 'OFFLINE', true)`,
		`INSERT INTO amphora (id, load_balancer_id, status, compute_id, cert_busy) VALUES ('amp-1', 'lb-1', 'ALLOCATED', 'c-1', false)`,
		`INSERT INTO amphora (id, load_balancer_id, status, compute_id, cert_busy) VALUES ('amp-2', 'lb-1', 'ALLOCATED', 'c-2', false)`,
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}

	current, err := heartbeat.NewKeyring(heartbeat.KeyringConfig{Keys: []string{"current-key"}})
	if err != nil {
		t.Fatal(err)
	}
	previous, err := heartbeat.NewKeyring(heartbeat.KeyringConfig{Keys: []string{"previous-key"}})
	if err != nil {
		t.Fatal(err)
	}
	oldSigned := previous.SealMessage(&heartbeat.Message{AmphoraID: "amp-1", Version: 3, HasVersion: true})
	// Over heartbeat.DefaultMaxInflatedBytes once inflated; an unknown
	// field pads it, as Octavia ignores unknown fields.
	padding := strings.Repeat("x", heartbeat.DefaultMaxInflatedBytes)
	large := current.Seal([]byte(`{"id": "amp-2", "seq": 1, "ver": 3, "listeners": {}, "pools": {}, "padding": "` + padding + `"}`))

	base := fmt.Sprintf("[database]\nconnection = %s\n[controller_worker]\ncompute_driver = compute_noop_driver\n"+
		"[health_manager]\nheartbeat_key = current-key\nheartbeat_key_previous = previous-key\n", url)
	conf := testproc.WriteFile(t, "octavia.conf", []byte(base+fmt.Sprintf("max_heartbeat_bytes = %d\n", 2*heartbeat.DefaultMaxInflatedBytes)))
	defaultLimit := testproc.WriteFile(t, "default-limit.conf", []byte(base))

	for name, datagram := range map[string][]byte{"previous key": oldSigned, "large": large} {
		r := runBinary(t, []byte(hex.EncodeToString(datagram)), "--config-file", conf, "decode", "--hex")
		if r.code != 0 || !strings.Contains(r.stdout, `"id": "amp-`) {
			t.Errorf("decode %s: exit %d, stdout %q, stderr %q", name, r.code, r.stdout, r.stderr)
		}
	}
	r := runBinary(t, []byte(hex.EncodeToString(large)), "--config-file", defaultLimit, "decode", "--hex")
	if r.code != exitRejected || !strings.Contains(r.stderr, "too_large") {
		t.Errorf("decode large with the default limit: exit %d, stderr %q; want too_large", r.code, r.stderr)
	}

	var lines []string
	for _, datagram := range [][]byte{oldSigned, large} {
		b, _ := json.Marshal(map[string]string{"b64": base64.StdEncoding.EncodeToString(datagram)})
		lines = append(lines, string(b))
	}
	capture := filepath.Join(t.TempDir(), "capture.jsonl")
	if err := os.WriteFile(capture, []byte(strings.Join(lines, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	r = runBinary(t, nil, "--config-file", conf, "replay", capture)
	if r.code != 0 || !strings.Contains(r.stdout, "datagrams: 2 read, 2 accepted, 0 rejected") {
		t.Fatalf("replay: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	var rows int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM amphora_health WHERE amphora_id IN ('amp-1', 'amp-2')`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 2 {
		t.Errorf("%d amphora_health rows after replay, want 2", rows)
	}
	r = runBinary(t, nil, "--config-file", defaultLimit, "replay", capture)
	if !strings.Contains(r.stdout, "1 accepted, 1 rejected") || !strings.Contains(r.stdout, "too_large") {
		t.Errorf("replay with the default limit: stdout %s", r.stdout)
	}
}
