package oslolog

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/octavia-vpp/health/internal/octaviaconf"
)

func TestFilePath(t *testing.T) {
	tests := []struct{ file, dir, want string }{
		{"", "", ""},
		{"/var/log/octavia/hm.log", "", "/var/log/octavia/hm.log"},
		{"hm.log", "/var/log/octavia", "/var/log/octavia/hm.log"},
		{"/srv/hm.log", "/var/log/octavia", "/srv/hm.log"},
		{"", "/var/log/octavia", "/var/log/octavia/prog.log"},
	}
	for _, tt := range tests {
		if got := FilePath(tt.file, tt.dir, "prog"); got != tt.want {
			t.Errorf("FilePath(%q, %q) = %q, want %q", tt.file, tt.dir, got, tt.want)
		}
	}
}

// TestFileReopenedAfterRename is logrotate's rotation: the file is
// renamed, Reopen (SIGHUP) is called, and the next lines land in a new
// file under the old name while the renamed one keeps the earlier lines.
func TestFileReopenedAfterRename(t *testing.T) {
	dir := t.TempDir()
	var stderr bytes.Buffer
	l, err := New(Options{Program: "prog", Logging: octaviaconf.Logging{LogDir: dir}, Stderr: &stderr})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	path := filepath.Join(dir, "prog.log")
	if l.Path != path {
		t.Fatalf("Path = %q, want %q", l.Path, path)
	}
	l.Info("before rotation", "n", 1)
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	l.Info("still to the renamed file", "n", 2)
	if err := l.Reopen(); err != nil {
		t.Fatal(err)
	}
	l.Warn("after rotation", "n", 3)

	old, _ := os.ReadFile(path + ".1")
	cur, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("no new file after Reopen: %v", err)
	}
	if !strings.Contains(string(old), "before rotation") || !strings.Contains(string(old), "still to the renamed file") ||
		strings.Contains(string(old), "after rotation") {
		t.Errorf("renamed file:\n%s", old)
	}
	if !strings.Contains(string(cur), `level=WARNING msg="after rotation" n=3`) || strings.Contains(string(cur), "before") {
		t.Errorf("new file:\n%s", cur)
	}
	if stderr.Len() != 0 {
		t.Errorf("standard error got lines while a log file is set:\n%s", stderr.String())
	}
}

func TestUseStderrAlongsideFile(t *testing.T) {
	dir := t.TempDir()
	var stderr bytes.Buffer
	l, err := New(Options{Program: "prog", Logging: octaviaconf.Logging{LogFile: "x.log", LogDir: dir, UseStderr: true}, Stderr: &stderr})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.Info("both")
	b, _ := os.ReadFile(filepath.Join(dir, "x.log"))
	if !strings.Contains(string(b), "both") || !strings.Contains(stderr.String(), "both") {
		t.Errorf("file %q, stderr %q: want the line in both", b, stderr.String())
	}
}

func TestUnopenableFileIsAnError(t *testing.T) {
	_, err := New(Options{Program: "prog", Logging: octaviaconf.Logging{LogFile: filepath.Join(t.TempDir(), "no", "such", "x.log")}})
	if err == nil {
		t.Fatal("a log file in a missing directory was accepted")
	}
}

// TestLevelNames: oslo's names, WARNING and CRITICAL included, in text
// and JSON alike; debug lines only with debug.
func TestLevelNames(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		for _, debug := range []bool{false, true} {
			var out bytes.Buffer
			l, err := New(Options{Program: "prog", Debug: debug, Format: format, Stderr: &out})
			if err != nil {
				t.Fatal(err)
			}
			l.Debug("d")
			l.Info("i")
			l.Warn("w")
			l.Error("e")
			l.Log(t.Context(), LevelCritical, "c")
			want := []string{"INFO", "WARNING", "ERROR", "CRITICAL"}
			if debug {
				want = append([]string{"DEBUG"}, want...)
			}
			var got []string
			for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
				if format == "json" {
					var m map[string]any
					if err := json.Unmarshal([]byte(line), &m); err != nil {
						t.Fatalf("%q: %v", line, err)
					}
					got = append(got, m["level"].(string))
					continue
				}
				_, rest, _ := strings.Cut(line, "level=")
				lvl, _, _ := strings.Cut(rest, " ")
				got = append(got, lvl)
			}
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("%s, debug %v: levels %v, want %v", format, debug, got, want)
			}
			l.Level.Set(slog.LevelDebug) // the level follows a reload
			out.Reset()
			l.Debug("now")
			if !strings.Contains(out.String(), "DEBUG") {
				t.Errorf("%s: no DEBUG line after Level.Set: %q", format, out.String())
			}
		}
	}
}

