package migrations_test

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/octavia-vpp/health/migrations"
	"github.com/octavia-vpp/health/test/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func open(t *testing.T, url string) *sql.DB {
	t.Helper()
	db, err := migrations.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

// readExpected reads a testdata table: one whitespace-separated record per
// line, '#' comments and blank lines ignored, fields re-joined with single
// spaces so that column alignment in the file does not matter.
func readExpected(t *testing.T, name string) []string {
	t.Helper()
	f, err := os.Open("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, normalise(line))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// normalise collapses runs of spaces, except inside a type name such as
// "timestamp without time zone", which the fields keep as written.
func normalise(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func queryLines(t *testing.T, db *sql.DB, q string) []string {
	t.Helper()
	rows, err := db.QueryContext(ctx(t), q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, normalise(s))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// schema is everything a migration could change that these tests compare.
type schema struct {
	columns, constraints, indexes, lookups []string
}

func readSchema(t *testing.T, db *sql.DB) schema {
	t.Helper()
	return schema{
		columns: queryLines(t, db, `
			SELECT concat_ws(' ', table_name, column_name,
				CASE WHEN data_type = 'character varying'
					THEN 'varchar(' || character_maximum_length || ')'
					ELSE data_type END,
				CASE WHEN is_nullable = 'YES' THEN 'NULL' ELSE 'NOT NULL' END,
				column_default,
				CASE WHEN is_identity = 'YES' THEN 'IDENTITY' END)
			FROM information_schema.columns
			WHERE table_schema = current_schema()
			  AND table_name <> '`+migrations.VersionTable+`'`),
		constraints: queryLines(t, db, `
			SELECT concat_ws(' ', rel.relname, con.conname, con.contype,
				'(' || (SELECT string_agg(a.attname, ',' ORDER BY k.n)
					FROM unnest(con.conkey) WITH ORDINALITY k(attnum, n)
					JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum) || ')',
				CASE WHEN con.contype = 'f' THEN ref.relname || '(' ||
					(SELECT string_agg(a.attname, ',' ORDER BY k.n)
					FROM unnest(con.confkey) WITH ORDINALITY k(attnum, n)
					JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum) || ')' END)
			FROM pg_constraint con
			JOIN pg_class rel ON rel.oid = con.conrelid
			LEFT JOIN pg_class ref ON ref.oid = con.confrelid
			WHERE rel.relnamespace = current_schema()::regnamespace
			  AND con.contype IN ('p', 'u', 'f')
			  AND rel.relname <> '`+migrations.VersionTable+`'`),
		indexes: queryLines(t, db, `
			SELECT concat_ws(' ', tbl.relname, idx.relname,
				'(' || (SELECT string_agg(a.attname, ',' ORDER BY k.n)
					FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(attnum, n)
					JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum) || ')')
			FROM pg_index i
			JOIN pg_class idx ON idx.oid = i.indexrelid
			JOIN pg_class tbl ON tbl.oid = i.indrelid
			WHERE tbl.relnamespace = current_schema()::regnamespace
			  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
			  AND tbl.relname <> '`+migrations.VersionTable+`'`),
		lookups: queryLines(t, db, `
			SELECT 'operating_status ' || name || ' ' || coalesce(description, 'NULL') FROM operating_status
			UNION ALL SELECT 'provisioning_status ' || name || ' ' || coalesce(description, 'NULL') FROM provisioning_status
			UNION ALL SELECT 'protocol ' || name || ' ' || coalesce(description, 'NULL') FROM protocol
			UNION ALL SELECT 'lb_topology ' || name || ' ' || coalesce(description, 'NULL') FROM lb_topology
			UNION ALL SELECT 'amphora_roles ' || name || ' ' || coalesce(description, 'NULL') FROM amphora_roles
			UNION ALL SELECT 'algorithm ' || name || ' ' || coalesce(description, 'NULL') FROM algorithm
			UNION ALL SELECT 'health_monitor_type ' || name || ' ' || coalesce(description, 'NULL') FROM health_monitor_type
			UNION ALL SELECT 'session_persistence_type ' || name || ' ' || coalesce(description, 'NULL') FROM session_persistence_type
			UNION ALL SELECT 'client_authentication_mode ' || name FROM client_authentication_mode`+
			remainingTablesRows(t, db)),
	}
}

// remainingTablesRows adds the rows migration 00003 seeds to the lookup
// query, when its tables exist (a stand-in schema made from 00001 alone
// lacks them).
func remainingTablesRows(t *testing.T, db *sql.DB) string {
	t.Helper()
	var exists bool
	if err := db.QueryRow(`SELECT to_regclass('l7policy_action') IS NOT NULL`).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if !exists {
		return ""
	}
	return `
			UNION ALL SELECT 'l7policy_action ' || name || ' ' || coalesce(description, 'NULL') FROM l7policy_action
			UNION ALL SELECT 'l7rule_compare_type ' || name || ' ' || coalesce(description, 'NULL') FROM l7rule_compare_type
			UNION ALL SELECT 'l7rule_type ' || name || ' ' || coalesce(description, 'NULL') FROM l7rule_type
			UNION ALL SELECT 'vrrp_auth_method ' || name || ' ' || coalesce(description, 'NULL') FROM vrrp_auth_method
			UNION ALL SELECT 'amphora_build_slots ' || id || ' ' || slots_used FROM amphora_build_slots
			UNION ALL SELECT 'spares_pool rows ' || count(*) FROM spares_pool`
}

// expectedLookups are Octavia 11's lookup rows (docs/schema.md;
// health_monitor_type and session_persistence_type from Octavia 11's
// migrations). description is NULL everywhere.
var expectedLookups = map[string][]string{
	"operating_status":           {"DEGRADED", "DRAINING", "ERROR", "NO_MONITOR", "OFFLINE", "ONLINE"},
	"provisioning_status":        {"ACTIVE", "ALLOCATED", "BOOTING", "DELETED", "ERROR", "FAILOVER_STOPPED", "PENDING_CREATE", "PENDING_DELETE", "PENDING_UPDATE", "READY"},
	"protocol":                   {"HTTP", "HTTPS", "PROMETHEUS", "PROXY", "PROXYV2", "SCTP", "TCP", "TERMINATED_HTTPS", "UDP"},
	"lb_topology":                {"ACTIVE_STANDBY", "SINGLE"},
	"amphora_roles":              {"BACKUP", "MASTER", "STANDALONE"},
	"algorithm":                  {"LEAST_CONNECTIONS", "ROUND_ROBIN", "SOURCE_IP", "SOURCE_IP_PORT"},
	"health_monitor_type":        {"HTTP", "HTTPS", "PING", "SCTP", "TCP", "TLS-HELLO", "UDP-CONNECT"},
	"session_persistence_type":   {"APP_COOKIE", "HTTP_COOKIE", "SOURCE_IP"},
	"client_authentication_mode": {"MANDATORY", "NONE", "OPTIONAL"},
	"l7policy_action":            {"REDIRECT_PREFIX", "REDIRECT_TO_POOL", "REDIRECT_TO_URL", "REJECT"},
	"l7rule_compare_type":        {"CONTAINS", "ENDS_WITH", "EQUAL_TO", "REGEX", "STARTS_WITH"},
	"l7rule_type":                {"COOKIE", "FILE_TYPE", "HEADER", "HOST_NAME", "PATH", "SSL_CONN_HAS_CERT", "SSL_DN_FIELD", "SSL_VERIFY_RESULT"},
	"vrrp_auth_method":           {"AH", "PASS"},
}

// otherSeedRows are the rows Octavia 11's migrations put in its
// bookkeeping tables.
var otherSeedRows = []string{"amphora_build_slots 1 0", "spares_pool rows 1"}

func expectedLookupLines() []string {
	var out []string
	for table, names := range expectedLookups {
		for _, n := range names {
			if table == "client_authentication_mode" {
				out = append(out, table+" "+n)
			} else {
				out = append(out, table+" "+n+" NULL")
			}
		}
	}
	out = append(out, otherSeedRows...)
	slices.Sort(out)
	return out
}

func diff(t *testing.T, what string, got, want []string) {
	t.Helper()
	var missing, extra []string
	for _, w := range want {
		if !slices.Contains(got, w) {
			missing = append(missing, w)
		}
	}
	for _, g := range got {
		if !slices.Contains(want, g) {
			extra = append(extra, g)
		}
	}
	if len(missing)+len(extra) > 0 {
		t.Errorf("%s differ from Octavia 11's schema:\n  missing:\n    %s\n  unexpected:\n    %s",
			what, strings.Join(missing, "\n    "), strings.Join(extra, "\n    "))
	}
}

func assertSpecSchema(t *testing.T, s schema) {
	t.Helper()
	diff(t, "columns", s.columns, readExpected(t, "expected_columns.txt"))
	diff(t, "constraints", s.constraints, readExpected(t, "expected_constraints.txt"))
	diff(t, "indexes", s.indexes, readExpected(t, "expected_indexes.txt"))
	diff(t, "lookup rows", s.lookups, expectedLookupLines())
}

func TestMigrateEmptyDatabaseMatchesSpec(t *testing.T) {
	t.Parallel()
	db := open(t, pgtest.NewEmptyDB(t))
	res, err := migrations.Migrate(ctx(t), db, nil)
	if err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	if res.Existing || len(res.Applied) != 6 {
		t.Fatalf("Migrate on an empty database = %+v; want every migration applied", res)
	}
	assertSpecSchema(t, readSchema(t, db))
	// Octavia's own tool must find the schema at Octavia 11.0.0's head.
	if got := queryLines(t, db, `SELECT version_num FROM alembic_version`); !slices.Equal(got, []string{migrations.OctaviaAlembicHead}) {
		t.Errorf("alembic_version = %q, want [%s]", got, migrations.OctaviaAlembicHead)
	}
}

// The template pgtest.NewDB clones is built by the same Migrate call.
func TestPgtestTemplateMatchesSpec(t *testing.T) {
	t.Parallel()
	assertSpecSchema(t, readSchema(t, open(t, pgtest.NewDB(t))))
}

func TestMigrateTwiceIsNoop(t *testing.T) {
	t.Parallel()
	db := open(t, pgtest.NewEmptyDB(t))
	if _, err := migrations.Migrate(ctx(t), db, nil); err != nil {
		t.Fatalf("first Migrate: %v", err)
	}
	before := readSchema(t, db)
	versionsBefore := queryLines(t, db, `SELECT version_id || ' ' || tstamp FROM `+migrations.VersionTable)

	res, err := migrations.Migrate(ctx(t), db, nil)
	if err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	if res.Existing || len(res.Applied) != 0 {
		t.Errorf("second Migrate = %+v; want nothing applied", res)
	}
	after := readSchema(t, db)
	diff(t, "columns after second migrate", after.columns, before.columns)
	diff(t, "constraints after second migrate", after.constraints, before.constraints)
	diff(t, "indexes after second migrate", after.indexes, before.indexes)
	diff(t, "lookup rows after second migrate", after.lookups, before.lookups)
	diff(t, "version rows after second migrate",
		queryLines(t, db, `SELECT version_id || ' ' || tstamp FROM `+migrations.VersionTable), versionsBefore)
}

// Two migrators with their own connection pools race on one empty
// database; the advisory lock makes one wait for the other. The CLI-level
// version of this test, with two processes, is in cmd/octavia-health-manager.
func TestConcurrentMigrateBothSucceed(t *testing.T) {
	t.Parallel()
	url := pgtest.NewEmptyDB(t)
	const n = 4
	var wg sync.WaitGroup
	results := make([]*migrations.Result, n)
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		db := open(t, url)
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			results[i], errs[i] = migrations.Migrate(context.Background(), db, nil)
		}()
	}
	close(start)
	wg.Wait()
	applied := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("migrator %d: %v", i, errs[i])
		}
		applied += len(results[i].Applied)
	}
	if applied != 6 {
		t.Errorf("migrations applied %d times in total; want exactly once", applied)
	}
	assertSpecSchema(t, readSchema(t, open(t, url)))
}

