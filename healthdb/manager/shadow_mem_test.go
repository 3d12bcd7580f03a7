package manager_test

import (
	"context"
	"encoding/base64"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/octavia-vpp/health/healthdb"
	"github.com/octavia-vpp/health/healthdb/manager/managertest"
	"github.com/octavia-vpp/health/healthdb/memstore"
	"github.com/octavia-vpp/health/healthdb/shadow"
	"github.com/octavia-vpp/health/heartbeat"
	"github.com/octavia-vpp/health/internal/testproc"
)

// writeRecorder stands in for the stores serve writes through: shadow mode
// must never call them.
type writeRecorder struct{ calls atomic.Int64 }

func (w *writeRecorder) LoadTopologies(context.Context, []string) (map[string]*healthdb.Topology, error) {
	w.calls.Add(1)
	return nil, nil
}
func (w *writeRecorder) Apply(context.Context, *healthdb.Writes) error { w.calls.Add(1); return nil }
func (w *writeRecorder) CandidatesExist(context.Context) (bool, error) {
	w.calls.Add(1)
	return true, nil
}
func (w *writeRecorder) ClaimStale(context.Context, healthdb.ClaimRequest) (healthdb.ClaimResult, error) {
	w.calls.Add(1)
	return healthdb.ClaimResult{}, nil
}
func (w *writeRecorder) Unclaim(context.Context, []string) error { w.calls.Add(1); return nil }
func (w *writeRecorder) LoadBalancerOfClaim(context.Context, string) (string, string, bool, error) {
	w.calls.Add(1)
	return "", "", false, nil
}
func (w *writeRecorder) TxStatus(context.Context, int64) (string, error) {
	w.calls.Add(1)
	return healthdb.TxAborted, nil
}

// octaviaSide applies heartbeats to the store as Octavia's own manager
// would: statuses and amphora_health through the updater, and the
// listener_statistics increments of its stats_db driver.
type octaviaSide struct {
	store   *memstore.Store
	updater *healthdb.Updater
	stats   map[string]healthdb.ListenerStatsRow
}

