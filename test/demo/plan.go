package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	agent "github.com/octavia-vpp/health/amphora-agent"
)

// The demo's story, in one place: which LBs are ACTIVE_STANDBY, which
// member servers flap, which member is drained and which amphora goes
// silent. Everything else (SQL, agent configs, LB descriptions) is
// derived from the Topology that plan builds.

// Member server behaviours.
const (
	Steady    = "steady" // always answers 200
	Answer503 = "503"    // answers 503 while down
	Refuse    = "refuse" // closes its listening socket while down
)

// Behaviour is what one member server does: failing for Down out of every
// Period, the first time Offset after the servers start.
type Behaviour struct {
	Kind   string        `json:"kind"`
	Period time.Duration `json:"period"`
	Down   time.Duration `json:"down"`
	Offset time.Duration `json:"offset"`
}

// DownAt reports whether a server with this behaviour is failing at
// elapsed time t since the member servers started.
func (b Behaviour) DownAt(t time.Duration) bool {
	if b.Kind == Steady || b.Period <= 0 || b.Down <= 0 {
		return false
	}
	phase := (t - b.Offset) % b.Period
	if phase < 0 {
		phase += b.Period
	}
	return t >= b.Offset && phase < b.Down
}

// Member is one pool member and the local server its probes reach.
type Member struct {
	ID        string    `json:"id"`
	Address   string    `json:"address"` // the backend address VPP would use
	Port      int       `json:"port"`
	LocalPort int       `json:"local_port"` // monitor port on 127.0.0.1
	Behaviour Behaviour `json:"behaviour"`
}

// Pool is a listener's default pool.
type Pool struct {
	ID       string   `json:"id"`
	Protocol string   `json:"protocol"`
	Monitor  string   `json:"monitor"` // HTTP, TCP or "" for none
	Members  []Member `json:"members"`
}

// Listener is one listener and its pool.
type Listener struct {
	ID       string `json:"id"`
	Protocol string `json:"protocol"`
	Port     int    `json:"port"`
	Pool     Pool   `json:"pool"`
}

// Amphora is one simulated amphora: an amphora-agent process.
type Amphora struct {
	ID         string `json:"id"`
	Role       string `json:"role"` // STANDALONE, MASTER or BACKUP
	StatusPort int    `json:"status_port"`
	Config     string `json:"config"` // its amphora-agent.conf
}

// LB is one load balancer.
type LB struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Topology  string     `json:"topology"` // SINGLE or ACTIVE_STANDBY
	VIP       string     `json:"vip"`
	Amphorae  []Amphora  `json:"amphorae"`
	Listeners []Listener `json:"listeners"`
}

// Topology is the whole demo: what plan writes and watch reads back.
type Topology struct {
	DB                string        `json:"db"`
	MetricsURL        string        `json:"metrics_url"`
	StatusURL         string        `json:"status_url"`
	HMUDPPort         int           `json:"hm_udp_port"`
	HeartbeatTimeout  time.Duration `json:"heartbeat_timeout"`
	HeartbeatInterval time.Duration `json:"heartbeat_interval"`
	DrainedMember     string        `json:"drained_member"`
	DrainConfig       string        `json:"drain_config"` // config of an agent that has the drained member
	SilentAmphora     string        `json:"silent_amphora"`
	LBs               []LB          `json:"lbs"`
}

// Demo timings: heartbeats every 2 s, stale after 15 s, so a silent
// amphora is noticed about 15 s after it stops.
const (
	agentHeartbeatInterval = 2 * time.Second
	// The health manager's heartbeat_interval only bounds how late a
	// heartbeat may be applied; generous, for a busy machine.
	hmHeartbeatInterval   = 5 * time.Second
	hmHeartbeatTimeout    = 15 * time.Second
	hmHealthCheckInterval = 1 * time.Second
	heartbeatKey          = "demo-heartbeat-key"
)

var lbNames = []string{"web", "api", "shop", "auth", "media", "search", "cdn", "mail", "chat", "pay"}

// flappers says which members of which LB flap, by (lb number, member
// number); lb 11's whole HTTP pool goes down together (pool DOWN, LB ERROR).
var flappers = map[[2]int]Behaviour{
	{2, 2}:  {Kind: Answer503, Period: 40 * time.Second, Down: 15 * time.Second, Offset: 10 * time.Second},
	{8, 3}:  {Kind: Refuse, Period: 50 * time.Second, Down: 20 * time.Second, Offset: 15 * time.Second},
	{11, 1}: {Kind: Refuse, Period: 60 * time.Second, Down: 20 * time.Second, Offset: 25 * time.Second},
	{11, 2}: {Kind: Refuse, Period: 60 * time.Second, Down: 20 * time.Second, Offset: 25 * time.Second},
	{11, 3}: {Kind: Answer503, Period: 60 * time.Second, Down: 20 * time.Second, Offset: 25 * time.Second},
	{17, 1}: {Kind: Answer503, Period: 30 * time.Second, Down: 10 * time.Second, Offset: 5 * time.Second},
}

