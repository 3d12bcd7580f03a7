package manager_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/octavia-vpp/health/healthdb/manager"
	"github.com/octavia-vpp/health/healthdb/manager/managertest"
	"github.com/octavia-vpp/health/heartbeat"
	"github.com/octavia-vpp/health/internal/testproc"
	"github.com/octavia-vpp/health/statsdriver"
	"github.com/octavia-vpp/health/test/pgtest"
)

func TestServeEndToEnd(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewDB(t)
	conn := managertest.SeedOneLB(t, ctx, url)
	conf := testproc.WriteFile(t, "octavia.conf", []byte(fmt.Sprintf(`[database]
connection = %s
[health_manager]
heartbeat_key = e2e-key
failover_driver = noop
bind_ip = 127.0.0.1
bind_port = 0
metrics_bind = 127.0.0.1:0
receive_sockets = 2
max_heartbeat_bytes = 2048
health_batch_wait_ms = 5
[controller_worker]
compute_driver = compute_noop_driver
statistics_drivers = stats_db, prometheus
`, url)))

	r := managertest.Start(t, managertest.Options{Files: []string{conf}})
	d := r.Manager
	udp, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(d.ListenAddr()))
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	kr, _ := heartbeat.NewKeyring(heartbeat.KeyringConfig{Keys: []string{"e2e-key"}})

	corrupt := kr.SealMessage(managertest.TypicalHeartbeat("amp-2", "UP"))
	corrupt[5] ^= 0xff
	oversized := kr.Seal([]byte(`{"id": "amp-2", "listeners": {}, "pools": {}, "ver": 3, "pad": "` + strings.Repeat("x", 4000) + `"}`))
	for _, datagram := range [][]byte{kr.SealMessage(managertest.TypicalHeartbeat("amp-1", "DOWN")), corrupt, oversized} {
		if _, err := udp.Write(datagram); err != nil {
			t.Fatal(err)
		}
	}
	status := func(table, id string) string {
		var s string
		if err := conn.QueryRow(ctx, `SELECT operating_status FROM `+table+` WHERE id = $1`, id).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	testproc.WaitFor(t, "member ERROR", func() bool { return status("member", "m-1") == "ERROR" })
	for _, c := range []struct{ table, id, want string }{
		{"load_balancer", "lb-1", "DEGRADED"}, {"listener", "l-1", "ONLINE"}, {"pool", "pool-1", "DEGRADED"},
	} {
		if got := status(c.table, c.id); got != c.want {
			t.Errorf("%s %s = %s, want %s", c.table, c.id, got, c.want)
		}
	}
	var healthRows []string
	rows, _ := conn.Query(ctx, `SELECT amphora_id FROM amphora_health ORDER BY 1`)
	for rows.Next() {
		var id string
		rows.Scan(&id)
		healthRows = append(healthRows, id)
	}
	rows.Close()
	if strings.Join(healthRows, ",") != "amp-1" {
		t.Errorf("amphora_health rows %v, want only amp-1 (the corrupt and oversized ones are rejected)", healthRows)
	}

	var in, out, active, total, reqErrs int64
	testproc.WaitFor(t, "listener_statistics", func() bool {
		return conn.QueryRow(ctx, `SELECT bytes_in, bytes_out, active_connections, total_connections, request_errors
			FROM listener_statistics WHERE listener_id = 'l-1' AND amphora_id = 'amp-1'`).Scan(&in, &out, &active, &total, &reqErrs) == nil
	})
	if in != 20 || out != 10 || active != 1 || total != 2 || reqErrs != 0 {
		t.Errorf("listener_statistics = in %d out %d active %d total %d errors %d; want 20 10 1 2 0", in, out, active, total, reqErrs)
	}

	metricsAddr := d.MetricsAddr().String()
	var body string
	testproc.WaitFor(t, "rejections counted", func() bool {
		body = testproc.Scrape(t, metricsAddr)
		return testproc.MetricValue(body, `octavia_hm_heartbeats_rejected_total{reason="too_large"}`) == "1"
	})
	for series, want := range map[string]string{
		`octavia_hm_heartbeats_rejected_total{reason="bad_mac"}`:          "1",
		`octavia_hm_heartbeats_accepted_total{key="primary",mac="hex"}`:   "1",
		`octavia_hm_datagrams_received_total`:                             "3",
		`octavia_hm_heartbeats_applied_total{outcome="written"}`:          "1",
		`octavia_hm_status_changes_total{entity="member",status="ERROR"}`: "1",
		`octavia_hm_amphorae_seen`:                                        "1",
		`octavia_hm_listener_bytes_in_total{listener_id="l-1"}`:           "20",
		`octavia_hm_listener_active_connections{listener_id="l-1"}`:       "1",
	} {
		if got := testproc.MetricValue(body, series); got != want {
			t.Errorf("%s = %q, want %q", series, got, want)
		}
	}
	checkGoldenMetricNames(t, body)

	resp, err := http.Get("http://" + metricsAddr + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz: %v %v", resp, err)
	}

	if err := r.Stop(); err != nil {
		t.Errorf("daemon exited with %v", err)
	}
}

