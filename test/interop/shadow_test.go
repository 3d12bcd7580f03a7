//go:build interop

package interop

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/octavia-vpp/health/healthdb"
	"github.com/octavia-vpp/health/healthdb/manager/managertest"
	"github.com/octavia-vpp/health/healthdb/shadow"
	"github.com/octavia-vpp/health/heartbeat"
	"github.com/octavia-vpp/health/test/mysqltest"
)

// shadowRun is our manager in shadow mode, in-process (so that a test can
// replace its status procedure), beside Octavia's live manager on the same
// database, receiving every datagram first and forwarding it to Octavia.
type shadowRun struct {
	*managertest.Running
	oct  *octaviaHM
	file string
	conf string
}

func startShadow(t *testing.T, url, key string, decide shadow.DecideFunc) *shadowRun {
	t.Helper()
	return startShadowTimed(t, url, key, decide, 600, 60)
}

// startShadowTimed is startShadow with both sides' heartbeat_timeout and
// health_check_interval, in seconds.
func startShadowTimed(t *testing.T, url, key string, decide shadow.DecideFunc, timeout, interval int) *shadowRun {
	t.Helper()
	oct := startOctavia(t, url, key, timeout, interval)
	dir := t.TempDir()
	file := filepath.Join(dir, "disagreements.jsonl")
	conf := filepath.Join(dir, "octavia.conf")
	text := fmt.Sprintf("[database]\nconnection = %s\n"+
		"[health_manager]\nheartbeat_key = %s\nbind_ip = 127.0.0.1\nbind_port = 0\nmetrics_bind = 127.0.0.1:0\n"+
		"heartbeat_timeout = %d\nhealth_check_interval = %d\nreceive_sockets = 1\nhealth_update_threads = 1\n"+
		"sock_rlimit = 8388608\nshadow = true\nshadow_disagreement_file = %s\nshadow_forward_to = %s\n"+
		"[controller_worker]\ncompute_driver = compute_noop_driver\nstatistics_drivers = stats_db\n",
		url, key, timeout, interval, file, oct.addr)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs io.Writer = io.Discard
	if os.Getenv("SHADOW_LOG") != "" {
		logs = os.Stderr
	}
	r := managertest.Start(t, managertest.Options{Files: []string{conf}, ShadowDecide: decide, LogOutput: logs})
	if r.Shadow() == nil {
		t.Fatal("shadow = true did not start shadow mode")
	}
	return &shadowRun{Running: r, oct: oct, file: file, conf: conf}
}

// counter sums a family of the manager's registry.
func (s *shadowRun) counter(t *testing.T, name string, labelPairs ...string) float64 {
	t.Helper()
	fams, err := s.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			for i := 0; i+1 < len(labelPairs); i += 2 {
				found := false
				for _, l := range m.GetLabel() {
					found = found || (l.GetName() == labelPairs[i] && l.GetValue() == labelPairs[i+1])
				}
				if !found {
					continue series
				}
			}
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

// report runs our binary's shadow-report against this run.
func (s *shadowRun) report(t *testing.T) string {
	t.Helper()
	cmd := exec.Command(binary(t), "--config-file", s.conf, "shadow-report",
		"--metrics-url", "http://"+s.MetricsAddr().String()+"/metrics", "--file", s.file)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("shadow-report: %v\n%s", err, out)
	}
	return string(out)
}

// feed sends the scenario to the shadow, waits until Octavia applied every
// datagram and the shadow compared every heartbeat it verified, then one
// more round of the scenario's last heartbeats, so that each amphora's
// last difference is judged against a next heartbeat.
func (s *shadowRun) feed(t *testing.T, sc *scenario, rounds int) {
	t.Helper()
	sendRounds(t, sc, rounds, s.ListenAddr(), s.oct, func(round int) {
		// amphora_health.last_update is a DATETIME of whole seconds on
		// MySQL: heartbeats of one amphora a second apart at least, as
		// they are in a cloud (heartbeat_interval), let it advance.
		time.Sleep(1100 * time.Millisecond)
		waitFor(t, 60*time.Second, "the shadow to compare the round", func() bool {
			return s.counter(t, "octavia_hm_shadow_heartbeats_compared_total")+s.counter(t, "octavia_hm_shadow_read_errors_total") >=
				s.counter(t, "octavia_hm_heartbeats_accepted_total")
		})
	})
}