// Plan builds the topology of n load balancers. ports hands out free
// local ports (member servers and agent APIs).
func Plan(n int, ports func() int) Topology {
	t := Topology{
		HeartbeatTimeout:  hmHeartbeatTimeout,
		HeartbeatInterval: agentHeartbeatInterval,
		DrainedMember:     "member-05-http-1",
		SilentAmphora:     "amp-03-a",
	}
	for i := 1; i <= n; i++ {
		lb := LB{
			ID:       fmt.Sprintf("lb-%02d", i),
			Name:     fmt.Sprintf("%s-%02d", lbNames[(i-1)%len(lbNames)], i),
			Topology: "SINGLE",
			VIP:      fmt.Sprintf("203.0.113.%d", i),
		}
		if i%3 == 0 {
			lb.Topology = "ACTIVE_STANDBY"
			lb.Amphorae = []Amphora{
				{ID: fmt.Sprintf("amp-%02d-a", i), Role: "MASTER", StatusPort: ports()},
				{ID: fmt.Sprintf("amp-%02d-b", i), Role: "BACKUP", StatusPort: ports()},
			}
		} else {
			lb.Amphorae = []Amphora{{ID: fmt.Sprintf("amp-%02d", i), Role: "STANDALONE", StatusPort: ports()}}
		}
		monitor := "HTTP"
		if i == 7 || i == 14 {
			monitor = "" // members report "no check": NO_MONITOR
		}
		lb.Listeners = append(lb.Listeners, listener(i, "http", "HTTP", 80, monitor, 3, ports))
		if i%5 == 0 {
			lb.Listeners = append(lb.Listeners, listener(i, "tcp", "TCP", 443, "TCP", 2, ports))
		}
		t.LBs = append(t.LBs, lb)
	}
	return t
}

func listener(lb int, name, protocol string, port int, monitor string, members int, ports func() int) Listener {
	l := Listener{
		ID: fmt.Sprintf("listener-%02d-%s", lb, name), Protocol: protocol, Port: port,
		Pool: Pool{ID: fmt.Sprintf("pool-%02d-%s", lb, name), Protocol: protocol, Monitor: monitor},
	}
	for k := 1; k <= members; k++ {
		b := Behaviour{Kind: Steady}
		if name == "http" {
			if f, ok := flappers[[2]int{lb, k}]; ok {
				b = f
			}
		}
		subnet := 0
		if name != "http" {
			subnet = 1
		}
		l.Pool.Members = append(l.Pool.Members, Member{
			ID:      fmt.Sprintf("member-%02d-%s-%d", lb, name, k),
			Address: fmt.Sprintf("10.%d.%d.%d", subnet, lb, k), Port: 8080,
			LocalPort: ports(), Behaviour: b,
		})
	}
	return l
}

// Amphora returns the amphora with that id and its LB.
func (t *Topology) Amphora(id string) (*LB, *Amphora) {
	for i := range t.LBs {
		for j := range t.LBs[i].Amphorae {
			if t.LBs[i].Amphorae[j].ID == id {
				return &t.LBs[i], &t.LBs[i].Amphorae[j]
			}
		}
	}
	return nil, nil
}

// LBOfMember returns the LB that has that member.
func (t *Topology) LBOfMember(id string) *LB {
	for i := range t.LBs {
		for _, l := range t.LBs[i].Listeners {
			for _, m := range l.Pool.Members {
				if m.ID == id {
					return &t.LBs[i]
				}
			}
		}
	}
	return nil
}

// Members lists every member in order.
func (t *Topology) Members() []Member {
	var out []Member
	for _, lb := range t.LBs {
		for _, l := range lb.Listeners {
			out = append(out, l.Pool.Members...)
		}
	}
	return out
}

// Amphorae lists every amphora in order.
func (t *Topology) Amphorae() []Amphora {
	var out []Amphora
	for _, lb := range t.LBs {
		out = append(out, lb.Amphorae...)
	}
	return out
}

