// Package onmysql_test runs migrate's MySQL side against a throwaway
// MariaDB (test/mysqltest) whose schema Octavia's own `octavia-db-manage
// upgrade head` built. It is a package of its own because the migrations
// package's tests run a PostgreSQL server from their TestMain.
package onmysql_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/octavia-vpp/health/internal/mysqlconf"
	"github.com/octavia-vpp/health/internal/octaviaconf"
	"github.com/octavia-vpp/health/migrations"
	"github.com/octavia-vpp/health/test/mysqltest"
)

func TestMain(m *testing.M) { mysqltest.Main(m) }

// octaviaURL is the URL an operator would write in octavia.conf for the
// database of dsn (mysqltest's root has no password; user is one with a
// password, made by the test).
func octaviaURL(t *testing.T, dsn, user, password, extra string) string {
	t.Helper()
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("mysql+pymysql://%s:%s@%s/%s?charset=utf8%s", user, password, cfg.Addr, cfg.DBName, extra)
}

// withUser creates a user with every privilege on the database of dsn.
func withUser(t *testing.T, dsn string) (user, password string) {
	t.Helper()
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	user, password = "u_"+cfg.DBName, "p@ss/w:rd%x"
	mysqltest.Admin(t,
		fmt.Sprintf("CREATE USER '%s'@'%%' IDENTIFIED BY '%s'", user, password),
		fmt.Sprintf("GRANT ALL ON `%s`.* TO '%s'@'%%'", cfg.DBName, user))
	t.Cleanup(func() { mysqltest.Admin(t, fmt.Sprintf("DROP USER IF EXISTS '%s'@'%%'", user)) })
	return user, password
}

