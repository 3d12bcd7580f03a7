package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/octavia-vpp/health/internal/oslocli"
	"github.com/octavia-vpp/health/internal/version"
)

// The agent's tests run one after another, so they may change
// defaultConfig.

func TestDefaultConfigIsOctavias(t *testing.T) {
	// Octavia's amphora agent reads this file (its systemd unit and
	// server.py's AMP_AGENT_CONF_PATH).
	if defaultConfig.Path != "/etc/octavia/amphora-agent.conf" || defaultConfig.IfExists {
		t.Errorf("default config %+v, want /etc/octavia/amphora-agent.conf, required", defaultConfig)
	}
}

func TestConfigDirAndDefault(t *testing.T) {
	dir, conf := setup(t, lbValid, "")
	confd := filepath.Join(dir, "amphora-agent.conf.d")
	for name, id := range map[string]string{"20-b.conf": "amp-20", "10-a.conf": "amp-10", ".hidden.conf": "amp-hidden", "30-c.conf.bak": "amp-30"} {
		if err := os.MkdirAll(confd, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(confd, name), []byte("[amphora_agent]\namphora_id = "+id+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	missing := filepath.Join(dir, "missing.conf")
	saved := defaultConfig
	t.Cleanup(func() { defaultConfig = saved })

	tests := []struct {
		name    string
		defPath string
		args    []string
		code    int
		want    string
	}{
		{"file only", missing, []string{"--config-file", conf}, exitOK, "ok: amphora amp,"},
		{"dir after the file, last name wins", missing, []string{"--config-file", conf, "--config-dir", confd}, exitOK, "ok: amphora amp-20,"},
		{"dir first on the command line, still read last", missing, []string{"--config-dir", confd, "--config-file", conf}, exitOK, "ok: amphora amp-20,"},
		{"default file", conf, nil, exitOK, "ok: amphora amp,"},
		{"default file and dir", conf, []string{"--config-dir", confd}, exitOK, "ok: amphora amp-20,"},
		{"missing default is an error naming it", missing, nil, exitParse, "missing.conf"},
		{"missing dir", conf, []string{"--config-dir", filepath.Join(dir, "nope.d")}, exitSemantic, "config dir"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			defaultConfig = oslocli.Default{Path: tc.defPath}
			out, code := run(t, append(tc.args, "--check")...)
			if code != tc.code || !strings.Contains(out, tc.want) {
				t.Errorf("exit %d, want %d; output lacks %q?\n%s", code, tc.code, tc.want, out)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"--version", "status"}} {
		out, code := run(t, args...)
		if want := "amphora-agent " + version.String() + "\n"; code != 0 || out != want {
			t.Errorf("%q: exit %d, output %q, want 0 and %q", args, code, out, want)
		}
	}
}
