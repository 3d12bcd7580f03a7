package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FuzzLoadConfig parses arbitrary amphora-agent.conf text that follows a
// fuzzed heartbeat key. LoadConfig must not panic; an error must not show
// the key; an accepted configuration must hold only usable values (every
// duration non-negative, the intervals the agent's tickers use positive).
func FuzzLoadConfig(f *testing.F) {
	sample, err := os.ReadFile("../etc/amphora-agent.conf")
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []struct{ text, key string }{
		{string(sample), "insecure-key"},
		{"[amphora_agent]\namphora_id = a\n", "a$$b # not a comment"},
		{"[amphora_agent]\namphora_id = a\n[health_manager]\nheartbeat_interval = 1e300\n", "some-long-key"},
		{"[amphora_agent]\namphora_id = a\nvpp_unreachable_limit = NaN\nshutdown_timeout = inf\n", "some-long-key"},
		{"[amphora_agent]\namphora_id = a\n[vpp]\nstartup_min_delay = 1e-12\nsync_interval = 0.0000000001\n", "some-long-key"},
		{"[vpp]\nflow_timeout = 1.5\nsticky_buckets_per_core = 3\nencap = gre9\n", "some-long-key"},
		{"[health_manager]\ncontroller_ip_port_list = a:b, [::1]:99999, 10.0.0.1\n", "some-long-key"},
		{"  continued\n[amphora_agent\n", "\"\"\"triple-quoted key"},
		{"[amphora_agent]\namphora_id = a\n[vpp]\ndataplane = ${health_manager.heartbeat_key}\n" +
			"[health_manager]\ncontroller_ip_port_list = $heartbeat_key\n", "first-half-key, second-half-key"},
	} {
		f.Add(s.text, s.key)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, text, key string) {
		key = strings.TrimSpace(key)
		if len(key) < 8 || strings.ContainsAny(key, "\r\n") {
			return
		}
		path := filepath.Join(dir, "amphora-agent.conf")
		if err := os.WriteFile(path, []byte("[health_manager]\nheartbeat_key = "+key+"\n"+text), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := LoadConfig(path)
		if err != nil {
			msg := err.Error()
			for i := 0; i+8 <= len(key); i++ {
				if p := key[i : i+8]; strings.Contains(msg, p) && !strings.Contains(path+"\n"+text, p) {
					t.Fatalf("error shows %q of the heartbeat key %q:\n%s", p, key, msg)
				}
			}
			return
		}
		for name, d := range map[string]time.Duration{
			"vpp_unreachable_limit": c.VPPUnreachableLimit, "shutdown_timeout": c.ShutdownTimeout,
			"flow_timeout": c.VPP.FlowTimeout, "startup_min_delay": c.VPP.StartupMinDelay,
			"startup_max_delay": c.VPP.StartupMaxDelay,
		} {
			if d < 0 {
				t.Fatalf("accepted a negative %s: %v", name, d)
			}
		}
		if c.HeartbeatInterval <= 0 || c.VPP.SyncInterval <= 0 {
			t.Fatalf("accepted intervals heartbeat %v, sync %v", c.HeartbeatInterval, c.VPP.SyncInterval)
		}
		if c.HeartbeatKey == "" || c.AmphoraID == "" {
			t.Fatalf("accepted without a key or amphora id: %+v", c)
		}
	})
}
