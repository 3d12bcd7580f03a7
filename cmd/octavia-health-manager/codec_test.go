package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// The binary is built once per test run and driven as an operator would.
var builtBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "hm-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "octavia-health-manager")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", &buildError{out: string(out), err: err}
	}
	return bin, nil
})

type buildError struct {
	out string
	err error
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + e.out }

type result struct {
	stdout, stderr string
	code           int
}

func runBinary(t *testing.T, stdin []byte, args ...string) result {
	t.Helper()
	bin, err := builtBinary()
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	code := 0
	if exitErr, ok := err.(*exec.ExitError); ok {
		code = exitErr.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v: %v", args, err)
	}
	return result{stdout.String(), stderr.String(), code}
}

type vector struct {
	Name                 string `json:"name"`
	Key                  string `json:"key"`
	JSONText             string `json:"json_text"`
	EnvelopeHexDigest    string `json:"envelope_hex_digest"`
	EnvelopeBinaryDigest string `json:"envelope_binary_digest"`
	EnvelopeHex          string `json:"envelope_hex"`
}

func loadVectors(t *testing.T) (valid, invalid map[string]vector) {
	t.Helper()
	raw, err := os.ReadFile("../../heartbeat/testdata/heartbeat-vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var vf struct{ Valid, Invalid []vector }
	if err := json.Unmarshal(raw, &vf); err != nil {
		t.Fatal(err)
	}
	valid, invalid = map[string]vector{}, map[string]vector{}
	for _, v := range vf.Valid {
		valid[v.Name] = v
	}
	for _, v := range vf.Invalid {
		invalid[v.Name] = v
	}
	return valid, invalid
}

func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := decodeHex([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeCommand(t *testing.T) {
	valid, invalid := loadVectors(t)
	tv2, tv3 := valid["TV2"], valid["TV3"]
	goodConf := writeFile(t, "good.conf", []byte("[health_manager]\nheartbeat_key = insecure\n"))
	wrongConf := writeFile(t, "wrong.conf", []byte("[health_manager]\nheartbeat_key = insecurE\n"))
	noKeyConf := writeFile(t, "nokey.conf", []byte("[health_manager]\nbind_port = 5555\n"))
	rawFile := writeFile(t, "tv2.bin", unhex(t, tv2.EnvelopeBinaryDigest))
	hexFile := writeFile(t, "tv2.hex", []byte(tv2.EnvelopeHexDigest[:100]+"\n  "+tv2.EnvelopeHexDigest[100:]+"\n"))

	cases := []struct {
		name       string
		stdin      []byte
		args       []string
		code       int
		stdout     string // exact, when the command succeeds
		stderrHas  string
		stdoutNone bool
	}{
		{name: "hex on stdin with --key",
			stdin: []byte(tv2.EnvelopeHexDigest), args: []string{"decode", "--key", "insecure", "--hex"},
			stdout: tv2.JSONText + "\n"},
		{name: "raw legacy datagram from a file, key from config",
			args:   []string{"--config-file", goodConf, "decode", rawFile},
			stdout: tv2.JSONText + "\n", stderrHas: "raw MAC form"},
		{name: "wrapped hex from a file",
			args:   []string{"decode", "--key", "insecure", "--hex", hexFile},
			stdout: tv2.JSONText + "\n"},
		{name: "non-ASCII key",
			stdin: []byte(tv3.EnvelopeHexDigest), args: []string{"decode", "--key", "sécret-ß", "--hex"},
			stdout: tv3.JSONText + "\n"},
		{name: "a later config file overrides an earlier one",
			stdin: []byte(tv2.EnvelopeHexDigest), args: []string{"--config-file", goodConf, "--config-file", wrongConf, "decode", "--hex"},
			code: exitRejected, stderrHas: "bad_mac", stdoutNone: true},
		{name: "--key overrides the config",
			stdin: []byte(tv2.EnvelopeHexDigest), args: []string{"--config-file", wrongConf, "decode", "--key", "insecure", "--hex"},
			stdout: tv2.JSONText + "\n"},
		{name: "wrong key",
			stdin: []byte(tv2.EnvelopeHexDigest), args: []string{"decode", "--key", "other", "--hex"},
			code: exitRejected, stderrHas: "bad_mac", stdoutNone: true},
		{name: "valid MAC, list instead of object",
			stdin: []byte(invalid["json_is_list_hexmac"].EnvelopeHex), args: []string{"decode", "--key", "insecure", "--hex"},
			code: exitRejected, stderrHas: "not_object", stdoutNone: true},
		{name: "truncated zlib",
			stdin: []byte(invalid["truncated_zlib_mid_stream_binmac"].EnvelopeHex), args: []string{"decode", "--key", "insecure", "--hex"},
			code: exitRejected, stderrHas: "not_zlib", stdoutNone: true},
		{name: "empty datagram",
			args: []string{"decode", "--key", "insecure"},
			code: exitRejected, stderrHas: "short", stdoutNone: true},
		{name: "not hex",
			stdin: []byte("78zz"), args: []string{"decode", "--key", "insecure", "--hex"},
			code: exitRejected, stderrHas: "not hex", stdoutNone: true},
		{name: "no key anywhere",
			stdin: []byte(tv2.EnvelopeHexDigest), args: []string{"--config-file", noKeyConf, "decode", "--hex"},
			code: exitUsage, stderrHas: "no heartbeat key", stdoutNone: true},
		{name: "missing config file",
			stdin: []byte(tv2.EnvelopeHexDigest), args: []string{"--config-file", "/nonexistent/octavia.conf", "decode", "--hex"},
			code: exitUsage, stderrHas: "/nonexistent/octavia.conf", stdoutNone: true},
		{name: "missing input file",
			args: []string{"decode", "--key", "k", "/nonexistent/datagram"},
			code: exitUsage, stderrHas: "/nonexistent/datagram", stdoutNone: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := runBinary(t, c.stdin, c.args...)
			if r.code != c.code {
				t.Fatalf("exit %d, want %d; stderr: %s", r.code, c.code, r.stderr)
			}
			if c.stdout != "" && r.stdout != c.stdout {
				t.Errorf("stdout\n got %q\nwant %q", r.stdout, c.stdout)
			}
			if c.stdoutNone && r.stdout != "" {
				t.Errorf("unexpected stdout %q", r.stdout)
			}
			if !strings.Contains(r.stderr, c.stderrHas) {
				t.Errorf("stderr %q does not contain %q", r.stderr, c.stderrHas)
			}
			if strings.Contains(r.stderr, "insecure") || strings.Contains(r.stderr, "sécret") {
				t.Errorf("stderr shows key material: %q", r.stderr)
			}
		})
	}
}

// Every valid vector decodes through the binary to its exact JSON text.
func TestDecodeCommandAllVectors(t *testing.T) {
	valid, _ := loadVectors(t)
	for name, v := range valid {
		if name == "octavia_unit_test_fixture" {
			// No "id": kept as Octavia keeps it, shown as sent, with a note.
			r := runBinary(t, []byte(v.EnvelopeHexDigest), "decode", "--key", v.Key, "--hex")
			if r.code != 0 || r.stdout != v.JSONText+"\n" || !strings.Contains(r.stderr, "irregular heartbeat (id: missing)") {
				t.Errorf("%s: exit %d stdout %q stderr %q, want the text and a note", name, r.code, r.stdout, r.stderr)
			}
			continue
		}
		r := runBinary(t, []byte(v.EnvelopeHexDigest), "decode", "--key", v.Key, "--hex")
		if r.code != 0 || r.stdout != v.JSONText+"\n" {
			t.Errorf("%s: exit %d stdout %q stderr %q", name, r.code, r.stdout, r.stderr)
		}
	}
}

func TestEncodeDecodeThroughTheBinary(t *testing.T) {
	valid, _ := loadVectors(t)
	for _, name := range []string{"TV1", "TV2", "hb16_v3_3l_3p_12m", "hb13_v0_3l_3p_9m"} {
		v := valid[name]
		enc := runBinary(t, []byte(v.JSONText), "encode", "--key", "k,with,commas", "--hex")
		if enc.code != 0 {
			t.Fatalf("%s: encode exit %d: %s", name, enc.code, enc.stderr)
		}
		dec := runBinary(t, []byte(enc.stdout), "decode", "--key", "k,with,commas", "--hex")
		if dec.code != 0 || dec.stdout != v.JSONText+"\n" {
			t.Errorf("%s: round trip gave exit %d %q, %s", name, dec.code, dec.stdout, dec.stderr)
		}
	}
	bad := runBinary(t, []byte(`{"listeners": {}}`), "encode", "--key", "k")
	if bad.code != exitRejected || !strings.Contains(bad.stderr, "malformed") || !strings.Contains(bad.stderr, "id") {
		t.Errorf("encoding a message without id: exit %d stderr %q", bad.code, bad.stderr)
	}
}
