package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/octavia-vpp/health/migrations"
	"github.com/octavia-vpp/health/test/pgtest"
)

// TestMigrateVerbs walks octavia-db-manage's verbs over one database:
// current and history before, upgrade head, then current and history
// again (history's old name, status, included).
func TestMigrateVerbs(t *testing.T) {
	t.Parallel()
	url := pgtest.NewEmptyDB(t)
	conf := confFor(t, url)
	steps := []struct {
		args   []string
		code   int
		stdout []string // substrings
		stderr []string
	}{
		{[]string{"migrate", "current"}, 0, []string{"alembic_version: none", "migrations: none (6 pending)"}, nil},
		{[]string{"migrate", "history"}, 0, []string{"pending", "00004_alembic_version.sql"}, nil},
		{[]string{"migrate", "upgrade", "head"}, 0, nil, []string{"schema migrated", "00004_alembic_version.sql"}},
		{[]string{"migrate", "current"}, 0, []string{"alembic_version: " + migrations.OctaviaAlembicHead + " (head of Octavia 11.0.0)", "migrations: 00006 (head)"}, nil},
		{[]string{"migrate", "history"}, 0, []string{"applied", "00001_octavia_11_schema.sql", "00004_alembic_version.sql"}, nil},
		{[]string{"migrate", "status"}, 0, []string{"applied", "00004_alembic_version.sql"}, nil},
		{[]string{"migrate", "upgrade"}, 0, nil, []string{"already up to date"}},
		{[]string{"migrate"}, 0, nil, []string{"already up to date"}},
		{[]string{"migrate", "upgrade", "heads"}, 0, nil, []string{"already up to date"}},
		{[]string{"migrate", "upgrade", "0995c26fc506"}, exitUsage, nil, []string{`only the revision "head" is supported`}},
		{[]string{"migrate", "upgrade", "+1"}, exitUsage, nil, []string{`only the revision "head" is supported`}},
		{[]string{"migrate", "current", "extra"}, exitUsage, nil, []string{"takes no arguments"}},
	}
	for _, s := range steps {
		r := runApp(t, append([]string{"--config-file", conf}, s.args...)...)
		if r.code != s.code {
			t.Fatalf("%q: exit %d, want %d\nstdout: %s\nstderr: %s", s.args, r.code, s.code, r.stdout, r.stderr)
		}
		for _, w := range s.stdout {
			if !strings.Contains(r.stdout, w) {
				t.Errorf("%q: stdout lacks %q:\n%s", s.args, w, r.stdout)
			}
		}
		for _, w := range s.stderr {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("%q: stderr lacks %q:\n%s", s.args, w, r.stderr)
			}
		}
	}
}

// An Octavia schema octavia-db-manage built: current reports its alembic
// revision and that our migrations did not create it; upgrade leaves
// alembic_version alone.
func TestMigrateCurrentExistingSchema(t *testing.T) {
	t.Parallel()
	url := pgtest.NewEmptyDB(t)
	db := openDB(t, url)
	if _, err := db.Exec(octaviaSchemaSQL(t) + `; CREATE TABLE alembic_version (version_num varchar(32) NOT NULL PRIMARY KEY);
		INSERT INTO alembic_version VALUES ('f0ba4ad2a3b1')`); err != nil {
		t.Fatal(err)
	}
	conf := confFor(t, url)
	if r := runApp(t, "--config-file", conf, "migrate", "upgrade", "head"); r.code != 0 {
		t.Fatalf("upgrade: %d\n%s", r.code, r.stderr)
	}
	r := runApp(t, "--config-file", conf, "migrate", "current")
	for _, w := range []string{"alembic_version: f0ba4ad2a3b1 (not Octavia 11.0.0's head", "migrations: none (an Octavia schema these migrations did not create"} {
		if r.code != 0 || !strings.Contains(r.stdout, w) {
			t.Errorf("current: exit %d, stdout lacks %q:\n%s%s", r.code, w, r.stdout, r.stderr)
		}
	}
}

// TestMigrateLogsLockHolder: a migrate process that finds the migration
// lock taken says so on standard error, naming the holder's PID, and
// migrates once the lock is released.
func TestMigrateLogsLockHolder(t *testing.T) {
	t.Parallel()
	url := pgtest.NewEmptyDB(t)
	conf := confFor(t, url)
	holder, err := openDB(t, url).Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	var pid int64
	if err := holder.QueryRowContext(context.Background(), `SELECT pg_backend_pid(), pg_advisory_lock($1)`, migrations.LockID).Scan(&pid, new(any)); err != nil {
		t.Fatal(err)
	}

	argv, _ := json.Marshal([]string{"--config-file", conf, "migrate", "upgrade", "head"})
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childArgsEnv+"="+string(argv))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var seen []string
	sc := bufio.NewScanner(stderr)
	want := fmt.Sprintf("holder_pid=%d", pid)
	for sc.Scan() {
		seen = append(seen, sc.Text())
		if strings.Contains(sc.Text(), "waiting for the migration lock held by another process") && strings.Contains(sc.Text(), want) {
			break
		}
	}
	if _, err := holder.ExecContext(context.Background(), `SELECT pg_advisory_unlock($1)`, migrations.LockID); err != nil {
		t.Fatal(err)
	}
	for sc.Scan() {
		seen = append(seen, sc.Text())
	}
	err = cmd.Wait()
	log := strings.Join(seen, "\n")
	if err != nil || !strings.Contains(log, want) || !strings.Contains(log, "schema migrated") {
		t.Errorf("migrate: %v; want a wait line naming %s, then the migration:\n%s", err, want, log)
	}
}
