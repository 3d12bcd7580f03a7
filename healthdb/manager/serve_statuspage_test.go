package manager_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/octavia-vpp/health/healthdb/manager/managertest"
	"github.com/octavia-vpp/health/healthdb/manager/statuspage"
	"github.com/octavia-vpp/health/heartbeat"
	"github.com/octavia-vpp/health/internal/testproc"
	"github.com/octavia-vpp/health/test/pgtest"
)

// The daemon serves the status page on metrics_bind, fed by its own
// metrics and the transitions its batches wrote.
func TestServeStatusPage(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewDB(t)
	managertest.SeedOneLB(t, ctx, url)
	conf := testproc.WriteFile(t, "octavia.conf", []byte(fmt.Sprintf(`[database]
connection = %s
[health_manager]
heartbeat_key = page-key
failover_driver = noop
bind_ip = 127.0.0.1
bind_port = 0
metrics_bind = 127.0.0.1:0
health_batch_wait_ms = 5
[controller_worker]
compute_driver = compute_noop_driver
statistics_drivers = stats_db
`, url)))
	d := managertest.Start(t, managertest.Options{Files: []string{conf}}).Manager
	udp, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(d.ListenAddr()))
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	kr, _ := heartbeat.NewKeyring(heartbeat.KeyringConfig{Keys: []string{"page-key"}})
	if _, err := udp.Write(kr.SealMessage(managertest.TypicalHeartbeat("amp-1", "DOWN"))); err != nil {
		t.Fatal(err)
	}

	get := func(path string) string {
		resp, err := http.Get("http://" + d.MetricsAddr().String() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, body)
		}
		return string(body)
	}
	// The page keeps a snapshot for 50 times as long as its database
	// query took (at least a second); polling it while the batch ran
	// built one without the transition, which a loaded machine's slow
	// first query kept for 20 s and more. The one heartbeat makes one
	// batch; the page is read, for the first time, once it has ended.
	testproc.WaitFor(t, "the heartbeat's health batch", func() bool { return d.BatchesDone() >= 1 })
	if v := testutilValue(t, d, `octavia_hm_health_batch_errors_total`); v != 0 {
		t.Fatalf("%v health batches failed", v)
	}
	var s statuspage.Snapshot
	if err := json.Unmarshal([]byte(get("/status.json")), &s); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, tr := range s.Transitions {
		found = found || tr.Entity == "member" && tr.ID == "m-1" && tr.To == "ERROR"
	}
	if !found {
		t.Errorf("the member's transition is not on the page: %+v", s.Transitions)
	}
	if s.Fleet.Amphorae != 1 || s.Fleet.Fresh != 1 || s.Fleet.Accepted != 1 || !s.Fleet.DryRun || len(s.LBs) != 1 {
		t.Errorf("fleet %+v, %d load balancers", s.Fleet, len(s.LBs))
	}
	if page := get("/"); !strings.Contains(page, "Octavia health manager") || !strings.Contains(page, `data-id="lb-1"`) {
		t.Errorf("/ is not the status page:\n%s", page)
	}
	if !strings.Contains(get("/metrics"), "octavia_hm_heartbeats_accepted_total") {
		t.Error("/metrics moved")
	}
}