func shadowDatabases(t *testing.T, b backend) string {
	t.Helper()
	if b.name == postgresBackend.name {
		return octaviaDB(t)
	}
	url := mariaURL(t, mysqltest.NewDB(t))
	return url
}

// TestShadowBesideOctavia: Octavia's health manager (its receive path,
// update_health, update_stats and health_check, live) and ours in shadow
// mode on the same database, fed a scenario's heartbeats through the
// shadow's forwarding. With our status procedure as it is, the shadow
// must report no disagreement, in its metric and in its file.
func TestShadowBesideOctavia(t *testing.T) {
	for _, b := range []backend{postgresBackend, mariadbBackend} {
		t.Run(b.name, func(t *testing.T) {
			start := time.Now()
			sc := newScenario(11, liveLBs)
			url := shadowDatabases(t, b)
			if err := sc.insert(context.Background(), url); err != nil {
				t.Fatalf("insert topology: %v", err)
			}
			s := startShadow(t, url, sc.key, nil)
			s.feed(t, sc, scenarioRounds)
			compared := s.counter(t, "octavia_hm_shadow_heartbeats_compared_total")
			total := s.counter(t, "octavia_hm_shadow_disagreements_total")
			kept, err := shadow.ReadFile(s.file)
			if err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
			report := s.report(t)
			t.Logf("shadow-report:\n%s", report)
			// ACTIVE_STANDBY load balancers included: both amphorae
			// report on the same entities, and the rule is per entity.
			var bad []string
			for _, d := range kept {
				bad = append(bad, d.String())
			}
			if len(bad) > 0 || total != 0 {
				t.Errorf("%v disagreements counted, %d kept, with our own procedure:\n%s", total, len(kept), strings.Join(bad[:min(len(bad), 30)], "\n"))
			}
			if compared == 0 {
				t.Error("the shadow compared no heartbeat")
			}
			forwarded := s.counter(t, "octavia_hm_shadow_forwarded_total")
			final := s.oct.stop()
			if forwarded != float64(len(sc.datagrams)) || final.Received != len(sc.datagrams) {
				t.Errorf("sent %d datagrams to the shadow; it forwarded %v, Octavia received %d", len(sc.datagrams), forwarded, final.Received)
			}
			t.Logf("%s: %d load balancers (%d ACTIVE_STANDBY), %d datagrams, %d applied by Octavia, %v heartbeats compared by the shadow, %v disagreements, in %s",
				b.name, len(sc.lbs), activeStandbyLBs(sc), len(sc.datagrams), final.Received, compared, total, time.Since(start).Round(time.Millisecond))
		})
	}
}

