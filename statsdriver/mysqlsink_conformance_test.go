package statsdriver_test

import (
	"context"
	"database/sql"
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

func TestMySQLSinkConformance(t *testing.T) {
	sinktest.Run(t, func(t *testing.T) sinktest.Backend {
		cfg, err := mysql.ParseDSN(mysqltest.NewDB(t))
		if err != nil {
			t.Fatal(err)
		}
		cfg.ParseTime, cfg.Loc, cfg.InterpolateParams = true, time.UTC, true
		c, err := mysql.NewConnector(cfg)
		if err != nil {
			t.Fatal(err)
		}
		db := sql.OpenDB(c)
		t.Cleanup(func() { db.Close() })
		return myBackend{t: t, db: db, s: statsdriver.NewMySQLSink(db)}
	})
}
