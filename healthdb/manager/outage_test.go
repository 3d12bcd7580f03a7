package manager_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/octavia-vpp/health/healthdb/manager/managertest"
	"github.com/octavia-vpp/health/heartbeat"
	"github.com/octavia-vpp/health/internal/testproc"
	"github.com/octavia-vpp/health/test/pgtest"
)

// A database outage loses no statistics and needs no restart: V3 deltas
// sent while PostgreSQL is down are summed and written when it returns,
// and health updates resume by themselves.
func TestDatabaseOutage(t *testing.T) {
	ctx := context.Background()
	srv := pgtest.NewServer(t)
	seed := managertest.SeedOneLB(t, ctx, srv.URL())
	seed.Close(ctx)
	conf := testproc.WriteFile(t, "octavia.conf", []byte(fmt.Sprintf(`[database]
connection = %s
[health_manager]
heartbeat_key = k
failover_driver = noop
bind_ip = 127.0.0.1
bind_port = 0
metrics_bind =
health_batch_wait_ms = 5
stats_flush_interval_ms = 100
[controller_worker]
compute_driver = compute_noop_driver
`, srv.URL())))
	r := managertest.Start(t, managertest.Options{Files: []string{conf}})
	d := r.Manager
	udp, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(d.ListenAddr()))
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	kr, _ := heartbeat.NewKeyring(heartbeat.KeyringConfig{Keys: []string{"k"}})

	var sentRX, sentTX, sentTotal int64
	send := func(i int) {
		m := managertest.TypicalHeartbeat("amp-1", "UP")
		m.Seq = int64(i)
		m.Listeners[0].Stats = heartbeat.Stats{RX: int64(100 + i), TX: int64(7 * i), Conns: 3, TotConns: int64(i % 5), EReq: 0}
		sentRX += m.Listeners[0].Stats.RX
		sentTX += m.Listeners[0].Stats.TX
		sentTotal += m.Listeners[0].Stats.TotConns
		if _, err := udp.Write(kr.SealMessage(m)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	i := 0
	for ; i < 25; i++ {
		send(i)
	}
	srv.Stop()
	outage := time.Now()
	for ; time.Since(outage) < 2*time.Second; i++ {
		send(i)
	}
	if exited, err := r.Exited(); exited {
		t.Fatalf("the daemon exited during the outage: %v", err)
	}
	srv.Start()
	restarted := time.Now().UTC()
	for end := i + 25; i < end; i++ {
		send(i)
	}

	conn, err := pgx.Connect(ctx, srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var rx, tx, total int64
	testproc.WaitFor(t, "every delta written", func() bool {
		err := conn.QueryRow(ctx, `SELECT bytes_in, bytes_out, total_connections FROM listener_statistics
			WHERE listener_id = 'l-1' AND amphora_id = 'amp-1'`).Scan(&rx, &tx, &total)
		return err == nil && rx == sentRX && tx == sentTX && total == sentTotal
	})
	var last time.Time
	if err := conn.QueryRow(ctx, `SELECT last_update FROM amphora_health WHERE amphora_id = 'amp-1'`).Scan(&last); err != nil {
		t.Fatal(err)
	}
	if !last.After(restarted.Add(-time.Second)) {
		t.Errorf("health last written %v, before the database came back at %v", last, restarted)
	}
	t.Logf("%d heartbeats, %d bytes in summed exactly across a 2 s outage", i, rx)

	if err := r.Stop(); err != nil {
		t.Errorf("daemon exit: %v", err)
	}
}
