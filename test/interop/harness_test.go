//go:build interop

// Package interop runs Octavia 11.0.0's own code (Debian's python3-octavia)
// next to ours and requires identical results. See README.md.
package interop

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/octavia-vpp/health/internal/testproc"
	"github.com/octavia-vpp/health/test/mysqltest"
	"github.com/octavia-vpp/health/test/pgtest"
)

// TestMain runs a throwaway PostgreSQL and, for the MariaDB runs
// (mariadb_test.go), a throwaway MariaDB, each started on first use.
func TestMain(m *testing.M) {
	os.Exit(mysqltest.Wrap(func() int { return pgtest.Run(m) }))
}

// python is Debian's interpreter, where apt installs python3-octavia; a
// python3 earlier on PATH (pyenv, a venv) would not see Octavia.
const python = "/usr/bin/python3"

// glue runs a subcommand of octavia_glue.py. Requests and replies are JSON
// lines.
func glue(t testing.TB, stdin []byte, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(python, append([]string{"octavia_glue.py"}, args...)...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("octavia_glue.py %s: %v\n%s", strings.Join(args, " "), err, tail(stderr.String(), 4000))
	}
	return stdout.Bytes()
}

// glueLines sends one request per line and decodes one reply per line.
func glueLines[Req, Resp any](t testing.TB, cmd string, reqs []Req) []Resp {
	t.Helper()
	var in bytes.Buffer
	enc := json.NewEncoder(&in)
	for _, r := range reqs {
		if err := enc.Encode(r); err != nil {
			t.Fatal(err)
		}
	}
	out := glue(t, in.Bytes(), cmd)
	var resps []Resp
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var r Resp
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("%s reply %q: %v", cmd, sc.Text(), err)
		}
		resps = append(resps, r)
	}
	if len(resps) != len(reqs) {
		t.Fatalf("%s: %d replies to %d requests", cmd, len(resps), len(reqs))
	}
	return resps
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// binary builds cmd/octavia-health-manager once per test run.
func binary(t testing.TB) string {
	t.Helper()
	return testproc.Binary(t, "github.com/octavia-vpp/health/cmd/octavia-health-manager")
}

// ours runs our binary with a config naming the database, as the Octavia
// side is configured: stats_db, compute_noop_driver. Keys are passed with
// --key, so that any string can be one.
func ours(t testing.TB, dir, url string, args ...string) string {
	t.Helper()
	conf := filepath.Join(dir, "octavia.conf")
	text := fmt.Sprintf("[database]\nconnection = %s\n"+
		"[controller_worker]\ncompute_driver = compute_noop_driver\nstatistics_drivers = stats_db\n", url)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary(t), append([]string{"--config-file", conf}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("octavia-health-manager %s: %v\n%s\n%s", strings.Join(args, " "), err, stdout.String(), tail(stderr.String(), 4000))
	}
	return stdout.String()
}

// octaviaDB is a fresh database with the schema Octavia's SQLAlchemy models
// create, and the lookup rows its migrations seed.
func octaviaDB(t testing.TB) string {
	t.Helper()
	return cloneDB(t, "octavia", func(url string) { glue(t, nil, "schema", url) })
}

// migratedDB is a fresh database built by our own `migrate` command.
func migratedDB(t testing.TB) string {
	t.Helper()
	return cloneDB(t, "migrated", func(url string) { ours(t, t.TempDir(), url, "migrate") })
}

var (
	templateMu sync.Mutex
	templates  = map[string]bool{}
	cloneSeq   atomic.Int64
)

// cloneDB copies a template database, built by build on first use, so that
// Octavia's slow start-up and our migrate run once per test binary, not
// once per database. Templates live until the test cluster stops; clones
// are dropped when the test ends.
func cloneDB(t testing.TB, kind string, build func(url string)) string {
	t.Helper()
	ctx := context.Background()
	scratch := pgtest.NewEmptyDB(t)
	admin, err := pgx.Connect(ctx, withDB(t, scratch, "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	tpl := "interop_tpl_" + kind
	templateMu.Lock()
	defer templateMu.Unlock()
	if !templates[kind] {
		if _, err := admin.Exec(ctx, "CREATE DATABASE "+tpl+" TEMPLATE template0"); err != nil {
			t.Fatalf("create %s: %v", tpl, err)
		}
		build(withDB(t, scratch, tpl))
		templates[kind] = true
	}
	name := fmt.Sprintf("interop_%s_%d_%d", kind, os.Getpid(), cloneSeq.Add(1))
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name+" TEMPLATE "+tpl); err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(ctx, withDB(t, scratch, "postgres"))
		if err != nil {
			t.Errorf("drop %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop %s: %v", name, err)
		}
	})
	return withDB(t, scratch, name)
}

// withDB is url with its database name replaced.
func withDB(t testing.TB, raw, db string) string {
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + db
	return u.String()
}

// envUint reads an unsigned number from the environment, nil when unset.
func envUint(name string) *uint64 {
	v := os.Getenv(name)
	if v == "" {
		return nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		panic(fmt.Sprintf("%s=%q: %v", name, v, err))
	}
	return &n
}