// octaviaSchemaSQL is the Up part of our own migration, standing in for a
// schema some other tool created. Applied without goose, it leaves no
// version table behind, exactly like a hand-made Octavia database.
func octaviaSchemaSQL(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("sql/00001_octavia_11_schema.sql")
	if err != nil {
		t.Fatal(err)
	}
	up, _, ok := strings.Cut(string(b), "-- +goose Down")
	if !ok {
		t.Fatal("migration has no Down marker")
	}
	return up
}

func tableNames(t *testing.T, db *sql.DB) []string {
	t.Helper()
	return queryLines(t, db, `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()`)
}

func TestMigrateExistingOctaviaSchema(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		setup        string // run after the Octavia schema is in place
		wantProblems []string
	}{
		{
			name:  "alembic-managed and complete",
			setup: `CREATE TABLE alembic_version (version_num varchar(32) NOT NULL PRIMARY KEY); INSERT INTO alembic_version VALUES ('0995c26fc506')`,
		},
		{
			name: "hand-made without alembic_version",
		},
		{
			name: "missing and incompatible columns and rows",
			setup: `ALTER TABLE amphora_health DROP COLUMN busy;
				ALTER TABLE listener_statistics ALTER COLUMN bytes_in TYPE integer;
				ALTER TABLE amphora_health ALTER COLUMN last_update TYPE timestamptz;
				DELETE FROM provisioning_status WHERE name = 'FAILOVER_STOPPED'`,
			wantProblems: []string{
				"column amphora_health.last_update is timestamp with time zone, want timestamp without time zone",
				"column listener_statistics.bytes_in is integer, want bigint",
				"lookup table provisioning_status lacks row(s) FAILOVER_STOPPED",
				"missing column amphora_health.busy (want boolean)",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			db := open(t, pgtest.NewEmptyDB(t))
			if _, err := db.ExecContext(ctx(t), octaviaSchemaSQL(t)); err != nil {
				t.Fatalf("create stand-in Octavia schema: %v", err)
			}
			if tt.setup != "" {
				if _, err := db.ExecContext(ctx(t), tt.setup); err != nil {
					t.Fatalf("setup: %v", err)
				}
			}
			tablesBefore := tableNames(t, db)
			schemaBefore := readSchema(t, db)

			res, err := migrations.Migrate(ctx(t), db, nil)
			if len(tt.wantProblems) == 0 && err != nil {
				t.Fatalf("Migrate: %v", err)
			}
			if len(tt.wantProblems) > 0 && !errors.Is(err, migrations.ErrIncompatibleSchema) {
				t.Fatalf("Migrate error = %v; want ErrIncompatibleSchema", err)
			}
			if !res.Existing || len(res.Applied) != 0 {
				t.Errorf("Migrate = %+v; want Existing and nothing applied", res)
			}
			// Our own prefixed table is all that is created, and only in a
			// schema that passed verification.
			wantTables := tablesBefore
			if len(tt.wantProblems) == 0 {
				wantTables = append(slices.Clone(tablesBefore), migrations.StatsFlushTable)
				if !slices.Equal(res.CreatedOwn, []string{migrations.StatsFlushTable}) {
					t.Errorf("CreatedOwn = %q; want %s", res.CreatedOwn, migrations.StatsFlushTable)
				}
			} else if len(res.CreatedOwn) != 0 {
				t.Errorf("CreatedOwn = %q in a schema that failed verification", res.CreatedOwn)
			}
			got := slices.Clone(res.Problems)
			slices.Sort(got)
			if !slices.Equal(got, tt.wantProblems) {
				t.Errorf("problems = %q\nwant %q", got, tt.wantProblems)
			}
			diff(t, "tables after migrate", tableNames(t, db), wantTables)
			after := readSchema(t, db)
			diff(t, "columns after migrate", withoutOwn(after.columns), schemaBefore.columns)
			diff(t, "indexes after migrate", withoutOwn(after.indexes), schemaBefore.indexes)

			st, err := migrations.Status(ctx(t), db)
			if err != nil {
				t.Fatalf("Status: %v", err)
			}
			wantStatusProblems := len(tt.wantProblems)
			if wantStatusProblems > 0 {
				wantStatusProblems++ // and our own table, which was not created
			}
			if !st.Existing || len(st.Migrations) != 0 || len(st.Problems) != wantStatusProblems {
				t.Errorf("Status = %+v; want the existing schema and %d problem(s)", st, wantStatusProblems)
			}
			diff(t, "tables after status", tableNames(t, db), wantTables)
		})
	}
}