// checkGoldenMetricNames compares the octavia_hm_ metric families exposed
// with the program's metric-names.golden (regenerate with UPDATE_GOLDEN=1).
func checkGoldenMetricNames(t *testing.T, body string) {
	t.Helper()
	names := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 3 && f[0] == "#" && f[1] == "TYPE" && strings.HasPrefix(f[2], "octavia_hm_") {
			names[f[2]+" "+f[3]] = true
		}
	}
	var got []string
	for n := range names {
		got = append(got, n)
	}
	sort.Strings(got)
	// The list is the program's, kept beside it: operators and test/etc
	// read it there.
	testproc.Golden(t, "../../cmd/octavia-health-manager/testdata/metric-names.golden", got)
}

// blockingSink is a statistics driver that never returns until released.
type blockingSink struct {
	release chan struct{}
	calls   chan struct{}
}

func (b *blockingSink) Update(ctx context.Context, _ []statsdriver.ListenerStats, _ bool) error {
	select {
	case b.calls <- struct{}{}:
	default:
	}
	select {
	case <-b.release:
	case <-ctx.Done():
	}
	return nil
}

func TestBlockedStatsSinkDoesNotDelayHealth(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewDB(t)
	conn := managertest.SeedOneLB(t, ctx, url)
	conf := testproc.WriteFile(t, "octavia.conf", []byte(fmt.Sprintf(`[database]
connection = %s
[health_manager]
heartbeat_key = k
failover_driver = noop
bind_ip = 127.0.0.1
bind_port = 0
metrics_bind =
queue_size = 64
health_batch_wait_ms = 5
[controller_worker]
statistics_drivers = stats_logger
compute_driver = compute_noop_driver
`, url)))
	sink := &blockingSink{release: make(chan struct{}), calls: make(chan struct{}, 1)}
	r := managertest.Start(t, managertest.Options{Files: []string{conf}, ExtraStats: []statsdriver.Driver{sink}})
	d := r.Manager
	udp, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(d.ListenAddr()))
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	kr, _ := heartbeat.NewKeyring(heartbeat.KeyringConfig{Keys: []string{"k"}})
	udp.Write(kr.SealMessage(managertest.TypicalHeartbeat("amp-1", "UP")))
	<-sink.calls // the statistics path is now stuck in the sink

	// Far more heartbeats than the stats queue holds: health keeps up.
	for i := range 200 {
		status := "UP"
		if i == 199 {
			status = "DOWN"
		}
		udp.Write(kr.SealMessage(managertest.TypicalHeartbeat("amp-1", status)))
		time.Sleep(time.Millisecond)
	}
	testproc.WaitFor(t, "the last heartbeat's member status", func() bool {
		var s string
		conn.QueryRow(ctx, `SELECT operating_status FROM member WHERE id = 'm-1'`).Scan(&s)
		return s == "ERROR"
	})
	if dropped := testutilValue(t, d, `octavia_hm_queue_dropped_total{queue="stats",reason="queue_full"}`); dropped == 0 {
		t.Error("the stats queue never filled, so the test proved nothing")
	}
	close(sink.release)
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
}

// testutilValue reads one series from the daemon's registry.
func testutilValue(t *testing.T, d *manager.Manager, series string) float64 {
	t.Helper()
	families, err := d.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			name := f.GetName()
			if len(m.GetLabel()) > 0 {
				var parts []string
				for _, l := range m.GetLabel() {
					parts = append(parts, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
				}
				name += "{" + strings.Join(parts, ",") + "}"
			}
			if name == series {
				if c := m.GetCounter(); c != nil {
					return c.GetValue()
				}
				return m.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("no series %s", series)
	return 0
}
