package agent

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadConfigSubstitution: amphora-agent.conf is read as oslo.config
// reads it, so "$name" takes an option of the same section (or
// [DEFAULT]), "${section.name}" names the section and "$$" is a "$".
func TestLoadConfigSubstitution(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "amphora-agent.conf", `[DEFAULT]
state = /srv/amphora
[amphora_agent]
amphora_id = amp-$$1
spool_dir = $state/marks
[health_manager]
heartbeat_key = insecure$$key
[haproxy_amphora]
base_path = ${DEFAULT.state}/octavia
[vpp]
lb_config_file = ${haproxy_amphora.base_path}/lb.json
`)
	c, err := LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, got, want string }{
		{"amphora_id", c.AmphoraID, "amp-$1"},
		{"spool_dir", c.SpoolDir, "/srv/amphora/marks"},
		{"heartbeat_key", c.HeartbeatKey, "insecure$key"},
		{"base_path", c.BasePath, "/srv/amphora/octavia"},
		{"lb_config_file", c.VPP.LBConfigFile, "/srv/amphora/octavia/lb.json"},
		{"counter file", c.CounterFile(), filepath.Join("/srv/amphora/octavia", CounterFileName)},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %q, want %q", tc.name, tc.got, tc.want)
		}
	}
}

// TestLoadConfigSubstitutionErrors: a reference to an option no file sets
// is an error naming the option, as in oslo.config; the configuration is
// still returned (a value problem, not a file problem), and an option that
// takes the heartbeat key never shows it in an error.
func TestLoadConfigSubstitutionErrors(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "amphora-agent.conf", `[amphora_agent]
amphora_id = a
status_bind = $nowhere:9446
[health_manager]
heartbeat_key = s3cret-key-material, m0re-key-material
controller_ip_port_list = $heartbeat_key
[vpp]
dataplane = ${health_manager.heartbeat_key}
`)
	c, err := LoadConfig(p)
	if c == nil || err == nil {
		t.Fatalf("LoadConfig = %v, %v; want the configuration and an error", c, err)
	}
	var fe *ConfigFileError
	if errors.As(err, &fe) {
		t.Fatalf("a substitution error reported as a file error: %v", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, "status_bind") || !strings.Contains(msg, "$nowhere") {
		t.Errorf("error %q does not name status_bind and its reference", msg)
	}
	if !strings.Contains(msg, "dataplane") || !strings.Contains(msg, "controller_ip_port_list") ||
		strings.Contains(msg, "s3cret") || strings.Contains(msg, "m0re") {
		t.Errorf("error %q: want the dataplane and controller problems without the key", msg)
	}
	if c.StatusBind != DefaultConfig().StatusBind {
		t.Errorf("status_bind = %q, want the default kept", c.StatusBind)
	}
}