// AgentLB is the LB description (docs/agent-lb-config.md) the agents of
// lb run with.
func AgentLB(lb LB) agent.LB {
	out := agent.LB{ID: lb.ID, VIPAddresses: []string{lb.VIP}}
	for _, l := range lb.Listeners {
		out.Listeners = append(out.Listeners, agent.Listener{
			ID: l.ID, Protocol: l.Protocol, ProtocolPort: l.Port, DefaultPoolID: l.Pool.ID,
		})
		p := agent.Pool{ID: l.Pool.ID}
		for _, m := range l.Pool.Members {
			p.Members = append(p.Members, agent.Member{
				ID: m.ID, Address: m.Address, ProtocolPort: m.Port,
				MonitorAddress: "127.0.0.1", MonitorPort: m.LocalPort,
			})
		}
		switch l.Pool.Monitor {
		case "HTTP":
			p.HealthMonitor = &agent.HealthMonitor{
				Type: agent.MonitorHTTP, Delay: 2, Timeout: 1, MaxRetries: 2, MaxRetriesDown: 2,
				URLPath: "/healthz", ExpectedCodes: "200", FastDelay: 1, DownDelay: 2,
			}
		case "TCP":
			p.HealthMonitor = &agent.HealthMonitor{
				Type: agent.MonitorTCP, Delay: 2, Timeout: 1, MaxRetries: 2, MaxRetriesDown: 2,
				FastDelay: 1, DownDelay: 2,
			}
		}
		out.Pools = append(out.Pools, p)
	}
	return out
}

// AgentConfig is the amphora-agent.conf of one amphora, whose files live
// in dir.
func AgentConfig(t *Topology, a Amphora, dir, lbFile string, n int) string {
	return fmt.Sprintf(`# amphora-agent.conf of simulated amphora %[1]s (written by make run)
[amphora_agent]
amphora_id = %[1]s
status_bind = 127.0.0.1:%[2]d
spool_dir = %[3]s/marks

[health_manager]
controller_ip_port_list = 127.0.0.1:%[4]d
heartbeat_interval = %[5]g
heartbeat_key = %[6]s

[haproxy_amphora]
base_path = %[3]s

[vpp]
# The in-process VPP simulator; health checks still probe the real local
# member servers.
dataplane = sim
lb_config_file = %[7]s
ip4_src_address = 198.51.100.%[8]d
sync_interval = 10
startup_min_delay = 0
startup_max_delay = 5
`, a.ID, a.StatusPort, dir, t.HMUDPPort, agentHeartbeatInterval.Seconds(), heartbeatKey, lbFile, n)
}

// HMConfig is the health manager's octavia.conf.
func HMConfig(t *Topology, metricsPort int) string {
	return fmt.Sprintf(`# octavia.conf of the make run demo (written by make run)
[database]
connection = %s

[health_manager]
heartbeat_key = %s
bind_ip = 127.0.0.1
bind_port = %d
metrics_bind = 127.0.0.1:%d
# Demo timings: a silent amphora is stale after %g s.
heartbeat_interval = %g
heartbeat_timeout = %g
health_check_interval = %g
receive_sockets = 2
# The demo has no Octavia API to call: stale amphorae are only logged and
# counted as "would be failed over".
failover_driver = noop

[controller_worker]
compute_driver = compute_noop_driver
`, t.DB, heartbeatKey, t.HMUDPPort, metricsPort, hmHeartbeatTimeout.Seconds(),
		hmHeartbeatInterval.Seconds(), hmHeartbeatTimeout.Seconds(), hmHealthCheckInterval.Seconds())
}

