package pgtest_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/octavia-vpp/health/test/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func TestNewDBIsMigratedAndIsolated(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a := connect(t, pgtest.NewDB(t))
	b := connect(t, pgtest.NewDB(t))

	if _, err := a.Exec(ctx, `INSERT INTO amphora_health (amphora_id, last_update, busy)
		VALUES ('amp-1', now() AT TIME ZONE 'UTC', false)`); err != nil {
		t.Fatalf("insert into first database: %v", err)
	}
	var n int
	if err := b.QueryRow(ctx, `SELECT count(*) FROM amphora_health`).Scan(&n); err != nil {
		t.Fatalf("count in second database: %v", err)
	}
	if n != 0 {
		t.Errorf("second database sees %d amphora_health rows written to the first; want 0", n)
	}
	if err := a.QueryRow(ctx, `SELECT count(*) FROM operating_status`).Scan(&n); err != nil {
		t.Fatalf("count lookup rows: %v", err)
	}
	if n != 6 {
		t.Errorf("operating_status has %d rows; want Octavia's 6", n)
	}
}

func TestNewEmptyDBHasNoTables(t *testing.T) {
	t.Parallel()
	c := connect(t, pgtest.NewEmptyDB(t))
	var n int
	if err := c.QueryRow(context.Background(),
		`SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("empty database has %d tables; want 0", n)
	}
}

// The cluster's default time zone is not UTC on purpose; see the package
// documentation.
func TestServerTimeZoneIsNotUTC(t *testing.T) {
	t.Parallel()
	c := connect(t, pgtest.NewDB(t))
	var tz string
	if err := c.QueryRow(context.Background(), `SHOW TimeZone`).Scan(&tz); err != nil {
		t.Fatal(err)
	}
	if tz == "UTC" || tz == "Etc/UTC" {
		t.Errorf("TimeZone = %s; want a non-UTC zone so that time-zone bugs show", tz)
	}
}

func TestServerStopAndStart(t *testing.T) {
	s := pgtest.NewServer(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.URL())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO load_balancer (id, provisioning_status, operating_status, enabled) VALUES ('lb', 'ACTIVE', 'ONLINE', true)`); err != nil {
		t.Fatalf("the dedicated server's schema: %v", err)
	}
	s.Stop()
	if err := conn.Ping(ctx); err == nil {
		t.Error("a client is still connected to a stopped server")
	}
	if _, err := pgx.Connect(ctx, s.URL()); err == nil {
		t.Error("a stopped server accepts connections")
	}
	s.Start()
	conn2, err := pgx.Connect(ctx, s.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close(ctx)
	var n int
	if err := conn2.QueryRow(ctx, `SELECT count(*) FROM load_balancer`).Scan(&n); err != nil || n != 1 {
		t.Errorf("after the restart: %d rows, %v; want the data kept", n, err)
	}
}

// The offset applies to the server's clock only, and survives a restart.
func TestServerClockOffset(t *testing.T) {
	t.Parallel()
	for _, offset := range []time.Duration{300 * time.Second, -300 * time.Second} {
		srv := pgtest.NewServer(t, pgtest.ClockOffset(offset))
		for _, phase := range []string{"started", "restarted"} {
			if phase == "restarted" {
				srv.Stop()
				srv.Start()
			}
			conn := connect(t, srv.URL())
			var db time.Time
			before := time.Now()
			if err := conn.QueryRow(context.Background(), `SELECT clock_timestamp()`).Scan(&db); err != nil {
				t.Fatal(err)
			}
			after := time.Now()
			// The server's clock is the real one plus offset, read
			// between before and after.
			if db.Before(before.Add(offset-time.Second)) || db.After(after.Add(offset+time.Second)) {
				t.Errorf("offset %v, %s: server clock %v, local clock %v..%v", offset, phase, db, before, after)
			}
		}
	}
}
