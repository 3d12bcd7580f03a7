package mysqltest

import (
	"context"
	"database/sql"
	"testing"
	"time"
)

func TestMain(m *testing.M) { Main(m) }

func TestNewDBHoldsOctaviaSchema(t *testing.T) {
	t.Parallel()
	db := NewSQLDB(t)
	ctx := context.Background()
	var version string
	if err := db.QueryRowContext(ctx, "SELECT version_num FROM alembic_version").Scan(&version); err != nil {
		t.Fatalf("alembic_version: %v", err)
	}
	if version == "" {
		t.Fatal("alembic_version is empty")
	}
	var n int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM provisioning_status WHERE name = 'ALLOCATED'").Scan(&n); err != nil || n != 1 {
		t.Fatalf("provisioning_status ALLOCATED: n=%d err=%v", n, err)
	}
	// Foreign keys survive the copy: an amphora with an unknown status is refused.
	_, err := db.ExecContext(ctx, `INSERT INTO amphora (id, status, cert_busy) VALUES ('a', 'NO_SUCH_STATUS', 0)`)
	if err == nil {
		t.Fatal("foreign key on amphora.status was not copied")
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO ovh_stats_flush VALUES ('m', 1, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))`); err != nil {
		t.Fatalf("ovh_stats_flush: %v", err)
	}
}

func TestDatabasesAreIsolated(t *testing.T) {
	t.Parallel()
	a, b := NewSQLDB(t), NewSQLDB(t)
	ctx := context.Background()
	if _, err := a.ExecContext(ctx, `INSERT INTO amphora_health VALUES ('x', UTC_TIMESTAMP(), 0)`); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := b.QueryRowContext(ctx, "SELECT COUNT(*) FROM amphora_health").Scan(&n); err != nil || n != 0 {
		t.Fatalf("second database sees %d rows (err %v)", n, err)
	}
}

func TestServerStopStart(t *testing.T) {
	t.Parallel()
	s := NewServer(t)
	open := func() *sql.DB {
		db, err := openDSN(s.DSN())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	db := open()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := db.ExecContext(ctx, `INSERT INTO amphora_health VALUES ('x', UTC_TIMESTAMP(), 0)`); err != nil {
		t.Fatal(err)
	}
	s.Stop()
	if err := db.PingContext(ctx); err == nil {
		t.Fatal("ping succeeded on a stopped server")
	}
	s.Start()
	var n int
	if err := open().QueryRowContext(ctx, "SELECT COUNT(*) FROM amphora_health").Scan(&n); err != nil || n != 1 {
		t.Fatalf("after restart: %d rows, err %v", n, err)
	}
}

func TestServerTimeZoneIsNotUTC(t *testing.T) {
	t.Parallel()
	db := NewSQLDB(t)
	var skew int
	if err := db.QueryRow("SELECT TIMESTAMPDIFF(MINUTE, UTC_TIMESTAMP(), NOW())").Scan(&skew); err != nil {
		t.Fatal(err)
	}
	if skew != 12*60+45 {
		t.Fatalf("NOW() - UTC_TIMESTAMP() = %d minutes, want 765", skew)
	}
}
