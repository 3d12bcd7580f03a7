package main

import (
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
		{[]string{"migrate", "current"}, 0, []string{"alembic_version: none", "migrations: none (4 pending)"}, nil},
		{[]string{"migrate", "history"}, 0, []string{"pending", "00004_alembic_version.sql"}, nil},
		{[]string{"migrate", "upgrade", "head"}, 0, nil, []string{"schema migrated", "00004_alembic_version.sql"}},
		{[]string{"migrate", "current"}, 0, []string{"alembic_version: " + migrations.OctaviaAlembicHead + " (head of Octavia 11.0.0)", "migrations: 00004 (head)"}, nil},
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