// openThroughConfig goes the way `migrate` goes: octavia.conf, its
// [database] connection, the driver configuration, the handle.
func openThroughConfig(t *testing.T, url string) *sql.DB {
	t.Helper()
	conf := filepath.Join(t.TempDir(), "octavia.conf")
	if err := os.WriteFile(conf, []byte("[database]\nconnection = "+url+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := octaviaconf.Load(conf)
	if err != nil {
		t.Fatalf("load %s: %v", octaviaconf.RedactURL(url), err)
	}
	if !cfg.Database.IsMySQL() {
		t.Fatal("not recognised as MySQL")
	}
	db, err := migrations.OpenMySQL(cfg.Database.MySQL)
	if err != nil {
		t.Fatal(err)
	}
	if !migrations.IsMySQL(db) {
		t.Error("IsMySQL(OpenMySQL(...)) = false")
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func rawDB(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	return mysqltest.Open(t, dsn, func(cfg *mysql.Config) { cfg.MultiStatements = true })
}

// fingerprint is every table's SHOW CREATE TABLE, ours left out.
func fingerprint(t *testing.T, db *sql.DB) []string {
	t.Helper()
	ctx := context.Background()
	rows, err := db.QueryContext(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() ORDER BY table_name`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(n, "ovh_") {
			tables = append(tables, n)
		}
	}
	rows.Close()
	var out []string
	for _, tb := range tables {
		var name, ddl string
		if err := db.QueryRowContext(ctx, "SHOW CREATE TABLE `"+tb+"`").Scan(&name, &ddl); err != nil {
			t.Fatal(err)
		}
		out = append(out, ddl)
	}
	return out
}

func hasTable(t *testing.T, db *sql.DB, name string) bool {
	t.Helper()
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?`, name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n == 1
}

// TestMigrateMySQLVerifiesAndCreatesOnlyOurTable: on the schema Octavia's
// alembic built, migrate finds nothing missing, creates ovh_stats_flush
// and leaves every table of Octavia's as it was; a second run creates
// nothing.
func TestMigrateMySQLVerifiesAndCreatesOnlyOurTable(t *testing.T) {
	t.Parallel()
	dsn := mysqltest.NewDB(t)
	raw := rawDB(t, dsn)
	own, err := migrations.MySQLOwnTableNames()
	if err != nil || !slices.Contains(own, migrations.StatsFlushTable) {
		t.Fatalf("our own tables %q, %v; want %s among them", own, err, migrations.StatsFlushTable)
	}
	for _, tb := range own {
		if !strings.HasPrefix(tb, "ovh_") {
			t.Errorf("our own table %s lacks the ovh_ prefix", tb)
		}
		if _, err := raw.Exec("DROP TABLE " + tb); err != nil {
			t.Fatal(err)
		}
	}
	before := fingerprint(t, raw)
	user, password := withUser(t, dsn)
	db := openThroughConfig(t, octaviaURL(t, dsn, user, strings.NewReplacer("@", "%40", "/", "%2F", ":", "%3A", "%", "%25").Replace(password), ""))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	res, err := migrations.MigrateMySQL(ctx, db, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("MigrateMySQL: %v (problems %q)", err, res.Problems)
	}
	if !res.Existing || len(res.Problems) != 0 || !slices.Equal(res.CreatedOwn, own) {
		t.Errorf("result %+v; want existing, no problems, created %q", res, own)
	}
	for _, tb := range own {
		if !hasTable(t, raw, tb) {
			t.Errorf("our table %s was not created", tb)
		}
	}
	if after := fingerprint(t, raw); !slices.Equal(after, before) {
		t.Error("migrate changed one of Octavia's tables")
	}
	res, err = migrations.MigrateMySQL(ctx, db, nil)
	if err != nil || len(res.CreatedOwn) != 0 {
		t.Errorf("second run: %+v, %v; want nothing created", res, err)
	}
	st, err := migrations.StatusMySQL(ctx, db)
	if err != nil || !st.Existing || len(st.Problems) != 0 {
		t.Errorf("StatusMySQL = %+v, %v", st, err)
	}
}

// TestMigrateMySQLReportsWhatIsMissing: every missing table, column, type
// and lookup row is listed; nothing is created.
func TestMigrateMySQLReportsWhatIsMissing(t *testing.T) {
	t.Parallel()
	dsn := mysqltest.NewDB(t)
	raw := rawDB(t, dsn)
	if _, err := raw.Exec(`SET FOREIGN_KEY_CHECKS = 0;
		DROP TABLE IF EXISTS ovh_stats_flush, ovh_claim_key;
		DROP TABLE listener_statistics;
		ALTER TABLE amphora_health DROP COLUMN busy;
		ALTER TABLE amphora_health MODIFY last_update TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP;
		ALTER TABLE amphora MODIFY compute_id INT NULL;
		DELETE FROM provisioning_status WHERE name = 'FAILOVER_STOPPED';
		DELETE FROM operating_status WHERE name IN ('DRAINING', 'NO_MONITOR');`); err != nil {
		t.Fatal(err)
	}
	user, _ := withUser(t, dsn)
	db := openThroughConfig(t, octaviaURL(t, dsn, user, "p%40ss%2Fw%3Ard%25x", "&connect_timeout=10"))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	res, err := migrations.MigrateMySQL(ctx, db, nil)
	if !errors.Is(err, migrations.ErrIncompatibleSchema) {
		t.Fatalf("MigrateMySQL err = %v; want ErrIncompatibleSchema", err)
	}
	want := []string{
		"column amphora_health.last_update is timestamp, want datetime",
		"missing column amphora_health.busy (want tinyint(1) (Boolean))",
		"column amphora.compute_id is int(11), want varchar, char or text",
		"missing table listener_statistics",
		"lookup table operating_status lacks row(s) DRAINING, NO_MONITOR",
		"lookup table provisioning_status lacks row(s) FAILOVER_STOPPED",
	}
	if !slices.Equal(res.Problems, want) {
		t.Errorf("problems\n got %q\nwant %q", res.Problems, want)
	}
	if hasTable(t, raw, migrations.StatsFlushTable) {
		t.Error("our table was created in a schema that failed verification")
	}
	st, err := migrations.StatusMySQL(ctx, db)
	if err != nil || !slices.Equal(st.Problems, want) {
		t.Errorf("StatusMySQL = %+v, %v", st, err)
	}
}

// TestMigrateMySQLRefusesAnEmptyDatabase: the schema must come from
// octavia-db-manage; migrate creates nothing at all.
func TestMigrateMySQLRefusesAnEmptyDatabase(t *testing.T) {
	t.Parallel()
	dsn := mysqltest.NewEmptyDB(t)
	user, _ := withUser(t, dsn)
	db := openThroughConfig(t, octaviaURL(t, dsn, user, "p%40ss%2Fw%3Ard%25x", ""))
	_, err := migrations.MigrateMySQL(context.Background(), db, nil)
	if !errors.Is(err, migrations.ErrNoOctaviaSchema) || !strings.Contains(err.Error(), "octavia-db-manage upgrade head") {
		t.Fatalf("err = %v; want ErrNoOctaviaSchema naming octavia-db-manage", err)
	}
	if hasTable(t, rawDB(t, dsn), migrations.StatsFlushTable) {
		t.Error("a table was created in an empty database")
	}
}

// TestServerVersionAccepted: the server the tests run is new enough; the
// refusal of older ones is mysqlconf's (TestCheckServerVersion).
func TestServerVersionAccepted(t *testing.T) {
	t.Parallel()
	db := rawDB(t, mysqltest.NewEmptyDB(t))
	v, err := migrations.MySQLServerVersion(context.Background(), db)
	if err != nil {
		t.Fatalf("server %q refused: %v", v, err)
	}
	if err := mysqlconf.CheckServerVersion(v); err != nil {
		t.Fatal(err)
	}
}

// TestConnectOverUnixSocket: unix_socket= in the URL reaches the server.
func TestConnectOverUnixSocket(t *testing.T) {
	t.Parallel()
	dsn := mysqltest.NewDB(t)
	var sock string
	if err := rawDB(t, dsn).QueryRow("SELECT @@socket").Scan(&sock); err != nil {
		t.Fatal(err)
	}
	user, _ := withUser(t, dsn)
	cfg, _ := mysql.ParseDSN(dsn)
	url := fmt.Sprintf("mysql+pymysql://%s:p%%40ss%%2Fw%%3Ard%%25x@/%s?unix_socket=%s", user, cfg.DBName, sock)
	db := openThroughConfig(t, url)
	var got string
	if err := db.QueryRow("SELECT DATABASE()").Scan(&got); err != nil || got != cfg.DBName {
		t.Fatalf("DATABASE() = %q, %v", got, err)
	}
	var mode string
	if err := db.QueryRow("SELECT @@SESSION.sql_mode").Scan(&mode); err != nil || !strings.Contains(mode, "STRICT_ALL_TABLES") {
		t.Errorf("sql_mode = %q, %v; want TRADITIONAL's", mode, err)
	}
}

// TestOldServerRefused: a connection to a server reporting a version
// without SKIP LOCKED (a fake version string in front of the real server)
// is refused with a message naming what is needed; the real version is
// accepted.
func TestOldServerRefused(t *testing.T) {
	t.Parallel()
	cfg, err := mysql.ParseDSN(mysqltest.NewEmptyDB(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		fake, want string
	}{
		{"10.5.21-MariaDB", "database server is MariaDB 10.5.21"},
		{"5.7.44-log", "needs MariaDB 10.6 or later, or MySQL 8.0 or later"},
		{"", ""},
	} {
		check := mysqlconf.CheckServerVersion
		if tt.fake != "" {
			check = func(string) error { return mysqlconf.CheckServerVersion(tt.fake) }
		}
		c, err := mysqlconf.NewConnector(cfg, check)
		if err != nil {
			t.Fatal(err)
		}
		db := sql.OpenDB(c)
		err = db.Ping()
		db.Close()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("real server refused: %v", err)
		case tt.want != "" && (!errors.Is(err, mysqlconf.ErrServerTooOld) || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("fake %q: err = %v; want ErrServerTooOld with %q", tt.fake, err, tt.want)
		}
	}
}
