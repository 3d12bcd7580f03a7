package statsdriver_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/octavia-vpp/health/statsdriver"
	"github.com/octavia-vpp/health/statsdriver/sinktest"
	"github.com/octavia-vpp/health/test/mysqltest"
)

type myBackend struct {
	t  *testing.T
	db *sql.DB
	s  *statsdriver.MySQLSink
}

func (b myBackend) Sink() statsdriver.FlushSink { return b.s }

func (b myBackend) Row(l, a string) (r statsdriver.StoredStats, ok bool) {
	if a == "" {
		a = l
	}
	err := b.db.QueryRowContext(context.Background(), `SELECT bytes_in, bytes_out, active_connections, total_connections, request_errors
		FROM listener_statistics WHERE listener_id = ? AND amphora_id = ?`, l, a).
		Scan(&r.BytesIn, &r.BytesOut, &r.ActiveConnections, &r.TotalConnections, &r.RequestErrors)
	return r, err == nil
}

func (b myBackend) DropKey() {
	b.t.Helper()
	if _, err := b.db.ExecContext(context.Background(), `DELETE FROM ovh_stats_flush WHERE manager_id = ?`, b.s.ManagerID()); err != nil {
		b.t.Fatal(err)
	}
}

// openMySQL opens dsn as the manager opens its MySQL database, closed at
// the test's end.
func openMySQL(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	return mysqltest.Open(t, dsn, func(cfg *mysql.Config) {
		cfg.ParseTime, cfg.Loc, cfg.InterpolateParams = true, time.UTC, true
	})
}

func TestMySQLSinkConformance(t *testing.T) {
	sinktest.Run(t, func(t *testing.T) sinktest.Backend {
		db := openMySQL(t, mysqltest.NewDB(t))
		return myBackend{t: t, db: db, s: statsdriver.NewMySQLSink(db)}
	})
}

// A flush whose COMMIT is cut off, before the server sees it or after it
// committed with the answer lost, is reported as in doubt; its retry is
// applied, or recognised as applied: the row counts it exactly once.
func TestMySQLSinkCommitCut(t *testing.T) {
	dsn := mysqltest.NewDB(t)
	proxy, proxied := mysqltest.NewProxy(t, dsn)
	b := myBackend{t: t, db: openMySQL(t, dsn), s: statsdriver.NewMySQLSink(openMySQL(t, proxied))}
	ctx := context.Background()
	for i, afterReply := range []bool{false, true} {
		seq := uint64(i + 1)
		fired := proxy.CutAtCommit(mysqltest.CommitCut{AfterReply: afterReply, Mentioning: "listener_statistics"})
		batch := &statsdriver.FlushBatch{Seq: seq, Increments: []statsdriver.ListenerStats{
			{ListenerID: "l-1", AmphoraID: "a-1", BytesIn: 1, BytesOut: 1, ActiveConnections: 1, TotalConnections: 1, RequestErrors: 1}}}
		_, err := b.s.ApplyFlush(ctx, batch)
		<-fired
		if !errors.Is(err, statsdriver.ErrOutcomeUnknown) {
			t.Fatalf("cut (after reply %v): %v, want ErrOutcomeUnknown", afterReply, err)
		}
		batch.Retry = true
		res, err := b.s.ApplyFlush(ctx, batch)
		if err != nil || res.AlreadyApplied != afterReply || res.Unresolvable {
			t.Fatalf("retry (after reply %v): %+v, %v", afterReply, res, err)
		}
		want := statsdriver.StoredStats{BytesIn: int64(seq), BytesOut: int64(seq), ActiveConnections: 1,
			TotalConnections: int64(seq), RequestErrors: int64(seq)}
		if got, ok := b.Row("l-1", "a-1"); !ok || got != want {
			t.Fatalf("after flush %d: %+v, want %+v", seq, got, want)
		}
	}
}
