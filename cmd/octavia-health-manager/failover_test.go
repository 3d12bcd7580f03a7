package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/octavia-vpp/health/healthdb/failover/failovertest"
	"github.com/octavia-vpp/health/heartbeat"
	"github.com/octavia-vpp/health/internal/pgtest"
	"github.com/octavia-vpp/health/internal/testproc"
)

// With failover_driver octavia_api (the default), serve refuses to start
// unless [service_auth] can get a token, and names what is missing.
func TestServeRefusesIncompleteServiceAuth(t *testing.T) {
	tests := []struct {
		name     string
		conf     string
		want     []string // substrings of the error
		password bool     // the conf holds the password "hunter2", which must not be shown
	}{
		{"nothing set, default drivers", "",
			[]string{"[service_auth] lacks auth_url, username, password, project_name or project_id, user_domain_name or user_domain_id",
				"failover_driver = octavia_api", "compute_driver = compute_nova_driver", "refusing to start"}, false},
		{"password missing", "[service_auth]\nauth_url = http://keystone/v3\nusername = octavia\nproject_name = service\n" +
			"user_domain_name = Default\nproject_domain_name = Default\n",
			[]string{"[service_auth] lacks password,", "failover_driver = octavia_api"}, false},
		{"project domain missing", "[service_auth]\nauth_url = http://keystone/v3\nusername = octavia\npassword = hunter2\n" +
			"project_name = service\nuser_domain_name = Default\n",
			[]string{"lacks project_domain_name or project_domain_id,"}, true},
		{"noop failover, nova compute", "[health_manager]\nfailover_driver = noop\n",
			[]string{"[service_auth] lacks auth_url", "compute_driver = compute_nova_driver"}, false},
		{"unknown failover driver", "[health_manager]\nfailover_driver = amphora\n",
			[]string{`failover_driver "amphora" is not supported`}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conf := writeFile(t, "octavia.conf", []byte("[DEFAULT]\n[health_manager]\nheartbeat_key = k\n"+
				"[database]\nconnection = postgresql://nobody@127.0.0.1:1/none\n"))
			extra := writeFile(t, "extra.conf", []byte(tt.conf))
			err := runDaemon(context.Background(), daemonOptions{files: []string{conf, extra}, logOutput: io.Discard})
			if err == nil {
				t.Fatal("serve started")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q shows the password", err)
			}
		})
	}

	// The binary exits with the usage code and says why on stderr.
	conf := writeFile(t, "octavia.conf", []byte("[health_manager]\nheartbeat_key = k\n"))
	r := runBinary(t, nil, "--config-file", conf, "serve")
	if r.code != exitUsage || !strings.Contains(r.stderr, "[service_auth] lacks auth_url") {
		t.Errorf("exit %d, stderr %q; want %d and the missing options", r.code, r.stderr, exitUsage)
	}
}

// The daemon fails over a stale amphora through a (fake) Octavia API
// after the start-up grace, and leaves the one that heartbeats alone.
func TestServeFailsOverStaleAmphora(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewDB(t)
	conn := seedOneLB(t, ctx, url)
	// amp-2 last heartbeated ten minutes ago; amp-1 heartbeats below.
	if _, err := conn.Exec(ctx, `INSERT INTO amphora_health (amphora_id, last_update, busy) VALUES
		('amp-2', $1::timestamp, false), ('amp-1', $2::timestamp, false)`,
		time.Now().UTC().Add(-10*time.Minute), time.Now().UTC()); err != nil {
		t.Fatal(err)
	}
	fake := failovertest.New(t)
	conf := writeFile(t, "octavia.conf", []byte(fmt.Sprintf(`[database]
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
	r := startDaemon(t, daemonOptions{files: []string{conf}, logOutput: &logs})
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
			udp.Write(kr.SealMessage(typicalHeartbeat("amp-1", "UP")))
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	waitFor(t, "amp-2 failed over", func() bool { return fake.Failovers()["amp-2"] == 1 })
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
	if err := r.stop(); err != nil {
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
	conn := seedOneLB(t, ctx, url)
	if _, err := conn.Exec(ctx, `INSERT INTO amphora_health (amphora_id, last_update, busy) VALUES
		('amp-1', $1::timestamp, false), ('amp-2', $1::timestamp, false)`, time.Now().UTC().Add(-10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	fake := failovertest.New(t)
	conf := writeFile(t, "octavia.conf", []byte(fmt.Sprintf(`[database]
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
	r := startDaemon(t, daemonOptions{files: []string{conf}})
	d := r.Manager
	waitFor(t, "two suppressed checks", func() bool {
		return testutilValue(t, d, `octavia_hm_health_checks_suppressed_total{reason="no_heartbeats"}`) >= 2
	})
	if got := fake.Failovers(); len(got) != 0 {
		t.Errorf("failover calls %v from a manager that hears nothing", got)
	}
	if v := testutilValue(t, d, `octavia_hm_failover_suppressed`); v != 1 {
		t.Errorf("octavia_hm_failover_suppressed = %v; want 1", v)
	}
	if err := r.stop(); err != nil {
		t.Errorf("daemon exit: %v", err)
	}
}