// TestJSONLines: use_json (or --log-format json) writes one object per
// line holding every attribute, those of With and groups too.
func TestJSONLines(t *testing.T) {
	for _, o := range []Options{
		{Logging: octaviaconf.Logging{UseJSON: true}},
		{Format: "json"},
	} {
		dir := t.TempDir()
		o.Program, o.LogDir = "prog", dir
		l, err := New(o)
		if err != nil {
			t.Fatal(err)
		}
		l.With("amphora_id", "amp-1").Warn("stale", "age", 61*time.Second, slog.Group("db", "rows", 3))
		l.Info("multi\nline \"quoted\"")
		l.Close()
		b, _ := os.ReadFile(filepath.Join(dir, "prog.log"))
		lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
		if len(lines) != 2 {
			t.Fatalf("%d lines, want 2:\n%s", len(lines), b)
		}
		var first, second map[string]any
		if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(lines[1]), &second); err != nil {
			t.Fatal(err)
		}
		if first["level"] != "WARNING" || first["msg"] != "stale" || first["amphora_id"] != "amp-1" ||
			first["age"] != float64(61*time.Second) || first["db"].(map[string]any)["rows"] != float64(3) || first["time"] == nil {
			t.Errorf("first line: %v", first)
		}
		if second["msg"] != "multi\nline \"quoted\"" {
			t.Errorf("second line: %v", second)
		}
	}
}

func TestBadFormat(t *testing.T) {
	if _, err := New(Options{Format: "xml"}); err == nil {
		t.Error("--log-format xml accepted")
	}
}

func TestParseFacility(t *testing.T) {
	tests := []struct {
		in   string
		want Facility
		ok   bool
	}{
		{"", 1, true}, {"LOG_USER", 1, true}, {"user", 1, true}, {"log_local0", 16, true},
		{"LOCAL7", 23, true}, {"daemon", 3, true}, {"LOG_BOGUS", 0, false}, {"local8", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseFacility(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseFacility(%q) = %d, %v; want %d, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
	if _, err := New(Options{Logging: octaviaconf.Logging{SyslogLogFacility: "bogus"}}); err == nil {
		t.Error("New accepted syslog_log_facility = bogus")
	}
}

// TestSyslog sends to a stand-in for /dev/log: a unixgram socket.
func TestSyslog(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "log")
	pc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	var stderr bytes.Buffer
	l, err := New(Options{
		Program: "octavia-health-manager",
		Logging: octaviaconf.Logging{UseSyslog: true, SyslogLogFacility: "LOG_LOCAL0"},
		Stderr:  &stderr, syslogNetwork: "unixgram", syslogAddr: sock,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.Warn("amphora stale", "amphora_id", "amp-1")
	l.Error("db down")
	want := []string{
		"<132>", // local0 (16) * 8 + warning (4)
		"<131>", // local0 * 8 + err (3)
	}
	buf := make([]byte, 4096)
	for i, w := range want {
		pc.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := pc.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		msg := string(buf[:n])
		if !strings.HasPrefix(msg, w) || !strings.Contains(msg, "octavia-health-manager[") {
			t.Errorf("datagram %d = %q, want priority %s and the tag", i, msg, w)
		}
		if i == 0 && (!strings.Contains(msg, `level=WARNING msg="amphora stale" amphora_id=amp-1`) || strings.Contains(msg, "time=")) {
			t.Errorf("datagram %q: want the text line without its own time", msg)
		}
	}
	// Syslog is in addition to the usual output.
	if !strings.Contains(stderr.String(), "db down") {
		t.Errorf("standard error: %q", stderr.String())
	}
}

func TestSyslogUnreachableIsAnError(t *testing.T) {
	_, err := New(Options{Logging: octaviaconf.Logging{UseSyslog: true}, syslogNetwork: "unixgram",
		syslogAddr: filepath.Join(t.TempDir(), "none")})
	if err == nil {
		t.Error("use_syslog with no daemon accepted")
	}
}

func TestJournalUsable(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "socket")
	pc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o600)
	if err := journalUsable(sock); err != nil {
		t.Errorf("a unixgram socket: %v", err)
	}
	if err := journalUsable(file); err == nil {
		t.Error("a regular file taken for the journal")
	}
	if err := journalUsable(filepath.Join(dir, "none")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a missing socket: %v", err)
	}
}

func TestJournalField(t *testing.T) {
	for in, want := range map[string]string{
		"amphora_id": "AMPHORA_ID", "listener-id": "LISTENER_ID", "db.rows": "DB_ROWS",
		"_secret": "F__SECRET", "3x": "F_3X", "": "F_",
	} {
		if got := journalField(in); got != want {
			t.Errorf("journalField(%q) = %q, want %q", in, got, want)
		}
	}
}
