package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/octavia-vpp/health/migrations"
	"github.com/octavia-vpp/health/test/mysqltest"
	"github.com/octavia-vpp/health/test/pgtest"
)

// childArgsEnv, when set, makes the test binary act as the command itself
// with these (JSON-encoded) arguments: the concurrency test starts real,
// separate processes running the CLI's code path.
const childArgsEnv = "OHM_MIGRATE_TEST_CHILD_ARGS"

func TestMain(m *testing.M) {
	// Whatever the machine's /etc/octavia holds must not leak into tests
	// that give no --config-file.
	defaultConfig.Path = "/nonexistent/octavia-health-manager-test/octavia.conf"
	defaultConfig.Dir = "/nonexistent/octavia-health-manager-test/octavia.conf.d"
	if args := os.Getenv(childArgsEnv); args != "" {
		var argv []string
		if err := json.Unmarshal([]byte(args), &argv); err != nil {
			fmt.Fprintln(os.Stderr, "bad child arguments:", err)
			os.Exit(3)
		}
		// The app's ExitErrHandler exits with the command's code.
		if err := appWithMigrate().Run(append([]string{"octavia-health-manager"}, argv...)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(exitUsage)
		}
		os.Exit(0)
	}
	os.Exit(mysqltest.Wrap(func() int { return pgtest.Run(m) }))
}

// appWithMigrate is the real app, with the migrate command added if the
// app does not register it itself yet.
func appWithMigrate() *cli.App {
	app := newApp()
	if !slices.ContainsFunc(app.Commands, func(c *cli.Command) bool { return c.Name == "migrate" }) {
		app.Commands = append(app.Commands, migrateCommand())
	}
	return app
}

// appMu serialises in-process runs: urfave/cli v2 writes to package-level
// flags (cli.HelpFlag) while parsing, so two apps cannot run at once in
// one process. Database setup in the tests still runs in parallel.
var appMu sync.Mutex

// runApp runs the command in-process and returns its output and exit code.
func runApp(t *testing.T, args ...string) result {
	t.Helper()
	appMu.Lock()
	defer appMu.Unlock()
	app := appWithMigrate()
	var stdout, stderr bytes.Buffer
	app.Writer, app.ErrWriter = &stdout, &stderr
	app.ExitErrHandler = func(*cli.Context, error) {} // report, do not exit
	err := app.Run(append([]string{"octavia-health-manager"}, args...))
	code := 0
	var coder cli.ExitCoder
	switch {
	case errors.As(err, &coder):
		// What the app's own ExitErrHandler would print before exiting.
		code = coder.ExitCode()
		stderr.WriteString(err.Error())
	case err != nil:
		code = exitUsage
		stderr.WriteString(err.Error())
	}
	return result{stdout.String(), stderr.String(), code}
}

// runChild runs the command in a separate process.
func runChild(args ...string) (result, error) {
	argv, _ := json.Marshal(args)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childArgsEnv+"="+string(argv))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		code = exitErr.ExitCode()
	} else if err != nil {
		return result{}, err
	}
	return result{stdout.String(), stderr.String(), code}, nil
}

func confFor(t *testing.T, connection string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "octavia.conf")
	body := "[health_manager]\nheartbeat_key = insecure\n"
	if connection != "" {
		body += "[database]\nconnection = " + connection + "\n"
	}
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// sqlalchemyURL writes pgtest's URL the way an octavia.conf would.
func sqlalchemyURL(url string) string {
	return strings.Replace(url, "postgres://", "postgresql+psycopg2://", 1)
}

