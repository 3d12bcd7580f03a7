package oslolog

import (
	"bytes"
	"encoding/binary"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/octavia-vpp/health/internal/octaviaconf"
)

const journalChildEnv = "OSLOLOG_JOURNAL_CHILD"

// TestJournal runs TestJournalChild in a mount namespace of its own
// with an empty /run, where it can put a stand-in journald socket at the
// path the journal library writes to without touching the machine's.
// It skips where namespaces are not allowed (not root, no unshare).
func TestJournal(t *testing.T) {
	if os.Getenv(journalChildEnv) != "" {
		t.Skip("in the child")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("no unshare(1)")
	}
	if err := exec.Command(unshare, "-m", "true").Run(); err != nil {
		t.Skipf("no private mount namespace here (%v)", err)
	}
	cmd := exec.Command(unshare, "-m", "--propagation", "private", "sh", "-c",
		`mount -t tmpfs tmpfs /run && exec "$0" -test.run '^TestJournalChild$' -test.v -test.count=1`, os.Args[0])
	cmd.Env = append(os.Environ(), journalChildEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestJournalChild") {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

func TestJournalChild(t *testing.T) {
	if os.Getenv(journalChildEnv) == "" {
		t.Skip("run by TestJournal")
	}
	// No socket yet: the lines go to standard error, with a warning.
	var stderr bytes.Buffer
	l, err := New(Options{Program: "prog", Logging: octaviaconf.Logging{UseJournal: true}, Stderr: &stderr})
	if err != nil {
		t.Fatal(err)
	}
	l.Info("fallback line")
	if l.Journal || !strings.Contains(stderr.String(), "use_journal: no journal") || !strings.Contains(stderr.String(), "fallback line") {
		t.Fatalf("without a journal socket: journal %v, stderr %q", l.Journal, stderr.String())
	}

	if err := os.MkdirAll(filepath.Dir(DefaultJournalSocket), 0o755); err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: DefaultJournalSocket, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	stderr.Reset()
	l, err = New(Options{Program: "prog", Logging: octaviaconf.Logging{UseJournal: true, SyslogLogFacility: "local1"}, Stderr: &stderr})
	if err != nil {
		t.Fatal(err)
	}
	if !l.Journal {
		t.Fatal("journal socket present, journal not used")
	}
	l.With("amphora_id", "amp-1").Warn("amphora stale", "listener-id", "l1", "detail", "two\nlines")
	l.Log(t.Context(), LevelCritical, "critical")
	if stderr.Len() != 0 {
		t.Errorf("standard error used beside the journal: %q", stderr.String())
	}
	buf := make([]byte, 65536)
	for i, want := range []map[string]string{
		{"MESSAGE": "amphora stale", "PRIORITY": "4", "LOGGER_LEVEL": "WARNING", "AMPHORA_ID": "amp-1",
			"LISTENER_ID": "l1", "DETAIL": "two\nlines", "SYSLOG_FACILITY": "17"},
		{"MESSAGE": "critical", "PRIORITY": "2", "LOGGER_LEVEL": "CRITICAL"},
	} {
		pc.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := pc.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		fields := parseJournal(t, buf[:n])
		for k, v := range want {
			if fields[k] != v {
				t.Errorf("message %d: %s = %q, want %q (all: %q)", i, k, fields[k], v, fields)
			}
		}
		if fields["SYSLOG_IDENTIFIER"] == "" || !strings.HasSuffix(fields["CODE_FILE"], "journal_test.go") ||
			fields["CODE_LINE"] == "" || fields["CODE_FUNC"] == "" {
			t.Errorf("message %d: identifier or CODE_* fields missing: %q", i, fields)
		}
	}
}

// parseJournal reads journald's native protocol: KEY=value lines, or
// KEY, newline, a 64-bit little-endian length and the value.
func parseJournal(t *testing.T, b []byte) map[string]string {
	t.Helper()
	out := map[string]string{}
	for len(b) > 0 {
		nl := bytes.IndexByte(b, '\n')
		if nl < 0 {
			t.Fatalf("unterminated field %q", b)
		}
		line := b[:nl]
		if k, v, ok := bytes.Cut(line, []byte("=")); ok {
			out[string(k)] = string(v)
			b = b[nl+1:]
			continue
		}
		rest := b[nl+1:]
		if len(rest) < 8 {
			t.Fatalf("short binary field %q", b)
		}
		n := binary.LittleEndian.Uint64(rest)
		out[string(line)] = string(rest[8 : 8+n])
		b = rest[8+n+1:]
	}
	return out
}