// withoutOwn drops the lines of our own StatsFlushTable.
func withoutOwn(lines []string) []string {
	return slices.DeleteFunc(slices.Clone(lines), func(l string) bool {
		return strings.HasPrefix(l, migrations.StatsFlushTable+" ")
	})
}

// Status on an existing schema says when our own table is missing, and
// Migrate creates it without touching Octavia's tables.
func TestStatusExistingSchemaWithoutOwnTable(t *testing.T) {
	t.Parallel()
	db := open(t, pgtest.NewEmptyDB(t))
	if _, err := db.ExecContext(ctx(t), octaviaSchemaSQL(t)); err != nil {
		t.Fatal(err)
	}
	st, err := migrations.Status(ctx(t), db)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Problems) != 1 || !strings.Contains(st.Problems[0], migrations.StatsFlushTable) {
		t.Errorf("Status problems = %q; want one naming %s", st.Problems, migrations.StatsFlushTable)
	}
	if _, err := migrations.Migrate(ctx(t), db, nil); err != nil {
		t.Fatal(err)
	}
	if st, err = migrations.Status(ctx(t), db); err != nil || len(st.Problems) != 0 {
		t.Errorf("Status after migrate: %+v, %v; want no problem", st, err)
	}
}

func TestStatus(t *testing.T) {
	t.Parallel()
	db := open(t, pgtest.NewEmptyDB(t))
	st, err := migrations.Status(ctx(t), db)
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	if st.Existing || len(st.Migrations) != 6 || slices.ContainsFunc(st.Migrations, func(m migrations.MigrationState) bool { return m.Applied }) {
		t.Fatalf("Status before migrating = %+v; want six pending migrations", st)
	}
	rev, err := migrations.Current(ctx(t), db)
	if err != nil || *rev != (migrations.Revision{Latest: 6}) {
		t.Errorf("Current before migrating = %+v, %v; want nothing applied, latest 5", rev, err)
	}
	if _, err := migrations.Migrate(ctx(t), db, nil); err != nil {
		t.Fatal(err)
	}
	st, err = migrations.Status(ctx(t), db)
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	for i, name := range []string{"00001_octavia_11_schema.sql", "00002_ovh_stats_flush.sql", "00003_octavia_11_remaining_tables.sql", "00004_alembic_version.sql", "00005_hot_updates.sql", "00006_ovh_lb_version.sql"} {
		m := st.Migrations[i]
		if !m.Applied || m.AppliedAt.IsZero() || m.Version != int64(i+1) || m.Name != name {
			t.Errorf("Status after migrating = %+v; want %s applied", m, name)
		}
	}
	rev, err = migrations.Current(ctx(t), db)
	if want := (migrations.Revision{Version: 6, Latest: 6, Alembic: migrations.OctaviaAlembicHead}); err != nil || *rev != want {
		t.Errorf("Current after migrating = %+v, %v; want %+v", rev, err, want)
	}
}

