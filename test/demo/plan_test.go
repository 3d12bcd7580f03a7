package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	agent "github.com/octavia-vpp/health/amphora-agent"
	"github.com/octavia-vpp/health/test/pgtest"
	"github.com/octavia-vpp/health/vpp"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// counter hands out distinct fake ports.
func counter() func() int {
	n := 20000
	return func() int { n++; return n }
}

func TestDownAt(t *testing.T) {
	flap := Behaviour{Kind: Answer503, Period: 40 * time.Second, Down: 15 * time.Second, Offset: 10 * time.Second}
	for _, tc := range []struct {
		name string
		b    Behaviour
		at   time.Duration
		want bool
	}{
		{"steady never fails", Behaviour{Kind: Steady, Period: time.Second, Down: time.Second}, 0, false},
		{"before the offset", flap, 9 * time.Second, false},
		{"at the offset", flap, 10 * time.Second, true},
		{"end of the down window", flap, 24999 * time.Millisecond, true},
		{"after the down window", flap, 25 * time.Second, false},
		{"next period", flap, 50 * time.Second, true},
		{"zero period", Behaviour{Kind: Refuse, Down: time.Second}, time.Second, false},
	} {
		if got := tc.b.DownAt(tc.at); got != tc.want {
			t.Errorf("%s: DownAt(%v) = %v, want %v", tc.name, tc.at, got, tc.want)
		}
	}
}

func TestPlanShape(t *testing.T) {
	topo := Plan(20, counter())
	if len(topo.LBs) != 20 {
		t.Fatalf("%d LBs, want 20", len(topo.LBs))
	}
	roles := map[string]int{}
	ids := map[string]bool{}
	ports := map[int]bool{}
	for _, lb := range topo.LBs {
		want := 1
		if lb.Topology == "ACTIVE_STANDBY" {
			want = 2
		}
		if len(lb.Amphorae) != want {
			t.Errorf("%s (%s) has %d amphorae", lb.ID, lb.Topology, len(lb.Amphorae))
		}
		for _, a := range lb.Amphorae {
			roles[a.Role]++
			if ids[a.ID] || ports[a.StatusPort] {
				t.Errorf("amphora %s: id or port %d used twice", a.ID, a.StatusPort)
			}
			ids[a.ID], ports[a.StatusPort] = true, true
		}
	}
	for _, m := range topo.Members() {
		if ids[m.ID] || ports[m.LocalPort] {
			t.Errorf("member %s: id or port %d used twice", m.ID, m.LocalPort)
		}
		ids[m.ID], ports[m.LocalPort] = true, true
	}
	if roles["MASTER"] != 6 || roles["BACKUP"] != 6 || roles["STANDALONE"] != 14 {
		t.Errorf("roles %v, want 6 MASTER, 6 BACKUP, 14 STANDALONE", roles)
	}
	if !ids[topo.DrainedMember] || !ids[topo.SilentAmphora] {
		t.Errorf("drained member %q or silent amphora %q not in the topology", topo.DrainedMember, topo.SilentAmphora)
	}
	flapping := 0
	for _, m := range topo.Members() {
		if m.Behaviour.Kind != Steady {
			flapping++
		}
	}
	if flapping == 0 {
		t.Error("no member server flaps")
	}
}

// The files plan writes must be accepted by the agent as they are.
func TestWriteFleetAgentFiles(t *testing.T) {
	dir := t.TempDir()
	topo := Plan(20, counter())
	topo.DB = "postgresql://postgres@127.0.0.1:1/postgres"
	topo.HMUDPPort = 5999
	if err := WriteFleet(dir, &topo, 6000); err != nil {
		t.Fatal(err)
	}
	for _, a := range topo.Amphorae() {
		cfg, err := agent.LoadConfig(a.Config)
		if err != nil {
			t.Fatalf("%s: %v", a.Config, err)
		}
		if cfg.AmphoraID != a.ID || cfg.VPP.Dataplane != "sim" || !slices.Equal(cfg.Controllers, []string{"127.0.0.1:5999"}) {
			t.Errorf("%s: amphora %q, dataplane %q, controllers %v", a.Config, cfg.AmphoraID, cfg.VPP.Dataplane, cfg.Controllers)
		}
		lb, err := agent.LoadLB(cfg.VPP.LBConfigFile, vpp.EncapGRE4)
		if err != nil {
			t.Fatalf("%s: %v", cfg.VPP.LBConfigFile, err)
		}
		owner, _ := topo.Amphora(a.ID)
		if lb.ID != owner.ID || len(lb.Listeners) != len(owner.Listeners) {
			t.Errorf("%s: lb %s with %d listeners, want %s with %d", a.ID, lb.ID, len(lb.Listeners), owner.ID, len(owner.Listeners))
		}
	}
	var back Topology
	b, err := os.ReadFile(filepath.Join(dir, "topology.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.DrainConfig == "" || back.StatusURL != "http://127.0.0.1:6000/" || len(back.LBs) != 20 {
		t.Errorf("topology.json: drain config %q, status URL %q, %d LBs", back.DrainConfig, back.StatusURL, len(back.LBs))
	}
	env, err := os.ReadFile(filepath.Join(dir, "env.sh"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(env), "silent_amphora=amp-03-a\n") {
		t.Errorf("env.sh lacks the silent amphora:\n%s", env)
	}
}

// The seed applies to the real schema, twice (make run reseeds), and the
// watcher reads it back, staleness included.
func TestSeedAndSample(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	topo := Plan(20, counter())
	for range 2 {
		if _, err := pool.Exec(ctx, SeedSQL(&topo)); err != nil {
			t.Fatal(err)
		}
	}
	// One fresh amphora, the silent one stale; the rest never heard.
	if _, err := pool.Exec(ctx, `INSERT INTO amphora_health (amphora_id, last_update, busy) VALUES
		('amp-01', now() AT TIME ZONE 'UTC', false),
		('amp-03-a', now() AT TIME ZONE 'UTC' - interval '1 minute', false)`); err != nil {
		t.Fatal(err)
	}
	w := &watcher{topo: &topo, db: pool, http: http.DefaultClient}
	s := Sample{LBs: map[string]string{}, Members: map[string]string{}}
	if err := w.readDB(ctx, &s); err != nil {
		t.Fatal(err)
	}
	if len(s.LBs) != 20 || len(s.Members) != len(topo.Members()) || countOf(s.LBs, "OFFLINE") != 20 {
		t.Errorf("read %d LBs (%d OFFLINE), %d members; want 20, 20, %d", len(s.LBs), countOf(s.LBs, "OFFLINE"), len(s.Members), len(topo.Members()))
	}
	if !slices.Equal(s.Stale, []string{"amp-03-a"}) || len(s.Unheard) != len(topo.Amphorae())-2 {
		t.Errorf("stale %v, %d unheard; want [amp-03-a], %d", s.Stale, len(s.Unheard), len(topo.Amphorae())-2)
	}
	var standby int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM amphora a JOIN load_balancer lb ON lb.id = a.load_balancer_id
		WHERE lb.topology = 'ACTIVE_STANDBY' AND a.role IN ('MASTER', 'BACKUP')`).Scan(&standby); err != nil {
		t.Fatal(err)
	}
	if standby != 12 {
		t.Errorf("%d MASTER/BACKUP amphorae of ACTIVE_STANDBY LBs, want 12", standby)
	}
}
