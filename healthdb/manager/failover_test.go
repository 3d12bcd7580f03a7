package manager_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/octavia-vpp/health/healthdb/failover/failovertest"
	"github.com/octavia-vpp/health/healthdb/manager/managertest"
	"github.com/octavia-vpp/health/heartbeat"
	"github.com/octavia-vpp/health/internal/testproc"
	"github.com/octavia-vpp/health/test/pgtest"
)

// With failover_driver octavia_api (the default), serve refuses to start
// unless [service_auth] can get a token, and names what is missing.
func TestServeFailsOverStaleAmphora(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewDB(t)
	conn := managertest.SeedOneLB(t, ctx, url)
	// amp-2 last heartbeated ten minutes ago; amp-1 heartbeats below.
	if _, err := conn.Exec(ctx, `INSERT INTO amphora_health (amphora_id, last_update, busy) VALUES
		('amp-2', $1::timestamp, false), ('amp-1', $2::timestamp, false)`,
		time.Now().UTC().Add(-10*time.Minute), time.Now().UTC()); err != nil {
		t.Fatal(err)
	}
	fake := failovertest.New(t)
	conf := testproc.WriteFile(t, "octavia.conf", []byte(fmt.Sprintf(`[database]
connection = %s
[health_manager]
heartbeat_key = k
bind_ip = 127.0.0.1
bind_port = 0
metrics_bind =
health_batch_wait_ms = 5
heartbeat_timeout = 1
health_check_interval = 1
%s[nova]
region_name = %s
`, url, fake.ServiceAuthSection(), failovertest.Region)))
	var logs testproc.Output
	r := managertest.Start(t, managertest.Options{Files: []string{conf}, LogOutput: &logs})
	d := r.Manager
	udp, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(d.ListenAddr()))
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	kr, _ := heartbeat.NewKeyring(heartbeat.KeyringConfig{Keys: []string{"k"}})
	stop := make(chan struct{})
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for {
			udp.Write(kr.SealMessage(managertest.TypicalHeartbeat("amp-1", "UP")))
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	testproc.WaitFor(t, "amp-2 failed over", func() bool { return fake.Failovers()["amp-2"] == 1 })
	// One more health check (health_check_interval = 1): nothing else is
	// called.
	time.Sleep(1200 * time.Millisecond)
	close(stop)
	<-sent
	if got := fake.Failovers(); len(got) != 1 || got["amp-2"] != 1 {
		t.Errorf("failover calls %v; want amp-2 once and never amp-1", got)
	}
	if v := testutilValue(t, d, `octavia_hm_failovers_total{result="accepted"}`); v != 1 {
		t.Errorf("accepted failovers metric %v; want 1", v)
	}
	var busy bool
	if err := conn.QueryRow(ctx, `SELECT busy FROM amphora_health WHERE amphora_id = 'amp-2'`).Scan(&busy); err != nil || !busy {
		t.Errorf("amp-2 busy = %v (%v); want claimed", busy, err)
	}
	if err := r.Stop(); err != nil {
		t.Errorf("daemon exit: %v", err)
	}
	if strings.Contains(logs.String(), failovertest.Password) {
		t.Error("the log shows the service password")
	}
}

// A daemon that hears no heartbeat at all while amphorae exist accuses
// none of them: it counts suppressed checks instead.
func TestServeDeafManagerFailsNothingOver(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewDB(t)
	conn := managertest.SeedOneLB(t, ctx, url)
	if _, err := conn.Exec(ctx, `INSERT INTO amphora_health (amphora_id, last_update, busy) VALUES
		('amp-1', $1::timestamp, false), ('amp-2', $1::timestamp, false)`, time.Now().UTC().Add(-10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	fake := failovertest.New(t)
	conf := testproc.WriteFile(t, "octavia.conf", []byte(fmt.Sprintf(`[database]
connection = %s
[health_manager]
heartbeat_key = k
bind_ip = 127.0.0.1
bind_port = 0
metrics_bind =
heartbeat_timeout = 1
health_check_interval = 1
[controller_worker]
compute_driver = compute_noop_driver
%s`, url, fake.ServiceAuthSection())))
	r := managertest.Start(t, managertest.Options{Files: []string{conf}})
	d := r.Manager
	testproc.WaitFor(t, "two suppressed checks", func() bool {
		return testutilValue(t, d, `octavia_hm_health_checks_suppressed_total{reason="no_heartbeats"}`) >= 2
	})
	if got := fake.Failovers(); len(got) != 0 {
		t.Errorf("failover calls %v from a manager that hears nothing", got)
	}
	if v := testutilValue(t, d, `octavia_hm_failover_suppressed`); v != 1 {
		t.Errorf("octavia_hm_failover_suppressed = %v; want 1", v)
	}
	if err := r.Stop(); err != nil {
		t.Errorf("daemon exit: %v", err)
	}
}
