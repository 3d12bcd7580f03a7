package main

import (
	"bytes"
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	agent "github.com/octavia-vpp/health/amphora-agent"
	"github.com/octavia-vpp/health/heartbeat"
	"github.com/octavia-vpp/health/vpp/sim"
)

// run runs the CLI and returns its output and exit code.
func run(t *testing.T, args ...string) (string, int) {
	t.Helper()
	var out bytes.Buffer
	app := newApp(&out)
	app.ExitErrHandler = func(*cli.Context, error) {}
	err := app.Run(append([]string{"amphora-agent"}, args...))
	var coder cli.ExitCoder
	switch {
	case err == nil:
		return out.String(), 0
	case errors.As(err, &coder):
		return out.String() + err.Error(), coder.ExitCode()
	default:
		return out.String() + err.Error(), -1
	}
}

const lbValid = `{"loadbalancer_id": "lb", "vip_addresses": ["192.0.2.10"],
 "listeners": [{"id": "l1", "protocol": "TCP", "protocol_port": 80, "default_pool_id": "p1"}],
 "pools": [{"id": "p1", "members": [{"id": "m1", "address": "10.0.0.1", "protocol_port": 80}]}]}`

func setup(t *testing.T, lb, statusBind string) (dir, conf string) {
	t.Helper()
	dir = t.TempDir()
	lbPath := filepath.Join(dir, "lb.json")
	if err := os.WriteFile(lbPath, []byte(lb), 0o600); err != nil {
		t.Fatal(err)
	}
	conf = filepath.Join(dir, "amphora-agent.conf")
	body := "[amphora_agent]\namphora_id = amp\nstatus_bind = " + statusBind +
		"\n[health_manager]\nheartbeat_key = k\ncontroller_ip_port_list = 127.0.0.1:9\nheartbeat_interval = 0.05\n" +
		"[haproxy_amphora]\nbase_path = " + dir + "\n[vpp]\ndataplane = sim\nlb_config_file = " + lbPath +
		"\nstartup_min_delay = 0\nstartup_max_delay = 1\n"
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir, conf
}

