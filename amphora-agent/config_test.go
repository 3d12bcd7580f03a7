package agent

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/octavia-vpp/health/vpp"
)

func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadConfigOctaviaFile(t *testing.T) {
	dir := t.TempDir()
	// As Octavia's template renders it, plus the new [vpp] options.
	p := writeFile(t, dir, "amphora-agent.conf", `
[DEFAULT]
debug = False

[haproxy_amphora]
base_path = /var/lib/octavia-test

[health_manager]
controller_ip_port_list = 192.0.2.10:5555, [2001:db8::1]:5555, 2001:db8::2:5555, fe80::1%eth0:5555
heartbeat_interval = 5
heartbeat_key = a$$b # not a comment

[amphora_agent]
agent_server_ca = /etc/octavia/certs/client_ca.pem
amphora_id = 6d1c2f0e-1111-2222-3333-444455556666
allow_remote_marks = yes
heartbeat_zlib_level = 9
memory_limit_mib = 16

[vpp]
api_socket = /run/vpp/api2.sock
stats_socket =
dataplane = sim
lb_config_file = /etc/octavia/lb.json
ip4_src_address = 198.51.100.1
ip6_src_address = 2001:db8::100
sticky_buckets_per_core = 65536
flow_timeout = 60
encap = l3dsr
startup_min_delay = 0.5
`)
	c, err := LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig()
	want.AmphoraID = "6d1c2f0e-1111-2222-3333-444455556666"
	want.AllowRemoteMarks = true
	want.HeartbeatZlibLevel = 9
	want.MemoryLimitMiB = 16
	want.Controllers = []string{"192.0.2.10:5555", "[2001:db8::1]:5555", "2001:db8::2:5555", "fe80::1%eth0:5555"}
	want.HeartbeatInterval = 5 * time.Second
	want.HeartbeatKey = "a$b # not a comment"
	want.BasePath = "/var/lib/octavia-test"
	want.SpoolDir = "/var/lib/octavia-test/marks"
	want.VPP.APISocket = "/run/vpp/api2.sock"
	want.VPP.StatsSocket = ""
	want.VPP.Dataplane = "sim"
	want.VPP.LBConfigFile = "/etc/octavia/lb.json"
	want.VPP.IP4Src = netip.MustParseAddr("198.51.100.1")
	want.VPP.IP6Src = netip.MustParseAddr("2001:db8::100")
	want.VPP.StickyBucketsPerCore = 65536
	want.VPP.FlowTimeout = 60 * time.Second
	want.VPP.Encap = vpp.EncapL3DSR
	want.VPP.StartupMinDelay = 500 * time.Millisecond
	if !reflect.DeepEqual(*c, want) {
		t.Errorf("got  %+v\nwant %+v", *c, want)
	}
	if c.CounterFile() != "/var/lib/octavia-test/stats_counters.json" {
		t.Errorf("counter file %s", c.CounterFile())
	}

	// A later file overrides an earlier one.
	p2 := writeFile(t, dir, "override.conf", "[health_manager]\nheartbeat_interval = 2\n")
	c, err = LoadConfig(p, p2)
	if err != nil || c.HeartbeatInterval != 2*time.Second || c.AmphoraID != want.AmphoraID {
		t.Errorf("override: %v %+v", err, c)
	}
}

func TestLoadConfigErrors(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name, body string
		want       []string
	}{
		{"missing id and key", "[health_manager]\ncontroller_ip_port_list = 192.0.2.1:5555\n",
			[]string{"amphora_id is required", "heartbeat_key is required"}},
		{"every bad controller named, good ones kept", `[amphora_agent]
amphora_id = a
[health_manager]
heartbeat_key = k
controller_ip_port_list = 192.0.2.1, 192.0.2.2:5555, host-without-port, [2001:db8::1]5555
`, []string{`"192.0.2.1"`, `"host-without-port"`, `"[2001:db8::1]5555"`}},
		{"bad values", `[amphora_agent]
amphora_id = a
[health_manager]
heartbeat_key = k
heartbeat_interval = soon
[vpp]
encap = vxlan
ip4_src_address = nope
dataplane = dpdk
`, []string{"heartbeat_interval", "encap", "ip4_src_address"}},
		{"semantic", `[amphora_agent]
amphora_id = a
[health_manager]
heartbeat_key = k
[vpp]
dataplane = dpdk
sticky_buckets_per_core = 1000
startup_min_delay = 10
startup_max_delay = 5
`, []string{"dataplane", "power of two", "startup_max_delay"}},
		{"zlib level", "[amphora_agent]\namphora_id = a\nheartbeat_zlib_level = 0\n[health_manager]\nheartbeat_key = k\n",
			[]string{"heartbeat_zlib_level 0: want 1 to 9"}},
		{"zlib level not a number", "[amphora_agent]\namphora_id = a\nheartbeat_zlib_level = best\n[health_manager]\nheartbeat_key = k\n",
			[]string{"heartbeat_zlib_level"}},
		{"memory limit", "[amphora_agent]\namphora_id = a\nmemory_limit_mib = -1\n[health_manager]\nheartbeat_key = k\n",
			[]string{"memory_limit_mib"}},
	} {
		p := writeFile(t, dir, "c.conf", c.body)
		_, err := LoadConfig(p)
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not mention %s", c.name, err, w)
			}
		}
		if strings.Contains(err.Error(), "192.0.2.2:5555") {
			t.Errorf("%s: a good controller was reported: %v", c.name, err)
		}
	}
	if _, err := LoadConfig(filepath.Join(dir, "missing.conf")); err == nil || errors.Is(err, nil) {
		t.Error("missing file: no error")
	}
}