// The schema must accept what the health manager writes and refuse what
// Octavia's MySQL schema refuses.
func TestSchemaBehaviour(t *testing.T) {
	t.Parallel()
	db := open(t, pgtest.NewDB(t))
	c := ctx(t)
	mustExec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.ExecContext(c, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	mustExec(`INSERT INTO load_balancer (id, provisioning_status, operating_status, enabled) VALUES ('lb', 'ACTIVE', 'ONLINE', true)`)
	mustExec(`INSERT INTO amphora (id, status, load_balancer_id, cert_busy) VALUES ('amp', 'ALLOCATED', 'lb', false)`)
	mustExec(`INSERT INTO listener (id, load_balancer_id, protocol, protocol_port, provisioning_status, operating_status, enabled)
		VALUES ('l1', 'lb', 'HTTP', 80, 'ACTIVE', 'ONLINE', true)`)
	var clientAuth string
	if err := db.QueryRowContext(c, `SELECT client_authentication FROM listener WHERE id = 'l1'`).Scan(&clientAuth); err != nil || clientAuth != "NONE" {
		t.Errorf("listener.client_authentication default = %q, %v; want NONE", clientAuth, err)
	}

	tests := []struct {
		name    string
		sql     string
		wantErr bool
	}{
		{"health row for an unknown amphora (no FK)", `INSERT INTO amphora_health VALUES ('not-in-amphora', now() AT TIME ZONE 'UTC', false)`, false},
		{"statistics for unknown ids (no FK)", `INSERT INTO listener_statistics VALUES ('no-listener', 1, 2, 3, 4, 'no-amp', 5)`, false},
		{"non-UUID 36-char id", `INSERT INTO amphora_health VALUES ('` + strings.Repeat("x", 36) + `', now() AT TIME ZONE 'UTC', false)`, false},
		{"id longer than 36", `INSERT INTO amphora_health VALUES ('` + strings.Repeat("x", 37) + `', now() AT TIME ZONE 'UTC', false)`, true},
		{"busy has no default", `INSERT INTO amphora_health (amphora_id, last_update) VALUES ('nobusy', now() AT TIME ZONE 'UTC')`, true},
		{"unknown operating status", `UPDATE listener SET operating_status = 'BOGUS' WHERE id = 'l1'`, true},
		{"FAILOVER_STOPPED is a provisioning status", `UPDATE amphora SET status = 'FAILOVER_STOPPED' WHERE id = 'amp'`, false},
		{"amphora of an unknown load balancer", `UPDATE amphora SET load_balancer_id = 'nope' WHERE id = 'amp'`, true},
		{"duplicate listener port and protocol", `INSERT INTO listener (id, load_balancer_id, protocol, protocol_port, provisioning_status, operating_status, enabled)
			VALUES ('l2', 'lb', 'HTTP', 80, 'ACTIVE', 'ONLINE', true)`, true},
		{"same port, other protocol", `INSERT INTO listener (id, load_balancer_id, protocol, protocol_port, provisioning_status, operating_status, enabled)
			VALUES ('l3', 'lb', 'UDP', 80, 'ACTIVE', 'ONLINE', true)`, false},
		{"bigint counters", fmt.Sprintf(`INSERT INTO listener_statistics VALUES ('big', %d, 0, 0, 0, 'amp', 0)`, int64(1)<<40), false},
	}
	for _, tt := range tests {
		_, err := db.ExecContext(c, tt.sql)
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: err = %v, want error %v", tt.name, err, tt.wantErr)
		}
	}
}