func openDB(t *testing.T, url string) *sql.DB {
	t.Helper()
	db, err := migrations.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// fingerprint is the schema as information_schema and pg_constraint show
// it, plus the lookup rows, without goose's table.
func fingerprint(t *testing.T, db *sql.DB) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rows, err := db.QueryContext(ctx, `
		SELECT concat_ws(' ', table_name, column_name, data_type, character_maximum_length, is_nullable, column_default)
		FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name <> $1
		UNION ALL
		SELECT conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid)
		FROM pg_constraint
		WHERE connamespace = current_schema()::regnamespace AND conrelid::regclass::text <> $1
		UNION ALL
		SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename <> $1
		UNION ALL SELECT 'operating_status ' || name FROM operating_status
		UNION ALL SELECT 'provisioning_status ' || name FROM provisioning_status`, migrations.VersionTable)
	if err != nil {
		t.Fatalf("fingerprint: %v", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

func TestMigrateTwoProcessesAtOnce(t *testing.T) {
	t.Parallel()
	url := pgtest.NewEmptyDB(t)
	conf := confFor(t, sqlalchemyURL(url))

	const n = 2
	var wg sync.WaitGroup
	results := make([]result, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = runChild("--config-file", conf, "migrate")
		}()
	}
	wg.Wait()
	applied := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("process %d: %v", i, errs[i])
		}
		if results[i].code != 0 {
			t.Fatalf("process %d exited %d:\n%s", i, results[i].code, results[i].stderr)
		}
		if strings.Contains(results[i].stderr, "schema migrated") {
			applied++
		}
	}
	if applied != 1 {
		t.Errorf("%d processes report applying the migrations; want exactly 1:\n%s\n---\n%s",
			applied, results[0].stderr, results[1].stderr)
	}

	// The result is the very schema a single migration produces.
	got := fingerprint(t, openDB(t, url))
	want := fingerprint(t, openDB(t, pgtest.NewDB(t)))
	if !slices.Equal(got, want) {
		t.Errorf("schema after concurrent migrate differs from a single migration:\ngot  %q\nwant %q", got, want)
	}

	st := runApp(t, "--config-file", conf, "migrate", "status")
	if st.code != 0 || !strings.Contains(st.stdout, "applied") || strings.Contains(st.stdout, "pending") {
		t.Errorf("migrate status = %d\n%s%s", st.code, st.stdout, st.stderr)
	}
}

func TestMigrateCommand(t *testing.T) {
	t.Parallel()
	url := pgtest.NewEmptyDB(t)
	conf := confFor(t, url)

	st := runApp(t, "--config-file", conf, "migrate", "status")
	if st.code != 0 || !strings.Contains(st.stdout, "pending") || !strings.Contains(st.stdout, "00001_octavia_11_schema.sql") {
		t.Fatalf("status before migrate = %d\n%s%s", st.code, st.stdout, st.stderr)
	}

	first := runApp(t, "--config-file", conf, "migrate")
	if first.code != 0 || !strings.Contains(first.stderr, "schema migrated") || first.stdout != "" {
		t.Fatalf("first migrate = %d\nstdout: %s\nstderr: %s", first.code, first.stdout, first.stderr)
	}
	t.Logf("first migrate:\n%s", first.stderr)
	before := fingerprint(t, openDB(t, url))

	second := runApp(t, "--config-file", conf, "migrate")
	if second.code != 0 || !strings.Contains(second.stderr, "already up to date") {
		t.Fatalf("second migrate = %d\n%s", second.code, second.stderr)
	}
	if after := fingerprint(t, openDB(t, url)); !slices.Equal(after, before) {
		t.Errorf("second migrate changed the schema")
	}

	st = runApp(t, "--config-file", conf, "migrate", "status")
	if st.code != 0 || !strings.Contains(st.stdout, "applied") || strings.Contains(st.stdout, "pending") {
		t.Errorf("status after migrate = %d\n%s%s", st.code, st.stdout, st.stderr)
	}
}

// octaviaSchemaSQL is the Up part of our own migration, standing in for a
// schema some other tool created.
func octaviaSchemaSQL(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../migrations/sql/00001_octavia_11_schema.sql")
	if err != nil {
		t.Fatal(err)
	}
	up, _, _ := strings.Cut(string(b), "-- +goose Down")
	return up
}

