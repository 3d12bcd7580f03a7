package octaviaconf

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// FuzzLoad parses arbitrary octavia.conf text that follows a block of
// secrets: a [service_auth] password, heartbeat keys and a database URL
// carrying the same fuzzed password. Load must not panic, and neither its
// error nor its log may show the password or any 8-byte piece of it that
// the rest of the file, the package's fixed message texts or the messages
// for the same file under another password do not also contain (the text
// can pull secrets into other options through "$" substitution).
func FuzzLoad(f *testing.F) {
	sample, err := os.ReadFile("../../etc/octavia.conf")
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []struct{ text, scheme, password string }{
		{string(sample), "postgresql", "s3cret-passw0rd"},
		{"", "postgresql+psycopg2", "correct horse battery"},
		{"[health_manager]\nbind_ip = $heartbeat_key\n", "postgresql", "not-an-address"},
		{"[health_manager]\nbind_port = ${service_auth.password}\n", "postgresql", "secret-port-value"},
		{"[DEFAULT]\ndebug = ${database.connection}\n", "mysql", "p@ss/word:with@signs"},
		{"[database]\nmax_pool_size = ${health_manager.heartbeat_key_previous}\n", "postgresql", "'quoted, list"},
		{"[health_manager]\nheartbeat_key = $missing\n", "mysql+pymysql", "pass/with/slashes"},
		{"", "mysql+pymysql", "pass@with@signs"},
		{"[health_manager]\nbind_ip = ${database.connection}\n", "mysql+mysqldb", "percent%zzencoded"},
		{"  continued\n[health_manager]\nqueue_size = x\n", "sqlite", "dollar$reference"},
		{"[service_auth\npassword\n", "postgresql", "${unterminated"},
		{"[health_manager]\nheartbeat_key = a\n  b\n  c\nheartbeat_interval = 0\n", "postgres", "percent%zzencoded"},
	} {
		f.Add(s.text, s.scheme, s.password)
	}
	// The package's own source holds every fixed message text: a piece of
	// the password that is also one of those words was not shown for
	// being the password.
	var source strings.Builder
	files, err := filepath.Glob("*.go")
	if err != nil {
		f.Fatal(err)
	}
	// The URL parser's messages are the package's too.
	mysqlFiles, err := filepath.Glob("../mysqlconf/*.go")
	if err != nil {
		f.Fatal(err)
	}
	files = append(files, mysqlFiles...)
	for _, name := range files {
		if !strings.HasSuffix(name, "_test.go") {
			b, err := os.ReadFile(name)
			if err != nil {
				f.Fatal(err)
			}
			source.Write(b)
		}
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, text, scheme, password string) {
		password = strings.TrimSpace(password)
		if len(password) < 8 || strings.ContainsAny(password, "\r\n") || strings.ContainsAny(scheme, "\r\n") {
			return
		}
		head := "[service_auth]\npassword = " + password + "\n" +
			"[health_manager]\nheartbeat_key = " + password + "\nheartbeat_key_previous = other-key, " + password + "\n" +
			"[database]\nconnection = " + scheme + "://octavia:" + password + "@db.example/octavia\n"
		path := filepath.Join(dir, "octavia.conf")
		if err := os.WriteFile(path, []byte(head+text), 0o600); err != nil {
			t.Fatal(err)
		}
		var logs bytes.Buffer
		_, err := load(slog.New(slog.NewTextHandler(&logs, nil)), path)
		// The same file under another password of the same length: what
		// its error and log show did not come from the password.
		other := strings.Repeat("Q", len(password))
		if err := os.WriteFile(path, []byte(strings.ReplaceAll(head, password, other)+text), 0o600); err != nil {
			t.Fatal(err)
		}
		var otherLogs bytes.Buffer
		_, otherErr := load(slog.New(slog.NewTextHandler(&otherLogs, nil)), path)
		// What the error may show for reasons of its own, quoted as %q
		// quotes it too.
		public := path + "\n" + scheme + "\n" + scheme + "://octavia:@db.example/octavia\n" + text + "\n" + otherLogs.String() +
			"\n" + source.String()
		if otherErr != nil {
			public += "\n" + otherErr.Error()
		}
		for _, line := range strings.Split(public, "\n") {
			public += "\n" + strconv.Quote(line)
		}
		if err != nil {
			if err.Error() == "" {
				t.Fatal("an error without a message")
			}
			checkHidden(t, "error", err.Error(), password, public)
		}
		checkHidden(t, "log", logs.String(), password, public)
	})
}

// checkHidden fails when shown contains the secret, or an 8-byte piece of
// it, that public does not also contain.
func checkHidden(t *testing.T, what, shown, secret, public string) {
	t.Helper()
	if strings.Contains(shown, secret) && !strings.Contains(public, secret) {
		t.Fatalf("%s shows the secret %q:\n%s", what, secret, shown)
	}
	const piece = 8
	for i := 0; i+piece <= len(secret); i++ {
		p := secret[i : i+piece]
		if strings.Contains(shown, p) && !strings.Contains(public, p) {
			t.Fatalf("%s shows %q of the secret %q:\n%s", what, p, secret, shown)
		}
	}
}
