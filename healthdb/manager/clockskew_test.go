package manager_test

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/octavia-vpp/health/healthdb/manager/managertest"
	"github.com/octavia-vpp/health/heartbeat"
	"github.com/octavia-vpp/health/internal/testproc"
	"github.com/octavia-vpp/health/test/pgtest"
)

// A health manager whose clock is two minutes ahead of its database's
// reports the skew on /metrics and in a warning, and writes last_update on
// the database's clock.
func TestServeReportsClockSkew(t *testing.T) {
	ctx := context.Background()
	srv := pgtest.NewServer(t, pgtest.ClockOffset(-120*time.Second))
	conn := managertest.SeedOneLB(t, ctx, srv.URL())
	conf := testproc.WriteFile(t, "octavia.conf", []byte(fmt.Sprintf(`[database]
connection = %s
[health_manager]
heartbeat_key = k
failover_driver = noop
bind_ip = 127.0.0.1
bind_port = 0
metrics_bind = 127.0.0.1:0
health_batch_wait_ms = 5
[controller_worker]
compute_driver = compute_noop_driver
`, srv.URL())))
	var logs testproc.Output
	r := managertest.Start(t, managertest.Options{Files: []string{conf}, LogOutput: &logs})
	d := r.Manager

	testproc.WaitFor(t, "the clock skew warning", func() bool {
		return strings.Contains(logs.String(), `level=WARN msg="this health manager's clock differs from the database server's`)
	})
	skew, err := strconv.ParseFloat(testproc.MetricValue(testproc.Scrape(t, d.MetricsAddr().String()), "octavia_hm_clock_skew_seconds"), 64)
	if err != nil || skew > -118 || skew < -122 {
		t.Errorf("octavia_hm_clock_skew_seconds %v (%v); want -120", skew, err)
	}

	udp, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(d.ListenAddr()))
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	kr, _ := heartbeat.NewKeyring(heartbeat.KeyringConfig{Keys: []string{"k"}})
	if _, err := udp.Write(kr.SealMessage(managertest.TypicalHeartbeat("amp-1", "UP"))); err != nil {
		t.Fatal(err)
	}
	var behind time.Duration
	testproc.WaitFor(t, "amp-1's health row", func() bool {
		var age *time.Duration
		_ = conn.QueryRow(ctx, `SELECT (now() AT TIME ZONE 'UTC') - last_update FROM amphora_health WHERE amphora_id = 'amp-1'`).Scan(&age)
		if age != nil {
			behind = *age
		}
		return age != nil
	})
	if behind < 0 || behind > time.Second {
		t.Errorf("last_update is %v before the database's now(); want it on the database's clock", behind)
	}
	if err := r.Stop(); err != nil {
		t.Errorf("daemon exited with %v", err)
	}
}
