//go:build browser

// Package browser drives Debian's headless Chromium against the status
// page of a health manager running in this test's process, on a seeded
// throwaway database. Run it with `make browser` (or `make test` with
// CI=true); the screenshot lands in test/browser/out/.
package browser

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/octavia-vpp/health/healthdb"
	"github.com/octavia-vpp/health/healthdb/failover"
	"github.com/octavia-vpp/health/healthdb/manager/statuspage"
	"github.com/octavia-vpp/health/healthdb/pgstore"
	"github.com/octavia-vpp/health/heartbeat"
	"github.com/octavia-vpp/health/heartbeat/udp"
	"github.com/octavia-vpp/health/internal/boundq"
	"github.com/octavia-vpp/health/test/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const heartbeatKey = "browser-test-key"

// The seeded fleet: two load balancers whose amphorae heartbeat during the
// test, and two whose amphorae went silent ten minutes ago.
const (
	lbShop, ampShop, lisShop, poolShop = "5b0c61a2-0f3e-4c57-9f43-2f6f1d7a0a01", "3e9a7c10-51d2-4c8e-9a41-6b0f2d8e1c01", "11c0ffee-aaaa-4bbb-8ccc-000000000001", "22c0ffee-aaaa-4bbb-8ccc-000000000001"
	memWeb1, memWeb2                   = "33c0ffee-aaaa-4bbb-8ccc-000000000001", "33c0ffee-aaaa-4bbb-8ccc-000000000002"
	lbAPI, ampAPI, lisAPI, poolAPI     = "9d2e47b8-3a1c-4f60-8e25-c1d0b9a8f702", "8b14f6e2-07aa-4f3b-b2c9-d45e1a9f3c02", "11c0ffee-aaaa-4bbb-8ccc-000000000002", "22c0ffee-aaaa-4bbb-8ccc-000000000002"
	memAPI                             = "33c0ffee-aaaa-4bbb-8ccc-000000000003"
	lbLegacy, ampLegacy                = "e4a81f63-c2b7-4d05-9c3e-58f7a6b4d903", "c72d0e95-9b31-4e6a-8f07-1a2b3c4d5e03"
	lbBatch, ampBatch                  = "17c6d9f0-8e4b-4a72-b1d3-0e2f4a6c8b04", "f05b8a37-6c4d-4d19-a3e2-7f8e9d0c1b04"
)