// TestShadowFailoverBesideOctavia: an amphora heartbeats, then falls
// silent. Octavia's own health_check claims it for failover once it is
// stale; the shadow, whose stale-amphora rules would fail it over too,
// must report no disagreement, before or after.
func TestShadowFailoverBesideOctavia(t *testing.T) {
	const timeout, interval = 3, 1
	for _, b := range []backend{postgresBackend, mariadbBackend} {
		t.Run(b.name, func(t *testing.T) {
			sc := plainScenario(5)
			url := shadowDatabases(t, b)
			if err := sc.insert(context.Background(), url); err != nil {
				t.Fatalf("insert topology: %v", err)
			}
			amp := sc.lbs[0].amps[0]
			s := startShadowTimed(t, url, sc.key, nil, timeout, interval)
			s.feed(t, sc, len(sc.datagrams))
			silent := time.Now()
			waitFor(t, 30*time.Second, "Octavia to fail the silent amphora over", func() bool { return len(s.oct.claimed()) > 0 })
			claimedAfter := time.Since(silent)
			// Long enough for the shadow to judge: heartbeat_timeout +
			// health_check_interval after it would have failed it over.
			time.Sleep(time.Duration(timeout+2*interval) * time.Second)
			if got := s.oct.claimed(); len(got) != 1 || got[0] != amp {
				t.Errorf("Octavia failed over %v, want [%s]", got, amp)
			}
			kept, err := shadow.ReadFile(s.file)
			if err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
			total := s.counter(t, "octavia_hm_shadow_disagreements_total")
			if total != 0 || len(kept) != 0 {
				var lines []string
				for _, d := range kept {
					lines = append(lines, d.String())
				}
				t.Errorf("%v disagreements counted, %d kept:\n%s", total, len(kept), strings.Join(lines, "\n"))
			}
			t.Logf("%s: Octavia claimed %s %s after the last round ended; the shadow reported %v disagreements",
				b.name, amp, claimedAfter.Round(100*time.Millisecond), total)
		})
	}
}

// activeStandbyLBs counts the load balancers with two amphorae.
func activeStandbyLBs(sc *scenario) int {
	n := 0
	for _, lb := range sc.lbs {
		if len(lb.amps) >= 2 {
			n++
		}
	}
	return n
}

// The injected difference: our procedure, for this test only, reads every
// report of the members in targets as "DOWN" (ERROR), where Octavia applies
// what was reported ("UP": ONLINE).
func injectMemberDown(targets map[string]bool) shadow.DecideFunc {
	return func(top *healthdb.Topology, msg *heartbeat.Message, now time.Time, rules healthdb.Rules) healthdb.Decision {
		c := *msg
		c.Pools = append([]heartbeat.Pool(nil), msg.Pools...)
		for i, p := range c.Pools {
			p.Members = append([]heartbeat.Member(nil), p.Members...)
			for j, m := range p.Members {
				if targets[m.ID] {
					p.Members[j].Status = "DOWN"
				}
			}
			c.Pools[i] = p
		}
		return healthdb.Decide(top, &c, now, rules)
	}
}

