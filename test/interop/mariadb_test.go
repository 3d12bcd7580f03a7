//go:build interop

package interop

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/octavia-vpp/health/internal/mysqlconf"
	"github.com/octavia-vpp/health/migrations"
	"github.com/octavia-vpp/health/test/mysqltest"
)

// A backend is the database kind a comparison runs on: where Octavia's
// side goes, and the databases our side is fed into, each compared with
// Octavia's.
type backend struct {
	name      string
	databases func(t testing.TB) (octavia string, ours sides)
}

type side struct {
	name  string // in TestDatabase's messages
	short string // in the differential fuzzer's rows
	url   string
}

type sides []side

func (s sides) urls() []string {
	var out []string
	for _, x := range s {
		out = append(out, x.url)
	}
	return out
}

// postgresBackend: Octavia's schema from its models for Octavia and for
// us, and ours from our own migrate.
var postgresBackend = backend{name: "PostgreSQL", databases: func(t testing.TB) (string, sides) {
	return octaviaDB(t), sides{
		{"ours on Octavia's schema", "ours/octavia-schema", octaviaDB(t)},
		{"ours on our migrated schema", "ours/migrated", migratedDB(t)},
	}
}}

// mariadbBackend: each side on a MariaDB database of its own holding the
// schema Octavia's `octavia-db-manage upgrade head` built (test/mysqltest
// runs it once, on a template database, and gives each test a copy made
// from the template's SHOW CREATE TABLE and rows; a fresh alembic run per
// database would add a minute per scenario on two cores). Ours runs our
// own `migrate` first, which verifies that schema and adds only our
// tables. Both are reached through the URL an operator writes in
// octavia.conf.
var mariadbBackend = backend{name: "MariaDB", databases: func(t testing.TB) (string, sides) {
	octavia := mariaURL(t, mysqltest.NewDB(t))
	ours := mariaURL(t, mysqltest.NewDB(t))
	oursMigrate(t, ours)
	return octavia, sides{{"ours on MariaDB (octavia-db-manage schema)", "ours/mariadb", ours}}
}}

// mariaURL is Octavia's URL for a mysqltest DSN: SQLAlchemy with PyMySQL,
// as Debian's Octavia uses, which our configuration reads too.
func mariaURL(t testing.TB, dsn string) string {
	t.Helper()
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Passwd != "" || cfg.Net != "tcp" {
		t.Fatalf("mysqltest DSN %s: want TCP without a password", cfg.Addr)
	}
	return fmt.Sprintf("mysql+pymysql://%s@%s/%s?charset=utf8", cfg.User, cfg.Addr, cfg.DBName)
}

// oursMigrate runs our `migrate` on a MariaDB database: it must verify
// Octavia's schema and change none of it.
func oursMigrate(t testing.TB, url string) {
	t.Helper()
	ours(t, t.TempDir(), url, "migrate")
}

func isMySQL(url string) bool { return mysqlconf.IsMySQLURL(url) }

