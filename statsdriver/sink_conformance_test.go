package statsdriver_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/octavia-vpp/health/statsdriver"
	"github.com/octavia-vpp/health/statsdriver/sinktest"
	"github.com/octavia-vpp/health/test/pgtest"
)

type memBackend struct{ s *statsdriver.MemorySink }

func (b memBackend) Sink() statsdriver.FlushSink { return b.s }
func (b memBackend) Row(l, a string) (statsdriver.StoredStats, bool) {
	return b.s.Row(l, a)
}
func (b memBackend) DropKey() { b.s.DropKey() }

func TestMemorySinkConformance(t *testing.T) {
	sinktest.Run(t, func(*testing.T) sinktest.Backend { return memBackend{statsdriver.NewMemorySink()} })
}

type pgBackend struct {
	t  *testing.T
	db *pgxpool.Pool
	s  *statsdriver.DB
}

func (b pgBackend) Sink() statsdriver.FlushSink { return b.s }

func (b pgBackend) Row(l, a string) (r statsdriver.StoredStats, ok bool) {
	if a == "" {
		a = l
	}
	err := b.db.QueryRow(context.Background(), `SELECT bytes_in, bytes_out, active_connections, total_connections, request_errors
		FROM listener_statistics WHERE listener_id = $1 AND amphora_id = $2`, l, a).
		Scan(&r.BytesIn, &r.BytesOut, &r.ActiveConnections, &r.TotalConnections, &r.RequestErrors)
	return r, err == nil
}

func (b pgBackend) DropKey() {
	b.t.Helper()
	if _, err := b.db.Exec(context.Background(), `DELETE FROM ovh_stats_flush WHERE manager_id = $1`, b.s.ManagerID()); err != nil {
		b.t.Fatal(err)
	}
}

func TestDBSinkConformance(t *testing.T) {
	sinktest.Run(t, func(t *testing.T) sinktest.Backend {
		db := pgtest.NewPool(t)
		return pgBackend{t: t, db: db, s: statsdriver.NewDB(db)}
	})
}

// TestDBSinkConformanceUnprepared is the suite on a pool that does not
// prepare statements (default_query_exec_mode=exec, as behind a pooler in
// transaction mode).
func TestDBSinkConformanceUnprepared(t *testing.T) {
	sinktest.Run(t, func(t *testing.T) sinktest.Backend {
		cfg, err := pgxpool.ParseConfig(pgtest.NewDB(t))
		if err != nil {
			t.Fatal(err)
		}
		cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec
		db, err := pgxpool.NewWithConfig(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(db.Close)
		return pgBackend{t: t, db: db, s: statsdriver.NewDB(db)}
	})
}
