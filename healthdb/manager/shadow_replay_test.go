package manager

import (
	"context"
	"encoding/base64"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/octavia-vpp/health/healthdb/memstore"
	"github.com/octavia-vpp/health/healthdb/shadow"
	"github.com/octavia-vpp/health/heartbeat"
	"github.com/octavia-vpp/health/internal/octaviaconf"
	"github.com/octavia-vpp/health/statsdriver"
)

// A disagreement file is a capture replay applies: each kept datagram
// becomes a regression case.
func TestReplayReadsTheDisagreementFile(t *testing.T) {
	kr, err := heartbeat.NewKeyring(heartbeat.KeyringConfig{Keys: []string{"k"}})
	if err != nil {
		t.Fatal(err)
	}
	msg := &heartbeat.Message{AmphoraID: "amp-1", Seq: 1, HasSeq: true, Version: 3, HasVersion: true,
		Listeners: []heartbeat.Listener{{ID: "l-1", Status: "OPEN", HasStats: true}},
		Pools:     []heartbeat.Pool{{Key: "pool-1:l-1", Status: "UP", Members: []heartbeat.Member{{ID: "m-1", Status: "UP"}}}}}
	path := filepath.Join(t.TempDir(), "d.jsonl")
	l, err := shadow.OpenLog(path, shadow.MaxKept)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Add(shadow.Disagreement{Kind: shadow.KindStatus, Entity: "member", ID: "m-1", AmphoraID: "amp-1",
		Ours: "ONLINE", Octavia: "OFFLINE", B64: base64.StdEncoding.EncodeToString(kr.SealMessage(msg)), SrcAddr: "127.0.0.1"}); err != nil {
		t.Fatal(err)
	}

	store := memstore.New(nil)
	store.PutLoadBalancer(memstore.LoadBalancer{ID: "lb-1", ProvisioningStatus: "ACTIVE", OperatingStatus: "OFFLINE", Enabled: true})
	store.PutAmphora(memstore.Amphora{ID: "amp-1", LoadBalancerID: "lb-1", Status: "ALLOCATED"})
	store.PutPool(memstore.Pool{ID: "pool-1", LoadBalancerID: "lb-1", OperatingStatus: "OFFLINE"})
	store.PutMember(memstore.Member{ID: "m-1", PoolID: "pool-1", OperatingStatus: "OFFLINE", Enabled: true})
	store.PutListener(memstore.Listener{ID: "l-1", LoadBalancerID: "lb-1", Protocol: "HTTP", OperatingStatus: "OFFLINE", Enabled: true})

	cfg := octaviaconf.Defaults()
	cfg.ControllerWorker.ComputeDriver = "compute_noop_driver"
	cfg.ControllerWorker.StatisticsDrivers = nil
	log := slog.New(slog.DiscardHandler)
	updater, err := newReplayUpdater(cfg, store, log)
	if err != nil {
		t.Fatal(err)
	}
	stats, err := newStats(cfg, nil, nil, statsdriver.PostgreSQL, log, prometheus.NewRegistry(), nil, true)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sum, err := (&Replayer{Keys: kr, Updater: updater, Stats: stats, Log: log}).Run(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	if sum.accepted != 1 {
		t.Errorf("replay accepted %d datagrams of the file", sum.accepted)
	}
	if s, _, _ := store.OperatingStatus(memstore.TableMember, "m-1"); s != "ONLINE" {
		t.Errorf("member m-1 %s after replay", s)
	}
}
