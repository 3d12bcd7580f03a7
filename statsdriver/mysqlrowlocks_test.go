package statsdriver_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/octavia-vpp/health/statsdriver"
	"github.com/octavia-vpp/health/test/mysqltest"
)

// A flush waits on the listener_statistics rows it writes only: another
// transaction holding one row (Octavia's own statistics writer) does not
// hold up a flush of all the others, which MariaDB, left to itself, reads
// by scanning the whole table.
func TestMySQLFlushWaitsOnNoOtherRow(t *testing.T) {
	db := openMySQL(t, mysqltest.NewDB(t))
	ctx := context.Background()
	const n = 6
	var flush []statsdriver.ListenerStats
	for i := 1; i <= n; i++ {
		l, a := fmt.Sprintf("l-%d", i), fmt.Sprintf("amp-%d", i)
		if _, err := db.ExecContext(ctx, `INSERT INTO listener_statistics
			(listener_id, amphora_id, bytes_in, bytes_out, active_connections, total_connections, request_errors)
			VALUES (?, ?, 1, 1, 1, 1, 0)`, l, a); err != nil {
			t.Fatal(err)
		}
		if i > 1 {
			flush = append(flush, statsdriver.ListenerStats{ListenerID: l, AmphoraID: a, BytesIn: 10, TotalConnections: 2})
		}
	}
	holder, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Rollback()
	if _, err := holder.ExecContext(ctx, `SELECT 1 FROM listener_statistics WHERE listener_id = 'l-1' FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	fctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if _, err := statsdriver.NewMySQLSink(db).ApplyFlush(fctx, &statsdriver.FlushBatch{Seq: 1, Increments: flush}); err != nil {
		t.Fatalf("flush beside a transaction holding a row it does not write: %v", err)
	}
	var bytesIn int64
	if err := db.QueryRowContext(ctx, `SELECT bytes_in FROM listener_statistics WHERE listener_id = 'l-6'`).Scan(&bytesIn); err != nil || bytesIn != 11 {
		t.Errorf("l-6 bytes_in = %d, %v; want 11", bytesIn, err)
	}
}