func TestMigrateExistingOctaviaSchema(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		extra    string
		wantCode int
		wantErr  []string
	}{
		{
			name:     "complete",
			extra:    `CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY); INSERT INTO alembic_version VALUES ('0995c26fc506')`,
			wantCode: 0,
			wantErr:  []string{"verifying it, creating nothing of Octavia's", "existing Octavia schema verified; created only our own table(s)", migrations.StatsFlushTable},
		},
		{
			name:     "incomplete",
			extra:    `ALTER TABLE amphora_health DROP COLUMN busy`,
			wantCode: exitRejected,
			wantErr:  []string{"missing column amphora_health.busy", "nothing was changed"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			url := pgtest.NewEmptyDB(t)
			db := openDB(t, url)
			if _, err := db.Exec(octaviaSchemaSQL(t) + ";" + tt.extra); err != nil {
				t.Fatalf("create stand-in Octavia schema: %v", err)
			}
			before := fingerprint(t, db)
			conf := confFor(t, url)

			r := runApp(t, "--config-file", conf, "migrate")
			if r.code != tt.wantCode {
				t.Errorf("exit code = %d; want %d\n%s", r.code, tt.wantCode, r.stderr)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
				}
			}
			after := slices.DeleteFunc(fingerprint(t, db), func(l string) bool { return strings.Contains(l, migrations.StatsFlushTable) })
			if !slices.Equal(after, before) {
				t.Errorf("migrate changed an existing Octavia schema")
			}
			var own bool
			if err := db.QueryRow(`SELECT to_regclass($1) IS NOT NULL`, migrations.StatsFlushTable).Scan(&own); err != nil || own != (tt.wantCode == 0) {
				t.Errorf("our own table %s exists: %v (err %v); want it only when the schema verified", migrations.StatsFlushTable, own, err)
			}
			var exists bool
			if err := db.QueryRow(`SELECT to_regclass($1) IS NOT NULL`, migrations.VersionTable).Scan(&exists); err != nil || exists {
				t.Errorf("version table created in an existing Octavia schema (err %v)", err)
			}

			st := runApp(t, "--config-file", conf, "migrate", "status")
			if st.code != tt.wantCode || !strings.Contains(st.stdout, "existing Octavia schema") {
				t.Errorf("status = %d\n%s", st.code, st.stdout)
			}
		})
	}
}

func TestMigrateConfigErrors(t *testing.T) {
	t.Parallel()
	// Two attempts, at once: the unreachable databases give up quickly.
	const retries = "max_retries = 2\nretry_interval = 0\n"
	tests := []struct {
		name string
		conf string // connection, "" for none
		code int
		want []string
	}{
		{"no connection", "", exitUsage, []string{"no [database] connection"}},
		{"mysql unknown parameter", "mysql+pymysql://octavia:secret@db/octavia?sslmode=on", exitUsage, []string{`unknown parameter(s) "sslmode"`}},
		{"mysql unreachable", "mysql+pymysql://octavia:secret@127.0.0.1:1/octavia?connect_timeout=2", exitUnavailable, []string{
			"level=WARNING", "database not reachable at start; retrying", "octavia:***@127.0.0.1:1", "attempts_left=1",
			"migrate: database not reachable at start", "did not answer 2 attempt(s)"}},
		{"unreachable", "postgresql://octavia:secret@127.0.0.1:1/octavia?connect_timeout=2", exitUnavailable, []string{
			"level=WARNING", "database not reachable at start; retrying", "octavia:***@127.0.0.1:1", "attempts_left=1",
			"migrate: database not reachable at start", "did not answer 2 attempt(s)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			conf := confFor(t, tt.conf)
			appendFile(t, conf, "[database]\n"+retries)
			for _, args := range [][]string{{"migrate"}, {"migrate", "status"}} {
				r := runApp(t, append([]string{"--config-file", conf}, args...)...)
				if r.code != tt.code {
					t.Errorf("%v exited %d; want %d\n%s", args, r.code, tt.code, r.stderr)
				}
				for _, want := range tt.want {
					if !strings.Contains(r.stderr, want) {
						t.Errorf("%v stderr lacks %q:\n%s", args, want, r.stderr)
					}
				}
				if strings.Contains(r.stderr, "secret") {
					t.Errorf("%v leaks the password:\n%s", args, r.stderr)
				}
			}
		})
	}
}

func appendFile(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}