func seed(t *testing.T, db *pgxpool.Pool) {
	t.Helper()
	silent := time.Now().UTC().Add(-10 * time.Minute)
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO load_balancer (id, name, provisioning_status, operating_status, enabled) VALUES
			($1, 'shop-frontend', 'ACTIVE', 'ONLINE', true), ($2, 'api-gateway', 'ACTIVE', 'OFFLINE', true),
			($3, 'legacy-reports', 'ACTIVE', 'ONLINE', true), ($4, 'batch-jobs', 'ACTIVE', 'ONLINE', true)`,
			[]any{lbShop, lbAPI, lbLegacy, lbBatch}},
		{`INSERT INTO amphora (id, load_balancer_id, status, role, lb_network_ip, cert_busy) VALUES
			($1, $2, 'ALLOCATED', 'STANDALONE', '198.51.100.11', false), ($3, $4, 'ALLOCATED', 'STANDALONE', '198.51.100.12', false),
			($5, $6, 'ALLOCATED', 'STANDALONE', '198.51.100.13', false), ($7, $8, 'ALLOCATED', 'STANDALONE', '198.51.100.14', false)`,
			[]any{ampShop, lbShop, ampAPI, lbAPI, ampLegacy, lbLegacy, ampBatch, lbBatch}},
		{`INSERT INTO amphora_health (amphora_id, last_update, busy) VALUES ($1, $3, false), ($2, $3, false)`,
			[]any{ampLegacy, ampBatch, silent}},
		{`INSERT INTO pool (id, load_balancer_id, name, protocol, lb_algorithm, operating_status, enabled, provisioning_status) VALUES
			($1, $2, 'frontend-pool', 'HTTP', 'ROUND_ROBIN', 'ONLINE', true, 'ACTIVE'),
			($3, $4, 'api-pool', 'HTTP', 'LEAST_CONNECTIONS', 'OFFLINE', true, 'ACTIVE')`,
			[]any{poolShop, lbShop, poolAPI, lbAPI}},
		{`INSERT INTO listener (id, load_balancer_id, name, protocol, protocol_port, provisioning_status, operating_status, enabled, default_pool_id) VALUES
			($1, $2, 'frontend-http', 'HTTP', 80, 'ACTIVE', 'ONLINE', true, $3),
			($4, $5, 'api-https', 'HTTP', 8443, 'ACTIVE', 'OFFLINE', true, $6)`,
			[]any{lisShop, lbShop, poolShop, lisAPI, lbAPI, poolAPI}},
		{`INSERT INTO member (id, pool_id, name, ip_address, protocol_port, operating_status, enabled, provisioning_status, backup) VALUES
			($1, $2, 'web-1', '10.0.0.11', 8080, 'ONLINE', true, 'ACTIVE', false),
			($3, $2, 'web-2', '10.0.0.12', 8080, 'ONLINE', true, 'ACTIVE', false),
			($4, $5, 'api-1', '10.0.1.21', 9000, 'OFFLINE', true, 'ACTIVE', false)`,
			[]any{memWeb1, poolShop, memWeb2, memAPI, poolAPI}},
	} {
		if _, err := db.Exec(context.Background(), q.sql, q.args...); err != nil {
			t.Fatalf("seed: %v\n%s", err, q.sql)
		}
	}
}

// healthManager is the daemon's heartbeat path assembled from its
// packages: receiver -> queue -> updater, the stale-amphora watcher with
// the noop failover driver, and the status page on a loopback port.
type healthManager struct {
	receiver *udp.Receiver
	watcher  *healthdb.Watcher
	pageURL  string
}

func startHealthManager(t *testing.T, db *pgxpool.Pool) *healthManager {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	const timeout = time.Minute
	reg := prometheus.NewRegistry()
	page := statuspage.New(statuspage.Config{Pool: db, HeartbeatTimeout: timeout, DryRun: true,
		FailoverThreshold: 3, RefreshEvery: time.Second, Logger: log})
	kr, err := heartbeat.NewKeyring(heartbeat.KeyringConfig{Keys: []string{heartbeatKey}})
	if err != nil {
		t.Fatal(err)
	}
	updater, err := healthdb.NewUpdater(healthdb.UpdaterConfig{
		Store: pgstore.New(db), Deleter: noCompute{}, Rules: healthdb.Rules{HeartbeatInterval: 10 * time.Second},
		BatchDelay: 5 * time.Millisecond, Logger: log, Metrics: healthdb.NewUpdaterMetrics(reg, timeout),
	})
	if err != nil {
		t.Fatal(err)
	}
	watcher, err := healthdb.NewWatcher(healthdb.WatcherConfig{
		Store: pgstore.New(db), Driver: page.WrapDriver(failover.Noop{Log: log}),
		HeartbeatTimeout: timeout, HealthCheckInterval: 3 * time.Second,
		FailoverThreshold: 3, FailoverThresholdSet: true, Logger: log, Metrics: healthdb.NewWatcherMetrics(page.Watch(reg)),
	})
	if err != nil {
		t.Fatal(err)
	}
	queue := boundq.New[*heartbeat.Message](1024)
	receiver, err := udp.NewReceiver(udp.ReceiverConfig{
		Addr: netip.MustParseAddrPort("127.0.0.1:0"), Sockets: 1, Workers: 1,
		Keys:    func() *heartbeat.Keyring { return kr },
		Deliver: func(m *heartbeat.Message) { queue.Put(m) },
		Metrics: udp.NewReceiverMetrics(page.Watch(reg)), Logger: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	page.Register(mux)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}

	done := make(chan struct{}, 3)
	go func() { receiver.Run(ctx); done <- struct{}{} }()
	go func() { updater.Run(ctx, queue.C(), page.RecordBatch); done <- struct{}{} }()
	go func() { _ = srv.Serve(ln); done <- struct{}{} }()
	t.Cleanup(func() {
		cancel()
		_ = srv.Close()
		watcher.Wait()
		for range 3 {
			<-done
		}
	})
	return &healthManager{receiver: receiver, watcher: watcher, pageURL: "http://" + ln.Addr().String() + "/"}
}

type noCompute struct{}

func (noCompute) DeleteCompute(context.Context, string) error { return nil }

// sendHeartbeats sends heartbeats like two amphorae would: shop-frontend with
// web-2 down, api-gateway all up; plus a datagram with a bad MAC.
func (hm *healthManager) sendHeartbeats(rounds int) error {
	kr, _ := heartbeat.NewKeyring(heartbeat.KeyringConfig{Keys: []string{heartbeatKey}})
	bad, _ := heartbeat.NewKeyring(heartbeat.KeyringConfig{Keys: []string{"not-the-key"}})
	conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(hm.receiver.Addr()))
	if err != nil {
		return err
	}
	defer conn.Close()
	msg := func(amp, listener, pool string, members map[string]string) *heartbeat.Message {
		m := &heartbeat.Message{AmphoraID: amp, Version: 3, HasVersion: true, Seq: 1, HasSeq: true,
			Listeners: []heartbeat.Listener{{ID: listener, Status: "OPEN"}},
			Pools:     []heartbeat.Pool{{Key: pool + ":" + listener, Status: "UP"}}}
		for id, status := range members {
			m.Pools[0].Members = append(m.Pools[0].Members, heartbeat.Member{ID: id, Status: status})
		}
		return m
	}
	shop := msg(ampShop, lisShop, poolShop, map[string]string{memWeb1: "UP", memWeb2: "DOWN"})
	api := msg(ampAPI, lisAPI, poolAPI, map[string]string{memAPI: "UP"})
	for i := range rounds {
		for _, d := range [][]byte{kr.SealMessage(shop), kr.SealMessage(api)} {
			if _, err := conn.Write(d); err != nil {
				return err
			}
		}
		if i%10 == 0 {
			_, _ = conn.Write(bad.SealMessage(api))
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

func TestStatusPageInChromium(t *testing.T) {
	db := pgtest.NewPool(t)
	seed(t, db)
	hm := startHealthManager(t, db)
	if err := hm.sendHeartbeats(20); err != nil {
		t.Fatal(err)
	}
	// One health check: the two silent amphorae are claimed and "failed
	// over" by the noop driver (below the threshold of 3).
	res, err := hm.watcher.Cycle(context.Background())
	if err != nil || res.Dispatched != 2 {
		t.Fatalf("health check: %+v %v", res, err)
	}
	hm.watcher.Wait()

	wd := startWebDriver(t)
	wd.navigate(hm.pageURL)
	wd.waitFor("the page", func() bool { return wd.text("#card-amphorae .value") == "4" })
	// Heartbeats keep coming while the page refreshes itself, so the rate
	// becomes known.
	sent := make(chan error, 1)
	go func() { sent <- hm.sendHeartbeats(60) }()
	defer func() {
		if err := <-sent; err != nil {
			t.Error(err)
		}
	}()
	var firstTaken string
	wd.script(`return document.getElementById("summary").dataset.taken;`, &firstTaken)
	wd.waitFor("an automatic refresh with a heartbeat rate", func() bool {
		var taken string
		wd.script(`return document.getElementById("summary").dataset.taken;`, &taken)
		return taken != firstTaken && wd.text("#card-rate .value") != "–"
	})

	for _, c := range []struct{ selector, want string }{
		{"#card-amphorae .value", "4"},
		{"#card-fresh .value", "2"},
		{"#card-stale .value", "2"},
		{"#card-rejected .value", ""}, // non-zero, checked below
		{"#card-failovers .value", "2"},
		{"#card-failovers .sub", "dry_run 2"},
		{"#card-breaker .value", "closed"},
		{"#card-breaker .sub", "threshold 3"},
		{"#dry-run", "would"},
		{"#transitions", "web-2"},
		{"#transitions", "ONLINE → ERROR"},
		{"#transitions", "api-gateway"},
		{"#failovers", "would fail over (dry run)"},
		{"#failovers", "legacy-reports"},
		{"#lbs", "shop-frontend"},
		{"#lbs", "frontend-http"},
		{"#lbs", "web-2"},
	} {
		if got := wd.text(c.selector); !strings.Contains(got, c.want) {
			t.Errorf("%s: %q does not contain %q", c.selector, got, c.want)
		}
	}
	if got := wd.text("#card-rejected .value"); got == "0" {
		t.Errorf("rejections: %q, want the bad-MAC datagrams counted", got)
	}
	if got := wd.text("#card-rate .value"); got == "0.0" {
		t.Errorf("heartbeats/s: %q, want a positive rate", got)
	}

	// The tree: shop-frontend is DEGRADED (web-2 in ERROR) and listed first.
	var tree struct {
		First, ShopStatus, Web2Status, APIStatus string
	}
	wd.script(`
		const lb = id => document.querySelector('#lbs .lb[data-id="' + id + '"]');
		const member = (lbEl, name) => [...lbEl.querySelectorAll("li.member")].find(li => li.innerText.includes(name));
		return {
			First: document.querySelector("#lbs .lb .lb-name").innerText,
			ShopStatus: lb(arguments[0]).querySelector(".lb-head .badge").innerText,
			Web2Status: member(lb(arguments[0]), "web-2").querySelector(".badge").innerText,
			APIStatus: lb(arguments[1]).querySelector(".lb-head .badge").innerText,
		};`, &tree, lbShop, lbAPI)
	if tree.First != "shop-frontend" || tree.ShopStatus != "DEGRADED" || tree.Web2Status != "ERROR" || tree.APIStatus != "ONLINE" {
		t.Errorf("load balancer tree: %+v", tree)
	}

	// The plot: one bar per age bucket, fresh ones left of the timeout
	// line, stale ones right of it.
	var plot struct{ Bars, Fresh, Stale int }
	wd.script(`
		const bars = [...document.querySelectorAll("#age-plot g.bar")];
		const drawn = g => Number(g.querySelector("rect").getAttribute("height")) > 0;
		return {
			Bars: bars.length,
			Fresh: bars.filter(g => drawn(g) && !g.classList.contains("stale")).length,
			Stale: bars.filter(g => drawn(g) && g.classList.contains("stale")).length,
		};`, &plot)
	if plot.Bars != 21 || plot.Fresh < 1 || plot.Stale != 1 {
		t.Errorf("heartbeat age plot: %+v", plot)
	}

	shot := screenshotPath(t)
	wd.screenshot(shot)
	t.Logf("screenshot: %s", shot)

	// The filter hides the load balancers that do not match, and survives
	// an automatic refresh.
	wd.typeInto("#filter", "legacy")
	visible := func() []string {
		var names []string
		wd.script(`return [...document.querySelectorAll("#lbs .lb")].filter(e => e.offsetParent !== null)
			.map(e => e.querySelector(".lb-name").innerText);`, &names)
		return names
	}
	if got := visible(); fmt.Sprint(got) != "[legacy-reports]" {
		t.Errorf("filtered on legacy: %v visible", got)
	}
	if got := wd.text("#filter-count"); got != "1 of 4 shown" {
		t.Errorf("filter count %q", got)
	}
	var taken string
	wd.script(`return document.getElementById("summary").dataset.taken;`, &taken)
	wd.waitFor("a refresh under the filter", func() bool {
		var now string
		wd.script(`return document.getElementById("summary").dataset.taken;`, &now)
		return now != taken
	})
	if got := visible(); fmt.Sprint(got) != "[legacy-reports]" {
		t.Errorf("after a refresh, filtered on legacy: %v visible", got)
	}
	wd.typeInto("#filter", "\ue003\ue003\ue003\ue003\ue003\ue003error") // backspaces, then a status
	if got := visible(); fmt.Sprint(got) != "[shop-frontend]" {
		t.Errorf("filtered on error: %v visible", got)
	}
}

// screenshotPath is test/browser/out/status-page.png (gitignored).
func screenshotPath(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("out")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "status-page.png")
}