func openMySQL(t testing.TB, url string) *sql.DB {
	t.Helper()
	cfg, err := mysqlconf.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	db, err := migrations.OpenMySQL(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// snapshotMySQL is snapshot on MariaDB: the same rows, rendered alike.
func snapshotMySQL(t testing.TB, url string) map[string]bool {
	t.Helper()
	db := openMySQL(t, url)
	defer db.Close()
	out := map[string]bool{}
	collect := func(q string, render func(*sql.Rows) (string, error)) {
		rows, err := db.Query(q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		defer rows.Close()
		for rows.Next() {
			s, err := render(rows)
			if err != nil {
				t.Fatal(err)
			}
			out[s] = true
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	}
	for _, table := range []string{"load_balancer", "listener", "pool", "member"} {
		collect("SELECT id, operating_status FROM "+table, func(r *sql.Rows) (string, error) {
			var id, st string
			err := r.Scan(&id, &st)
			return fmt.Sprintf("%s %s %s", table, id, st), err
		})
	}
	collect("SELECT amphora_id, busy FROM amphora_health", func(r *sql.Rows) (string, error) {
		var id string
		var busy bool
		err := r.Scan(&id, &busy)
		return fmt.Sprintf("amphora_health %s busy=%t", id, busy), err
	})
	collect(`SELECT listener_id, amphora_id, bytes_in, bytes_out, active_connections, total_connections, request_errors
		FROM listener_statistics`, func(r *sql.Rows) (string, error) {
		var l, a string
		var v [5]int64
		err := r.Scan(&l, &a, &v[0], &v[1], &v[2], &v[3], &v[4])
		return fmt.Sprintf("listener_statistics %s/%s %d %d %d %d %d", l, a, v[0], v[1], v[2], v[3], v[4]), err
	})
	return out
}

var numberedPlaceholder = regexp.MustCompile(`\$\d+`)

// insertMySQL is insert on MariaDB: the same statements, whose numbered
// placeholders are in order, with MySQL's "?", in one transaction.
func (s *scenario) insertMySQL(ctx context.Context, url string) error {
	cfg, err := mysqlconf.ParseURL(url)
	if err != nil {
		return err
	}
	db, err := migrations.OpenMySQL(cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var firstErr error
	s.statements(func(q string, args ...any) {
		if firstErr != nil {
			return
		}
		if _, err := tx.ExecContext(ctx, numberedPlaceholder.ReplaceAllString(q, "?"), args...); err != nil {
			firstErr = fmt.Errorf("%s: %w", strings.Join(strings.Fields(q), " "), err)
		}
	})
	if firstErr != nil {
		return firstErr
	}
	return tx.Commit()
}

const (
	defaultMariaDBLBs = 200
)

// mariadbSeeds are INTEROP_MARIADB_SEEDS (comma-separated), else seed 1
// alone: Octavia through PyMySQL is the slow part (about 0.2 s a datagram
// on a busy 2-core machine), and the PostgreSQL run covers the
// generator's breadth; this one holds the other database to the same
// rows.
func mariadbSeeds(t *testing.T) []uint64 {
	if v := os.Getenv("INTEROP_MARIADB_SEEDS"); v != "" {
		var out []uint64
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.ParseUint(strings.TrimSpace(f), 10, 64)
			if err != nil {
				t.Fatalf("INTEROP_MARIADB_SEEDS: %v", err)
			}
			out = append(out, n)
		}
		return out
	}
	return []uint64{1}
}

// TestDatabaseMariaDB is TestDatabase on MariaDB, at 200 load balancers
// (INTEROP_MARIADB_LBS): Octavia's update_health and update_stats on a
// schema built by octavia-db-manage, our replay on another, identical rows
// required.
func TestDatabaseMariaDB(t *testing.T) {
	nLB := defaultMariaDBLBs
	if v := envUint("INTEROP_MARIADB_LBS"); v != nil {
		nLB = int(*v)
	}
	for _, seed := range mariadbSeeds(t) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Parallel()
			runScenario(t, mariadbBackend, newScenario(seed, nLB), false)
		})
	}
}

// defaultMariaDBFuzzSeeds and defaultMariaDBFuzzMessages: the
// differential fuzzer's messages on MariaDB. The PostgreSQL run covers
// five seeds and the kept regression cases; Octavia through PyMySQL takes
// about a third of a second per message here, so fewer.
var defaultMariaDBFuzzSeeds = []uint64{1, 2, 3}

const defaultMariaDBFuzzMessages = 40

// numericID tells whether a message's "id" is a JSON number or boolean.
// Octavia's queries then compare a varchar column with a number, which
// MySQL answers by reading every stored id as a number, so that one such
// heartbeat matches the amphorae whose id starts with that number ("0"
// for every id starting with a letter) and writes the statuses of all
// their load balancers, from rows in no defined order. We drop such a
// heartbeat as on PostgreSQL, where the comparison is an error
// (docs/deviations.md, "On MySQL"); the generator leaves them out here.
func numericID(message string) bool {
	var top map[string]json.RawMessage
	if json.Unmarshal([]byte(message), &top) != nil {
		return false
	}
	id := bytes.TrimSpace(top["id"])
	if len(id) == 0 {
		return false
	}
	switch id[0] {
	case 't', 'f', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return true
	}
	return false
}

// TestDiffFuzzMariaDB runs the differential fuzzer's mutated messages
// through Octavia and through us on MariaDB, over fewer seeds than on
// PostgreSQL (INTEROP_MARIADB_FUZZ_SEEDS, default 1,2,3;
// INTEROP_MARIADB_FUZZ_MESSAGES, default 40 per seed), without a
// numeric or boolean "id" (numericID). Every differing
// message fails the test; new kinds are not recorded (the regression file
// is PostgreSQL's), they are printed and written to out/difffuzz/.
func TestDiffFuzzMariaDB(t *testing.T) {
	seeds := defaultMariaDBFuzzSeeds
	if v := os.Getenv("INTEROP_MARIADB_FUZZ_SEEDS"); v != "" {
		seeds = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.ParseUint(strings.TrimSpace(f), 10, 64)
			if err != nil {
				t.Fatalf("INTEROP_MARIADB_FUZZ_SEEDS: %v", err)
			}
			seeds = append(seeds, n)
		}
	}
	n := defaultMariaDBFuzzMessages
	if v := envUint("INTEROP_MARIADB_FUZZ_MESSAGES"); v != nil {
		n = int(*v)
	}
	tally := &fuzzTally{applied: map[string]int{}, differing: map[string]int{}}
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Parallel()
			g := fuzzRand(seed)
			var units []*fuzzUnit
			left := 0
			for i := range n {
				u := newFuzzUnit(g, fmt.Sprintf("seed %d #%d", seed, i))
				for numericID(u.Message) {
					left++
					u = newFuzzUnit(g, fmt.Sprintf("seed %d #%d", seed, i))
				}
				units = append(units, u)
			}
			t.Logf("seed %d: %d generated messages with a numeric or boolean id left out", seed, left)
			name := fmt.Sprintf("mariadb-seed-%d", seed)
			res := runFuzzBatch(t, mariadbBackend, name, fmt.Sprintf("fuzz-key-m%d-ß", seed), units, tally)
			reportMismatches(t, name, res)
		})
	}
	t.Cleanup(func() {
		t.Logf("differential fuzzer on MariaDB: %d messages (%d seeds x %d), %d with rows different from Octavia's; Octavia changed %d rows",
			tally.messages, len(seeds), n, tally.differ, tally.octaviaChanged)
	})
}
