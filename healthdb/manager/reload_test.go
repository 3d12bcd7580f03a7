package manager_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"testing"

	"github.com/octavia-vpp/health/healthdb/manager/managertest"
	"github.com/octavia-vpp/health/heartbeat"
	"github.com/octavia-vpp/health/internal/testproc"
	"github.com/octavia-vpp/health/test/pgtest"
)

// A reload rotates keys in place, on the same socket: the new key is
// accepted from then on, the old one while it is listed as previous, and
// an invalid file changes nothing.
func TestReloadRotatesKeys(t *testing.T) {
	url := pgtest.NewDB(t)
	managertest.SeedOneLB(t, context.Background(), url)
	config := func(keys string) []byte {
		return []byte(fmt.Sprintf("[database]\nconnection = %s\n[health_manager]\n%s\nfailover_driver = noop\n"+
			"bind_ip = 127.0.0.1\nbind_port = 0\nhealth_batch_wait_ms = 5\n[controller_worker]\ncompute_driver = compute_noop_driver\n", url, keys))
	}
	conf := testproc.WriteFile(t, "octavia.conf", config("heartbeat_key = old"))
	reload := make(chan struct{})
	r := managertest.Start(t, managertest.Options{Files: []string{conf}, Reload: reload})
	udp, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(r.ListenAddr()))
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	send := func(key string) {
		t.Helper()
		kr, err := heartbeat.NewKeyring(heartbeat.KeyringConfig{Keys: []string{key}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := udp.Write(kr.SealMessage(managertest.TypicalHeartbeat("amp-1", "UP"))); err != nil {
			t.Fatal(err)
		}
	}
	accepted := func() float64 { return familySum(t, r, "octavia_hm_heartbeats_accepted_total", "") }
	badMAC := func() float64 { return familySum(t, r, "octavia_hm_heartbeats_rejected_total", "bad_mac") }
	expect := func(key string, accept bool) {
		t.Helper()
		a, b := accepted(), badMAC()
		send(key)
		if accept {
			testproc.WaitFor(t, key+" accepted", func() bool { return accepted() > a })
		} else {
			testproc.WaitFor(t, key+" refused", func() bool { return badMAC() > b })
		}
	}
	rewrite := func(text []byte) {
		t.Helper()
		if err := os.WriteFile(conf, text, 0o600); err != nil {
			t.Fatal(err)
		}
		// Run takes the second request only once the first reload is
		// done (the channel is unbuffered); the second reads the same file.
		reload <- struct{}{}
		reload <- struct{}{}
	}

	expect("old", true)
	expect("new", false)
	rewrite(config("heartbeat_key = new\nheartbeat_key_previous = old"))
	expect("new", true)
	expect("old", true)
	rewrite(config("heartbeat_key = \nheartbeat_key_previous = old")) // refused: keeps both keys
	expect("new", true)
	expect("old", true)
	rewrite(config("heartbeat_key = new"))
	expect("old", false)
	expect("new", true)
	// Each rewrite was read twice; the one without a primary key failed.
	if got := familySum(t, r, "octavia_hm_config_reloads_total", "success"); got != 4 {
		t.Errorf("octavia_hm_config_reloads_total{result=success} = %v, want 4", got)
	}
	if got := familySum(t, r, "octavia_hm_config_reloads_total", "failure"); got != 2 {
		t.Errorf("octavia_hm_config_reloads_total{result=failure} = %v, want 2", got)
	}
	// The pool's statistics are exported: batches acquired connections.
	if got := familyValue(t, r, "octavia_hm_db_pool_acquires_total"); got == 0 {
		t.Error("octavia_hm_db_pool_acquires_total is 0 after batches were written")
	}
	if got := familyValue(t, r, "octavia_hm_db_pool_max_conns"); got < 2 {
		t.Errorf("octavia_hm_db_pool_max_conns = %v, want at least 2", got)
	}
	if err := r.Stop(); err != nil {
		t.Errorf("manager exit: %v", err)
	}
}

// familySum adds up a counter family's series, those with a label of
// value labelValue when it is not empty; 0 when none exists yet.
func familySum(t *testing.T, r *managertest.Running, family, labelValue string) float64 {
	t.Helper()
	families, err := r.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, f := range families {
		if f.GetName() != family {
			continue
		}
		for _, m := range f.GetMetric() {
			match := labelValue == ""
			for _, l := range m.GetLabel() {
				match = match || l.GetValue() == labelValue
			}
			if match {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// familyValue is the value of an unlabelled counter or gauge; 0 when the
// family is absent.
func familyValue(t *testing.T, r *managertest.Running, family string) float64 {
	t.Helper()
	families, err := r.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == family && len(f.GetMetric()) == 1 {
			m := f.GetMetric()[0]
			return m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return 0
}
