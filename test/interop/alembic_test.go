//go:build interop

package interop

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/octavia-vpp/health/test/pgtest"
)

// dbManage is Debian's octavia-db-manage (python3-octavia) against the
// database in conf.
const dbManage = "/usr/bin/octavia-db-manage"

func runDBManage(t *testing.T, conf string, args ...string) string {
	t.Helper()
	cmd := exec.Command(dbManage, append([]string{"--config-file", conf}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("octavia-db-manage %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, stdout.String(), tail(stderr.String(), 4000))
	}
	t.Logf("octavia-db-manage %s:\n%s%s", strings.Join(args, " "), stdout.String(), tail(stderr.String(), 2000))
	return stdout.String()
}

// pgDump is the whole database, schema and rows, as pg_dump writes it.
func pgDump(t *testing.T, url string) string {
	t.Helper()
	bin, err := exec.LookPath("pg_dump")
	if found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_dump"); len(found) > 0 {
		slices.Sort(found) // the newest major version last; it dumps older servers too
		bin, err = found[len(found)-1], nil
	}
	if err != nil {
		t.Fatalf("pg_dump not found: %v", err)
	}
	out, err := exec.Command(bin, "--no-owner", "--no-privileges", "-d", url).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("pg_dump: %v\n%s", err, stderr)
	}
	// Recent pg_dump releases wrap the dump in \restrict KEY ... \unrestrict
	// KEY with a random key per run.
	lines := strings.Split(string(out), "\n")
	lines = slices.DeleteFunc(lines, func(l string) bool {
		return strings.HasPrefix(l, `\restrict `) || strings.HasPrefix(l, `\unrestrict `)
	})
	return strings.Join(lines, "\n")
}

// TestOctaviaDBManageOnMigratedSchema: Octavia's own database tool, on a
// schema our migrate created, finds it at Octavia 11.0.0's head, and
// `upgrade head` changes nothing (docs/schema.md, "Octavia's
// octavia-db-manage").
func TestOctaviaDBManageOnMigratedSchema(t *testing.T) {
	if _, err := os.Stat(dbManage); err != nil {
		t.Fatalf("%s missing (python3-octavia; make interop-deps): %v", dbManage, err)
	}
	url := pgtest.NewEmptyDB(t)
	ours(t, t.TempDir(), url, "migrate", "upgrade", "head")

	conf := filepath.Join(t.TempDir(), "octavia.conf")
	text := "[database]\nconnection = " + strings.Replace(url, "postgres://", "postgresql+psycopg2://", 1) + "\n"
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}

	if out := runDBManage(t, conf, "current"); !strings.Contains(out, "0995c26fc506 (head)") {
		t.Fatalf("octavia-db-manage current = %q, want 0995c26fc506 (head)", out)
	}
	before := pgDump(t, url)
	runDBManage(t, conf, "upgrade", "head")
	if after := pgDump(t, url); after != before {
		t.Errorf("octavia-db-manage upgrade head changed the database:\n%s", lineDiff(before, after))
	}
	if out := runDBManage(t, conf, "current"); !strings.Contains(out, "0995c26fc506 (head)") {
		t.Errorf("octavia-db-manage current after upgrade = %q, want 0995c26fc506 (head)", out)
	}
	// And ours still sees its own schema at head.
	if out := ours(t, t.TempDir(), url, "migrate", "current"); !strings.Contains(out, "migrations: 00006 (head)") ||
		!strings.Contains(out, "alembic_version: 0995c26fc506 (head of Octavia 11.0.0)") {
		t.Errorf("migrate current = %q", out)
	}
}

// lineDiff lists the lines only in a ("-") or only in b ("+").
func lineDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	var out []string
	for _, l := range al {
		if !slices.Contains(bl, l) {
			out = append(out, "- "+l)
		}
	}
	for _, l := range bl {
		if !slices.Contains(al, l) {
			out = append(out, "+ "+l)
		}
	}
	return strings.Join(out, "\n")
}