// SeedSQL replaces whatever the demo database holds with the topology.
// Every status starts OFFLINE, as after creation: the heartbeats move
// them.
func SeedSQL(t *Topology) string {
	var b strings.Builder
	b.WriteString("BEGIN;\nTRUNCATE load_balancer, vip, amphora, amphora_health, listener, pool, member, health_monitor, listener_statistics CASCADE;\n")
	q := func(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
	for _, lb := range t.LBs {
		fmt.Fprintf(&b, "INSERT INTO load_balancer (id, name, provisioning_status, operating_status, enabled, topology, provider, created_at) VALUES (%s, %s, 'ACTIVE', 'OFFLINE', true, %s, 'amphora', now() AT TIME ZONE 'UTC');\n",
			q(lb.ID), q(lb.Name), q(lb.Topology))
		fmt.Fprintf(&b, "INSERT INTO vip (load_balancer_id, ip_address) VALUES (%s, %s);\n", q(lb.ID), q(lb.VIP))
		for _, a := range lb.Amphorae {
			fmt.Fprintf(&b, "INSERT INTO amphora (id, compute_id, status, load_balancer_id, lb_network_ip, role, cert_busy, created_at) VALUES (%s, %s, 'ALLOCATED', %s, '127.0.0.1', %s, false, now() AT TIME ZONE 'UTC');\n",
				q(a.ID), q("vm-"+strings.TrimPrefix(a.ID, "amp-")), q(lb.ID), q(a.Role))
		}
		for _, l := range lb.Listeners {
			p := l.Pool
			fmt.Fprintf(&b, "INSERT INTO pool (id, load_balancer_id, protocol, lb_algorithm, operating_status, enabled, provisioning_status) VALUES (%s, %s, %s, 'ROUND_ROBIN', 'OFFLINE', true, 'ACTIVE');\n",
				q(p.ID), q(lb.ID), q(p.Protocol))
			if p.Monitor != "" {
				fmt.Fprintf(&b, "INSERT INTO health_monitor (id, type, pool_id, delay, timeout, fall_threshold, rise_threshold, enabled, provisioning_status, operating_status) VALUES (%s, %s, %s, 2, 1, 2, 2, true, 'ACTIVE', 'ONLINE');\n",
					q("hm-"+strings.TrimPrefix(p.ID, "pool-")), q(p.Monitor), q(p.ID))
			}
			for _, m := range p.Members {
				fmt.Fprintf(&b, "INSERT INTO member (id, pool_id, ip_address, protocol_port, weight, operating_status, enabled, provisioning_status, monitor_address, monitor_port, backup) VALUES (%s, %s, %s, %d, 1, 'OFFLINE', true, 'ACTIVE', '127.0.0.1', %d, false);\n",
					q(m.ID), q(p.ID), q(m.Address), m.Port, m.LocalPort)
			}
			fmt.Fprintf(&b, "INSERT INTO listener (id, load_balancer_id, protocol, protocol_port, provisioning_status, operating_status, enabled, default_pool_id) VALUES (%s, %s, %s, %d, 'ACTIVE', 'OFFLINE', true, %s);\n",
				q(l.ID), q(lb.ID), q(l.Protocol), l.Port, q(p.ID))
		}
	}
	b.WriteString("COMMIT;\n")
	return b.String()
}

// WriteFleet writes everything the demo runs from into dir:
//
//	topology.json         what watch reads
//	octavia.conf          the health manager's config
//	seed.sql              the demo topology
//	members.json          the member servers and their behaviours
//	agents.txt            "amphora-id config-path" per line, for run.sh
//	amphorae/<id>/        each agent's config, LB description, spool
//	env.sh                shell variables for run.sh
func WriteFleet(dir string, t *Topology, metricsPort int) error {
	t.MetricsURL = fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort)
	t.StatusURL = fmt.Sprintf("http://127.0.0.1:%d/", metricsPort)
	var agents strings.Builder
	n := 0
	for i := range t.LBs {
		lb := &t.LBs[i]
		desc, err := json.MarshalIndent(AgentLB(*lb), "", "  ")
		if err != nil {
			return err
		}
		for j := range lb.Amphorae {
			a := &lb.Amphorae[j]
			n++
			adir := filepath.Join(dir, "amphorae", a.ID)
			if err := os.MkdirAll(filepath.Join(adir, "marks"), 0o755); err != nil {
				return err
			}
			lbFile := filepath.Join(adir, "amphora-lb.json")
			a.Config = filepath.Join(adir, "amphora-agent.conf")
			if err := os.WriteFile(lbFile, append(desc, '\n'), 0o644); err != nil {
				return err
			}
			if err := os.WriteFile(a.Config, []byte(AgentConfig(t, *a, adir, lbFile, n)), 0o600); err != nil {
				return err
			}
			fmt.Fprintf(&agents, "%s %s\n", a.ID, a.Config)
		}
	}
	if lb := t.LBOfMember(t.DrainedMember); lb != nil {
		t.DrainConfig = lb.Amphorae[0].Config
	}
	topo, err := json.MarshalIndent(t, "", "  ")
	if err != nil {
		return err
	}
	members, err := json.MarshalIndent(t.Members(), "", "  ")
	if err != nil {
		return err
	}
	files := map[string]string{
		"topology.json": string(topo) + "\n",
		"octavia.conf":  HMConfig(t, metricsPort),
		"seed.sql":      SeedSQL(t),
		"members.json":  string(members) + "\n",
		"agents.txt":    agents.String(),
		"env.sh": fmt.Sprintf("metrics_url=%s\nstatus_url=%s\nhm_udp_port=%d\namphorae=%d\nmembers=%d\nlbs=%d\nsilent_amphora=%s\n",
			t.MetricsURL, t.StatusURL, t.HMUDPPort, n, len(t.Members()), len(t.LBs), t.SilentAmphora),
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			return err
		}
	}
	return nil
}
