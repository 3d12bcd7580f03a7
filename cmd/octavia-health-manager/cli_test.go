package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/octavia-vpp/health/internal/oslocli"
	"github.com/octavia-vpp/health/internal/version"
)

func writeFile(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func port(n string) string { return "[health_manager]\nbind_port = " + n + "\n" }

// TestConfigDir: --check names the files in the order they were read, and
// its "listen" shows which value won.
func TestConfigDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	base := writeFile(t, filepath.Join(dir, "octavia.conf"), validCheckConf+port("5001"))
	override := writeFile(t, filepath.Join(dir, "override.conf"), port("5002"))
	confd := filepath.Join(dir, "octavia.conf.d")
	d10 := writeFile(t, filepath.Join(confd, "10-site.conf"), port("5010"))
	d20 := writeFile(t, filepath.Join(confd, "20-host.conf"), port("5020"))
	writeFile(t, filepath.Join(confd, "30-ignored.conf.dpkg-old"), port("5030"))
	second := filepath.Join(dir, "second.d")
	s1 := writeFile(t, filepath.Join(second, "1.conf"), "[health_manager]\nbind_ip = 127.0.0.2\n")
	nobind := filepath.Join(dir, "nobind.d")
	n1 := writeFile(t, filepath.Join(nobind, "a.conf"), "[DEFAULT]\ndebug = true\n")

	tests := []struct {
		name  string
		args  []string
		files []string
		port  string
	}{
		{"files only, later wins", []string{"--config-file", base, "--config-file", override},
			[]string{base, override}, "5002"},
		{"dir after the files, in name order", []string{"--config-file", base, "--config-dir", confd, "--config-file", override},
			[]string{base, override, d10, d20}, "5020"},
		{"dir given first is still read last", []string{"--config-dir", confd, "--config-file", base},
			[]string{base, d10, d20}, "5020"},
		{"two dirs in order", []string{"--config-file", base, "--config-dir", confd, "--config-dir", second},
			[]string{base, d10, d20, s1}, "5020"},
		{"dir without the option keeps the file's", []string{"--config-file", base, "--config-dir", nobind},
			[]string{base, n1}, "5001"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := runApp(t, append(tc.args, "--check")...)
			if r.code != checkOK {
				t.Fatalf("exit %d: %s%s", r.code, r.stdout, r.stderr)
			}
			want := "ok: " + strings.Join(tc.files, ", ") + " (listen "
			if !strings.HasPrefix(r.stdout, want) {
				t.Errorf("stdout %q, want it to start with %q", r.stdout, want)
			}
			if !strings.Contains(r.stdout, ":"+tc.port+",") {
				t.Errorf("stdout %q, want port %s", r.stdout, tc.port)
			}
		})
	}

	r := runApp(t, "--config-file", base, "--config-dir", filepath.Join(dir, "missing.d"), "--check")
	if r.code != exitUsage || !strings.Contains(r.stderr, "config dir") {
		t.Errorf("missing dir: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestDefaultConfigFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	def := writeFile(t, filepath.Join(dir, "etc", "octavia.conf"), validCheckConf+port("5100"))
	other := writeFile(t, filepath.Join(dir, "other.conf"), validCheckConf+port("5200"))
	confd := filepath.Join(dir, "octavia.conf.d")
	d := writeFile(t, filepath.Join(confd, "x.conf"), port("5300"))
	// The default directory is beside the default file:
	// <default>.d, as /etc/octavia/octavia.conf.d.
	defd := writeFile(t, def+".d/50-local.conf", port("5400"))

	tests := []struct {
		name    string
		defPath string
		args    []string
		code    int
		out     string // prefix of stdout, or substring of stderr on failure
	}{
		// As oslo.config: --config-file replaces the default file only.
		{"--config-file replaces the default file, not the dir", def, []string{"--config-file", other}, checkOK, "ok: " + other + ", " + defd + " (listen 127.0.0.1:5400"},
		{"--config-file and --config-dir replace both", def, []string{"--config-file", other, "--config-dir", confd}, checkOK, "ok: " + other + ", " + d + " (listen 127.0.0.1:5300"},
		{"--config-dir replaces the default dir, not the file", def, []string{"--config-dir", confd}, checkOK, "ok: " + def + ", " + d + " (listen 127.0.0.1:5300"},
		{"default file, then the default dir beside it", def, nil, checkOK, "ok: " + def + ", " + defd + " (listen 127.0.0.1:5400"},
		{"missing default is no error by itself", filepath.Join(dir, "none.conf"), []string{"--config-dir", confd}, checkSemantic, "heartbeat_key"},
		{"nothing at all", filepath.Join(dir, "none.conf"), nil, checkParse, "no config file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := runWithDefault(t, tc.defPath, append(tc.args, "--check")...)
			if r.code != tc.code {
				t.Fatalf("exit %d, want %d: %s%s", r.code, tc.code, r.stdout, r.stderr)
			}
			if tc.code == checkOK && !strings.HasPrefix(r.stdout, tc.out) {
				t.Errorf("stdout %q, want prefix %q", r.stdout, tc.out)
			}
			if tc.code != checkOK && !strings.Contains(r.stderr, tc.out) {
				t.Errorf("stderr %q, want %q", r.stderr, tc.out)
			}
		})
	}
}

// runWithDefault is runApp with the default config file at path.
func runWithDefault(t *testing.T, path string, args ...string) result {
	t.Helper()
	appMu.Lock()
	saved := defaultConfig
	defaultConfig = oslocli.Default{Path: path, IfExists: true, Dir: path + ".d"}
	appMu.Unlock()
	defer func() {
		appMu.Lock()
		defaultConfig = saved
		appMu.Unlock()
	}()
	return runApp(t, args...)
}

func TestVersion(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"--version"}, {"--version", "migrate"}, {"--config-dir", "/nonexistent", "--version"}} {
		r := runApp(t, args...)
		if want := "octavia-health-manager " + version.String() + "\n"; r.code != 0 || r.stdout != want {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want 0 and %q", args, r.code, r.stdout, r.stderr, want)
		}
	}
}