func TestOpenHidesPasswordOnBadURL(t *testing.T) {
	for _, url := range []string{"postgresql://u:s3cret@host:notaport/db", "postgresql://u:s3cret@[::1/db"} {
		_, err := migrations.Open(url)
		if err == nil {
			t.Errorf("Open(%q) succeeded; want an error", url)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("Open(%q) error %q leaks the password", url, err)
		}
	}
}

// Values come back through database/sql as the types callers scan into.
func TestOpenScansBaseTypes(t *testing.T) {
	t.Parallel()
	db := open(t, pgtest.NewEmptyDB(t))
	var (
		i16, i32, i64 int64
		f32           float64
		b             bool
		s             string
		ts            time.Time
		null          sql.NullString
		raw           []byte
	)
	err := db.QueryRowContext(ctx(t), `SELECT 1::int2, 2::int4, $1::int8, 1.5::real, true, 'x'::varchar,
		'2026-01-02 03:04:05.123456'::timestamp, NULL::text, '\x0102'::bytea
		WHERE 'b' = ANY($2)`, int64(1)<<40, []string{"a", "b"}).
		Scan(&i16, &i32, &i64, &f32, &b, &s, &ts, &null, &raw)
	if err != nil {
		t.Fatal(err)
	}
	want := time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC)
	if i16 != 1 || i32 != 2 || i64 != 1<<40 || f32 != 1.5 || !b || s != "x" || !ts.Equal(want) || null.Valid || string(raw) != "\x01\x02" {
		t.Errorf("scanned %v %v %v %v %v %q %v %v %q", i16, i32, i64, f32, b, s, ts, null, raw)
	}
}