func TestCheckConfigExitCodes(t *testing.T) {
	// A description with several problems, each of which must be named.
	lbSemantic := `{"loadbalancer_id": "lb", "vip_addresses": ["192.0.2.10", "nope"],
 "listeners": [{"id": "l1", "protocol": "SCTP", "protocol_port": 80, "default_pool_id": "p2"}],
 "pools": [{"id": "p1", "members": [{"id": "m1", "address": "10.0.0.1", "protocol_port": 0}]}]}`
	for _, c := range []struct {
		name string
		lb   string
		conf string // appended to the valid config
		code int
		want []string
	}{
		{"valid", lbValid, "", exitOK, []string{"ok: amphora amp"}},
		{"lb parse error", `{"loadbalancer_id": `, "", exitParse, []string{"parse lb description", "1 problem(s)"}},
		{"lb unknown field", `{"loadbalancer": "x"}`, "", exitParse, []string{"unknown field"}},
		{"lb semantic errors", lbSemantic, "", exitSemantic, []string{
			`vip address "nope"`, `protocol "SCTP"`, "p2 is not a pool", "protocol_port 0", "4 problem(s)",
		}},
		{"config semantic errors", lbValid, "[health_manager]\ncontroller_ip_port_list = nope\nheartbeat_interval = soon\n" +
			"[vpp]\nencap = vxlan\nstartup_min_delay = 9\n",
			exitSemantic, []string{`"nope"`, "heartbeat_interval", "encap", "startup_max_delay", "4 problem(s)"}},
		{"config and lb semantic errors", lbSemantic, "[vpp]\ndataplane = dpdk\n", exitSemantic,
			[]string{"dataplane", "p2 is not a pool", "5 problem(s)"}},
		{"config substitution", lbValid, "[vpp]\nlb_config_file = ${haproxy_amphora.base_path}/lb.json\n", exitOK,
			[]string{"ok: amphora amp"}},
		{"config substitution error", lbValid, "[vpp]\ndataplane = $nowhere\n", exitSemantic,
			[]string{"dataplane", `"$nowhere" refers to an option that is not set`, "1 problem(s)"}},
		{"parse error wins over semantic errors", `{`, "[vpp]\ndataplane = dpdk\n", exitParse,
			[]string{"dataplane", "parse lb description", "2 problem(s)"}},
	} {
		_, conf := setup(t, c.lb, "")
		if c.conf != "" {
			f, err := os.OpenFile(conf, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteString(c.conf); err != nil {
				t.Fatal(err)
			}
			f.Close()
		}
		for _, args := range [][]string{{"--config-file", conf, "check-config"}, {"--config-file", conf, "--check"}} {
			out, code := run(t, args...)
			if code != c.code {
				t.Errorf("%s %v: exit %d, want %d\n%s", c.name, args[2:], code, c.code, out)
			}
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Errorf("%s %v: output lacks %q\n%s", c.name, args[2:], w, out)
				}
			}
		}
	}
	dir := t.TempDir()
	broken := filepath.Join(dir, "broken.conf")
	if err := os.WriteFile(broken, []byte("[vpp\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, code := run(t, "--config-file", broken, "--config-file", filepath.Join(dir, "missing.conf"), "--check")
	if code != exitParse || !strings.Contains(out, "broken.conf") || !strings.Contains(out, "missing.conf") {
		t.Errorf("unparsable config files: exit %d\n%s", code, out)
	}
}

// TestSampleFilesPassCheck keeps etc/'s samples valid: the sample config
// with the sample LB description passes --check.
func TestSampleFilesPassCheck(t *testing.T) {
	override := filepath.Join(t.TempDir(), "override.conf")
	if err := os.WriteFile(override, []byte("[vpp]\nlb_config_file = ../../etc/amphora-lb.json\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, code := run(t, "--config-file", "../../etc/amphora-agent.conf", "--config-file", override, "--check")
	if code != exitOK || !strings.Contains(out, "ok: amphora") {
		t.Errorf("samples: exit %d\n%s", code, out)
	}
}

func TestMarkCommands(t *testing.T) {
	dir, conf := setup(t, lbValid, "")
	if out, code := run(t, "--config-file", conf, "drain", "m1", "--reason", "kernel update", "--expires", "2h"); code != 0 {
		t.Fatalf("drain: %d %s", code, out)
	}
	if out, code := run(t, "--config-file", conf, "maint", "--reason=move", "l1"); code != 0 {
		t.Fatalf("maint: %d %s", code, out)
	}
	out, _ := run(t, "--config-file", conf, "marks")
	if !strings.Contains(out, `m1 drain`) || !strings.Contains(out, `reason="kernel update"`) || !strings.Contains(out, "l1 maint") {
		t.Errorf("marks: %q", out)
	}
	if _, err := os.Stat(filepath.Join(dir, "marks", "m1.json")); err != nil {
		t.Errorf("spool file: %v", err)
	}
	run(t, "--config-file", conf, "up", "m1")
	out, _ = run(t, "--config-file", conf, "marks")
	if strings.Contains(out, "m1") {
		t.Errorf("after up: %q", out)
	}
	for _, args := range [][]string{{"drain"}, {"drain", "a", "b"}, {"drain", "../x"}, {"drain", "m1", "--expires", "soon"}, {"drain", "m1", "--color", "red"}} {
		if _, code := run(t, append([]string{"--config-file", conf}, args...)...); code != exitSemantic {
			t.Errorf("%v: exit %d", args, code)
		}
	}
}

func TestStatusHeartbeatPrintAndCounters(t *testing.T) {
	srv := httptest.NewUnstartedServer(nil)
	bind := srv.Listener.Addr().String()
	_, conf := setup(t, lbValid, bind)
	cfg, err := agent.LoadConfig(conf)
	if err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(agent.Options{Config: cfg, Dataplane: sim.New(sim.Config{}), Tick: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = agent.NewAPI(agent.APIConfig{Agent: a})
	srv.Start()
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- a.Run(ctx) }()
	defer func() { cancel(); <-done }()

	deadline := time.Now().Add(5 * time.Second)
	for a.Sensor().Record().LastSend.IsZero() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	out, code := run(t, "--config-file", conf, "heartbeat", "--print")
	if code != 0 {
		t.Fatalf("heartbeat --print: %d %s", code, out)
	}
	m, err := heartbeat.DecodeMessage([]byte(out))
	if err != nil || m.Version != 3 || m.AmphoraID != "amp" || len(m.Pools) != 1 || m.Pools[0].Members[0].Status != "no check" {
		t.Errorf("printed message %q: %v", out, err)
	}
	out, code = run(t, "--config-file", conf, "status")
	if code != 0 || !strings.Contains(out, "amphora amp: healthy") || !strings.Contains(out, `member m1 10.0.0.1 "no check" weight=1`) {
		t.Errorf("status: %d %q", code, out)
	}
	// The first heartbeat may go out before the VIP's first counters (the
	// heartbeat schedule does not wait for VPP); a later one writes l1.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		out, code = run(t, "--config-file", conf, "counters")
		if code == 0 && strings.Contains(out, "l1") {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("counters: %d %q", code, out)
			break
		}
	}
	// A refused description is named, with its reason, while the valid
	// one keeps running.
	if err := os.WriteFile(cfg.VPP.LBConfigFile, []byte(`{"loadbalancer_id": `), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(context.Background()); err == nil {
		t.Fatal("a broken description was accepted")
	}
	out, _ = run(t, "--config-file", conf, "status")
	if !strings.Contains(out, "lb description rejected: parse lb description: unexpected EOF") {
		t.Errorf("status after a refused description: %q", out)
	}
}
