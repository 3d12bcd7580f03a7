package statsdriver_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/octavia-vpp/health/statsdriver"
	"github.com/octavia-vpp/health/test/mysqltest"
)

// TestMySQLDBStopsAtTheFirstRefusedListener: stats_db heartbeat by
// heartbeat on MariaDB keeps Octavia's rules: deltas add, the gauge is
// replaced, and the first listener refused (a negative delta sum on an
// existing row; an id longer than the column) stops the rest of the
// message while those before it stay written.
func TestMySQLDBStopsAtTheFirstRefusedListener(t *testing.T) {
	t.Parallel()
	db := mysqltest.Open(t, mysqltest.NewDB(t), func(cfg *mysql.Config) {
		cfg.ParseTime, cfg.Loc = true, time.UTC
		cfg.Params = map[string]string{"sql_mode": "'TRADITIONAL'"}
	})
	ctx := context.Background()
	if _, err := db.Exec(`INSERT INTO listener_statistics (listener_id, amphora_id, bytes_in, bytes_out, active_connections, total_connections, request_errors) VALUES ('l-2', 'a', 100, 100, 1, 100, 0)`); err != nil {
		t.Fatal(err)
	}
	d := statsdriver.NewMySQLDB(db)
	row := func(l string) string {
		var v [5]int64
		err := db.QueryRow(`SELECT bytes_in, bytes_out, active_connections, total_connections, request_errors
			FROM listener_statistics WHERE listener_id = ? AND amphora_id = 'a'`, l).Scan(&v[0], &v[1], &v[2], &v[3], &v[4])
		if errors.Is(err, sql.ErrNoRows) {
			return "none"
		}
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(v[0], " ", v[1], " ", v[2], " ", v[3], " ", v[4])
	}

	err := d.Update(ctx, []statsdriver.ListenerStats{
		{ListenerID: "l-1", AmphoraID: "a", BytesIn: 5, BytesOut: 6, ActiveConnections: 2, TotalConnections: 3, RequestErrors: 1},
		{ListenerID: "l-2", AmphoraID: "a", BytesIn: 5, BytesOut: 6, ActiveConnections: 7, TotalConnections: 3, RequestErrors: 0},
		{ListenerID: "l-2", AmphoraID: "a", BytesIn: -500, BytesOut: 0, ActiveConnections: 0},
		{ListenerID: "l-3", AmphoraID: "a", BytesIn: 1},
	}, true)
	var refused *statsdriver.RefusedError
	if !errors.As(err, &refused) || refused.Written != 2 || refused.After != 1 {
		t.Fatalf("err = %v; want a refusal after 2 written, 1 after", err)
	}
	for l, want := range map[string]string{"l-1": "5 6 2 3 1", "l-2": "105 106 7 103 0", "l-3": "none"} {
		if got := row(l); got != want {
			t.Errorf("%s: %s; want %s", l, got, want)
		}
	}

	long := strings.Repeat("x", 37)
	err = d.Update(ctx, []statsdriver.ListenerStats{
		{ListenerID: "l-3", AmphoraID: "a", BytesIn: 1},
		{ListenerID: long, AmphoraID: "a", BytesIn: 1},
		{ListenerID: "l-4", AmphoraID: "a", BytesIn: 1},
	}, false)
	if !errors.As(err, &refused) || refused.Written != 1 {
		t.Fatalf("err = %v; want a refusal after 1 written", err)
	}
	if got := row("l-3"); got != "1 0 0 0 0" {
		t.Errorf("l-3: %s", got)
	}
	if got := row("l-4"); got != "none" {
		t.Errorf("l-4 written after a refused listener: %s", got)
	}
}