func newOctaviaSide(t *testing.T, store *memstore.Store) *octaviaSide {
	deleter, err := healthdb.NewComputeDeleterFor(healthdb.ComputeConfig{Driver: "compute_noop_driver"})
	if err != nil {
		t.Fatal(err)
	}
	u, err := healthdb.NewUpdater(healthdb.UpdaterConfig{Store: store, Deleter: deleter,
		Rules: healthdb.Rules{HeartbeatInterval: 10 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	return &octaviaSide{store: store, updater: u, stats: map[string]healthdb.ListenerStatsRow{}}
}

func (o *octaviaSide) apply(t *testing.T, msg *heartbeat.Message) {
	t.Helper()
	msg.RecvTime = time.Now()
	if _, err := o.updater.ApplyBatch(context.Background(), []*heartbeat.Message{msg}); err != nil {
		t.Fatal(err)
	}
	for _, l := range msg.Listeners {
		r := o.stats[l.ID]
		r.ListenerID, r.AmphoraID = l.ID, msg.AmphoraID
		r.BytesIn += l.Stats.RX
		r.BytesOut += l.Stats.TX
		r.TotalConns += l.Stats.TotConns
		r.RequestErrors += l.Stats.EReq
		r.ActiveConns = l.Stats.Conns
		o.stats[l.ID] = r
		o.store.PutListenerStats(r)
	}
}

func shadowConf(t *testing.T) (conf, file string) {
	file = filepath.Join(t.TempDir(), "disagreements.jsonl")
	return memConfig + "[health_manager]\nshadow = true\nshadow_disagreement_file = " + file + "\n", file
}

// runShadowScenario starts a shadow on the memory store, sends n member
// UP heartbeats of amp-1, and after each one the shadow has compared
// applies it as Octavia would.
func runShadowScenario(t *testing.T, n int, decide shadow.DecideFunc) (*memPipeline, *writeRecorder, string) {
	conf, file := shadowConf(t)
	store, sink, stores := managertest.MemStores()
	rec := &writeRecorder{}
	stores.Updater, stores.Watcher = rec, rec
	r := managertest.Start(t, managertest.Options{Files: []string{testproc.WriteFile(t, "octavia.conf", []byte(conf))},
		Stores: stores, ShadowDecide: decide})
	udp, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(r.ListenAddr()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { udp.Close() })
	p := &memPipeline{Running: r, store: store, sink: sink, udp: udp}
	if p.Shadow() == nil {
		t.Fatal("shadow = true did not start shadow mode")
	}
	octavia := newOctaviaSide(t, store)
	kr := sealer(t, "k")
	for i := 1; i <= n; i++ {
		msg := managertest.TypicalHeartbeat("amp-1", "UP")
		msg.Seq = int64(i)
		p.send(t, kr.SealMessage(msg))
		testproc.WaitFor(t, "the shadow compares the heartbeat", func() bool {
			return testutilValue(t, p.Manager, "octavia_hm_shadow_heartbeats_compared_total") >= float64(i)
		})
		octavia.apply(t, msg)
	}
	return p, rec, file
}

func TestMemShadowAgreesAndWritesNothing(t *testing.T) {
	p, rec, _ := runShadowScenario(t, 5, nil)
	// The shadow's own poll of the stale-amphora rules has run too.
	time.Sleep(50 * time.Millisecond)
	if got := p.Shadow().Recent(); len(got) != 0 {
		t.Errorf("disagreements with the same rules: %v", got)
	}
	if n := rec.calls.Load(); n != 0 {
		t.Errorf("the write stores were called %d times in shadow mode", n)
	}
	if got, ok := p.sink.Row("l-1", "amp-1"); ok {
		t.Errorf("statistics written in shadow mode: %v", got)
	}
	// Octavia's side wrote these; the shadow nothing else.
	if s := memStatus(t, p.store, memstore.TableMember, "m-1"); s != "ONLINE" {
		t.Errorf("member m-1 %s", s)
	}
}

// The shadow with a rule changed (a member reported UP is DRAINING to us)
// reports the member, and only it, as a status disagreement, with the
// heartbeat that caused it, counted, in the file, replayable.
func TestMemShadowReportsInjectedRuleDifference(t *testing.T) {
	drainUp := func(topo *healthdb.Topology, msg *heartbeat.Message, now time.Time, rules healthdb.Rules) healthdb.Decision {
		d := healthdb.Decide(topo, msg, now, rules)
		for i := range d.Members {
			if d.Members[i].To == healthdb.StatusOnline {
				d.Members[i].To = healthdb.StatusDraining
			}
		}
		if topo.LB != nil && len(d.Members) == 0 {
			for _, pool := range topo.LB.Pools {
				for _, m := range pool.Members {
					if m.OperatingStatus == healthdb.StatusOnline {
						d.Members = append(d.Members, healthdb.StatusChange{ID: m.ID, From: m.OperatingStatus, To: healthdb.StatusDraining})
					}
				}
			}
		}
		return d
	}
	p, rec, file := runShadowScenario(t, 5, drainUp)
	got := p.Shadow().Recent()
	if len(got) != 1 {
		t.Fatalf("disagreements %v, want the member's alone", got)
	}
	d := got[0]
	if d.Kind != shadow.KindStatus || d.Entity != "member" || d.ID != "m-1" || d.Ours != "DRAINING" || d.Octavia != "ONLINE" {
		t.Errorf("disagreement %+v", d)
	}
	if !strings.Contains(d.Message, "member m-1 UP") || !strings.Contains(d.Message, "amp-1") {
		t.Errorf("message %q does not say what the heartbeat reported", d.Message)
	}
	if n := testutilValue(t, p.Manager, `octavia_hm_shadow_disagreements_total{kind="status"}`); n != 1 {
		t.Errorf("counted %v status disagreements", n)
	}
	if n := rec.calls.Load(); n != 0 {
		t.Errorf("the write stores were called %d times", n)
	}
	kept, err := shadow.ReadFile(file)
	if err != nil || len(kept) != 1 {
		t.Fatalf("file: %v, %v", kept, err)
	}
	raw, err := base64.StdEncoding.DecodeString(kept[0].B64)
	if err != nil {
		t.Fatal(err)
	}
	msg, _, err := sealer(t, "k").Open(raw)
	if err != nil || msg.AmphoraID != "amp-1" {
		t.Errorf("the kept datagram does not open as amp-1's heartbeat: %v", err)
	}
}