// TestShadowInjectedDifference: with a deliberate rule change in the
// shadow's status procedure, each affected member is reported, as a
// status disagreement, with both values and the heartbeat that caused it.
// The scenario is plain: one load balancer, one amphora, one listener, one
// pool of four members, every heartbeat reporting every member UP; the
// rule change hits two of the members.
func TestShadowInjectedDifference(t *testing.T) {
	for _, b := range []backend{postgresBackend, mariadbBackend} {
		t.Run(b.name, func(t *testing.T) {
			sc := plainScenario(6)
			url := shadowDatabases(t, b)
			if err := sc.insert(context.Background(), url); err != nil {
				t.Fatalf("insert topology: %v", err)
			}
			members := sc.lbs[0].pools[0].members
			targets := map[string]bool{members[1].id: true, members[3].id: true}
			s := startShadow(t, url, sc.key, injectMemberDown(targets))
			s.feed(t, sc, len(sc.datagrams))
			// The two members, and through them their pool and the load
			// balancer (DEGRADED where Octavia has ONLINE).
			lb, pool := sc.lbs[0], sc.lbs[0].pools[0]
			want := map[string][3]string{lb.id: {"load_balancer", "DEGRADED", "ONLINE"}, pool.id: {"pool", "DEGRADED", "ONLINE"}}
			for id := range targets {
				want[id] = [3]string{"member", "ERROR", "ONLINE"}
			}
			waitFor(t, 20*time.Second, "every affected entity's disagreement", func() bool {
				return s.counter(t, "octavia_hm_shadow_disagreements_total", "kind", "status") >= float64(len(want))
			})
			kept, err := shadow.ReadFile(s.file)
			if err != nil {
				t.Fatal(err)
			}
			reported := map[string]shadow.Disagreement{}
			for _, d := range kept {
				w, ok := want[d.ID]
				if !ok || d.Kind != shadow.KindStatus || d.Entity != w[0] {
					t.Errorf("unexpected disagreement: %s", d)
					continue
				}
				reported[d.ID] = d
			}
			for id, w := range want {
				d, ok := reported[id]
				if !ok {
					t.Errorf("%s %s: no disagreement reported", w[0], id)
					continue
				}
				if d.Ours != w[1] || d.Octavia != w[2] || d.AmphoraID != lb.amps[0] {
					t.Errorf("%s %s: %s; want ours %s, Octavia's %s, amphora %s", w[0], id, d, w[1], w[2], lb.amps[0])
				}
				// The message is the heartbeat our decision came from: it
				// names what the amphora reported (the members UP), and the
				// datagram is kept for replay.
				if !strings.Contains(d.Message, "heartbeat of amphora "+lb.amps[0]) || !strings.Contains(d.Message, " UP") || d.B64 == "" {
					t.Errorf("%s %s: the message that caused it is missing: %q (b64 %d bytes)", w[0], id, d.Message, len(d.B64))
				}
			}
			if n := s.counter(t, "octavia_hm_shadow_disagreements_total"); n != float64(len(want)) {
				t.Errorf("%v disagreements counted, want %d", n, len(want))
			}
			report := s.report(t)
			t.Logf("shadow-report:\n%s", report)
			if dir := os.Getenv("SHADOW_REPORT_OUT"); dir != "" {
				_ = os.WriteFile(filepath.Join(dir, "shadow-report-"+strings.ToLower(b.name)+".txt"), []byte(report), 0o644)
			}
		})
	}
}

// plainScenario is one ACTIVE SINGLE load balancer, all ONLINE, its
// amphora heartbeating `rounds` times with every member UP.
func plainScenario(rounds int) *scenario {
	g := &gen{r: rand.New(rand.NewPCG(42, 1))}
	lb := &genLB{id: g.id(), prov: "ACTIVE", op: "ONLINE", topology: "SINGLE", enabled: true, amps: []string{g.id()}}
	pool := &genPool{id: g.id(), op: "ONLINE"}
	for range 4 {
		pool.members = append(pool.members, &genMember{id: g.id(), op: "ONLINE", enabled: true})
	}
	l := &genListener{id: g.id(), protocol: "HTTP", op: "ONLINE", defaultPool: pool.id, enabled: true, port: 80}
	pool.listeners = []string{l.id}
	lb.listeners, lb.pools = []*genListener{l}, []*genPool{pool}
	s := &scenario{seed: 42, key: "plain-key", lbs: []*genLB{lb}}
	kr, err := heartbeat.NewKeyring(heartbeat.KeyringConfig{Keys: []string{s.key}})
	if err != nil {
		panic(err)
	}
	for i := range rounds {
		m := &heartbeat.Message{AmphoraID: lb.amps[0], Seq: int64(i + 1), HasSeq: true, Version: 3, HasVersion: true,
			Listeners: []heartbeat.Listener{{ID: l.id, Status: "OPEN", HasStats: true, Stats: heartbeat.Stats{RX: 100, TX: 200, Conns: 1, TotConns: 3}}},
			Pools:     []heartbeat.Pool{{Key: pool.id + ":" + l.id, Status: "UP"}}}
		for _, mem := range pool.members {
			m.Pools[0].Members = append(m.Pools[0].Members, heartbeat.Member{ID: mem.id, Status: "UP"})
		}
		text := string(m.AppendJSON(nil))
		s.datagrams = append(s.datagrams, kr.Seal([]byte(text)))
		s.texts = append(s.texts, text)
	}
	return s
}
