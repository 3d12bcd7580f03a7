package main

import (
	"context"
	"encoding/base64"
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

func TestReplayCommand(t *testing.T) {
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
		`INSERT INTO pool (id, load_balancer_id, protocol, lb_algorithm, operating_status, enabled, provisioning_status) VALUES ('pool-1', 'lb-1', 'HTTP', 'ROUND_ROBIN', 'OFFLINE', true, 'ACTIVE')`,
		`INSERT INTO member (id, pool_id, ip_address, protocol_port, operating_status, enabled, provisioning_status, backup) VALUES ('m-1', 'pool-1', '192.0.2.1', 80, 'OFFLINE', true, 'ACTIVE', false)`,
		`INSERT INTO listener (id, load_balancer_id, protocol, protocol_port, provisioning_status, operating_status, enabled, default_pool_id) VALUES ('l-1', 'lb-1', 'HTTP', 80, 'ACTIVE', 'OFFLINE', true, 'pool-1')`,
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}

	kr, err := heartbeat.NewKeyring(heartbeat.KeyringConfig{Keys: []string{"replay-key"}})
	if err != nil {
		t.Fatal(err)
	}
	other, _ := heartbeat.NewKeyring(heartbeat.KeyringConfig{Keys: []string{"not-the-key"}})
	stats := heartbeat.Stats{TX: 1, RX: 2}
	msg := func(id, member string) *heartbeat.Message {
		return &heartbeat.Message{AmphoraID: id, Version: 3, HasVersion: true,
			Listeners: []heartbeat.Listener{{ID: "l-1", Status: "OPEN", Stats: stats, HasStats: true}},
			Pools:     []heartbeat.Pool{{Key: "pool-1:l-1", Status: "UP", Members: []heartbeat.Member{{ID: "m-1", Status: member}}}}}
	}
	line := func(datagram []byte) string {
		b, _ := json.Marshal(map[string]any{"b64": base64.StdEncoding.EncodeToString(datagram), "srcaddr": "192.0.2.7", "extra": 1})
		return string(b)
	}
	lines := []string{
		line(kr.SealMessage(msg("amp-1", "DOWN"))),
		line(kr.SealMessage(msg("amp-1", "UP"))), // in file order: the member ends up ONLINE
		line(other.SealMessage(msg("amp-1", "DOWN"))),
		line(kr.Seal([]byte(`[1, 2]`))),
		line(kr.SealMessage(msg("amp-unknown", "UP"))),
		`{"no_b64": true}`,
		`not json`,
		"",
	}
	capture := filepath.Join(t.TempDir(), "capture.jsonl")
	if err := os.WriteFile(capture, []byte(strings.Join(lines, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := testproc.WriteFile(t, "octavia.conf", []byte(fmt.Sprintf(
		"[database]\nconnection = %s\n[health_manager]\nheartbeat_key = replay-key\n[controller_worker]\ncompute_driver = compute_noop_driver\n", url)))

	r := runBinary(t, nil, "--config-file", conf, "replay", capture)
	t.Logf("replay summary:\n%s", r.stdout)
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{
		"datagrams: 5 read, 3 accepted, 2 rejected, 2 unreadable lines",
		"rejected bad_mac    1",
		"rejected not_object 1",
		"health rows written: 2",
		"0 zombie, 1 unknown amphora",
		"load_balancer -> ONLINE     1",
		"listener      -> ONLINE     1",
		"member        -> ERROR      1",
		"member        -> ONLINE     1",
		"pool          -> DEGRADED   1",
		"pool          -> ONLINE     1",
		"statistics: 3 recorded, 0 dropped (listener without stats), 0 refused in part, 0 with driver errors",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("summary lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stderr, "replay-key") || strings.Contains(r.stdout, "replay-key") {
		t.Error("the key appears in the output")
	}
	var member, lb string
	var healthRows int
	if err := conn.QueryRow(ctx, `SELECT (SELECT operating_status FROM member WHERE id = 'm-1'),
		(SELECT operating_status FROM load_balancer WHERE id = 'lb-1'), (SELECT count(*) FROM amphora_health)`).Scan(&member, &lb, &healthRows); err != nil {
		t.Fatal(err)
	}
	if member != "ONLINE" || lb != "ONLINE" || healthRows != 1 {
		t.Errorf("member %s, load balancer %s, %d health rows; want ONLINE, ONLINE, 1", member, lb, healthRows)
	}

	// Statistics went to stats_db (the default driver) for every accepted
	// heartbeat, the unknown amphora's included, version 3 deltas summed.
	rows, err := conn.Query(ctx, `SELECT listener_id || '/' || amphora_id, bytes_in, bytes_out FROM listener_statistics ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	var gotStats []string
	for rows.Next() {
		var key string
		var in, out int64
		if err := rows.Scan(&key, &in, &out); err != nil {
			t.Fatal(err)
		}
		gotStats = append(gotStats, fmt.Sprintf("%s in=%d out=%d", key, in, out))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if want := "l-1/amp-1 in=4 out=2,l-1/amp-unknown in=2 out=1"; strings.Join(gotStats, ",") != want {
		t.Errorf("listener_statistics %v, want %s", gotStats, want)
	}

	// replay opens the statistics drivers through serve's registry: a name
	// serve refuses is refused here too (Octavia's stevedore would skip it),
	// and the prometheus driver opens.
	typo := testproc.WriteFile(t, "typo.conf", []byte(fmt.Sprintf(
		"[database]\nconnection = %s\n[health_manager]\nheartbeat_key = replay-key\n[controller_worker]\n"+
			"compute_driver = compute_noop_driver\nstatistics_drivers = stats_db, stats_dbb\n", url)))
	if r := runBinary(t, nil, "--config-file", typo, "replay", capture); r.code != exitUsage || !strings.Contains(r.stderr, `unknown statistics driver "stats_dbb"`) {
		t.Errorf("unknown statistics driver: exit %d, stderr %q", r.code, r.stderr)
	}
	withProm := testproc.WriteFile(t, "prom.conf", []byte(fmt.Sprintf(
		"[database]\nconnection = %s\n[health_manager]\nheartbeat_key = replay-key\n[controller_worker]\n"+
			"compute_driver = compute_noop_driver\nstatistics_drivers = prometheus, stats_logger\n", url)))
	if r := runBinary(t, nil, "--config-file", withProm, "replay", capture); r.code != 0 || !strings.Contains(r.stdout, "statistics: 3 recorded") {
		t.Errorf("prometheus and stats_logger: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}

	// Without a database setting, replay explains itself.
	noDB := testproc.WriteFile(t, "nodb.conf", []byte("[health_manager]\nheartbeat_key = k\n"))
	if r := runBinary(t, nil, "--config-file", noDB, "replay", capture); r.code != exitUsage || !strings.Contains(r.stderr, "[database] connection") {
		t.Errorf("no database: exit %d, stderr %q", r.code, r.stderr)
	}
}
