package pgstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/octavia-vpp/health/healthdb"
	"github.com/octavia-vpp/health/healthdb/pgstore"
	"github.com/octavia-vpp/health/healthdb/storetest"
	"github.com/octavia-vpp/health/test/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// pgBackend adapts the PostgreSQL store, on a throwaway database with
// Octavia's schema, to the conformance suite.
type pgBackend struct {
	t    *testing.T
	db   *pgxpool.Pool
	s    *pgstore.Store
	port int
}

func (b *pgBackend) Store() storetest.Store { return b.s }

func (b *pgBackend) exec(sql string, args ...any) {
	b.t.Helper()
	if _, err := b.db.Exec(context.Background(), sql, args...); err != nil {
		b.t.Fatalf("%s: %v", sql, err)
	}
}

func (b *pgBackend) Now() time.Time {
	b.t.Helper()
	var at time.Time
	if err := b.db.QueryRow(context.Background(), `SELECT clock_timestamp() AT TIME ZONE 'UTC'`).Scan(&at); err != nil {
		b.t.Fatalf("read the database clock: %v", err)
	}
	return at
}

func (b *pgBackend) AddLoadBalancer(id, provisioning, operating string, enabled bool) {
	b.exec(`INSERT INTO load_balancer (id, provisioning_status, operating_status, enabled) VALUES ($1, $2, $3, $4)`,
		id, provisioning, operating, enabled)
}

func (b *pgBackend) AddAmphora(id, lbID, status, computeID string) {
	b.exec(`INSERT INTO amphora (id, load_balancer_id, status, compute_id, cert_busy) VALUES ($1, NULLIF($2, ''), $3, NULLIF($4, ''), false)`,
		id, lbID, status, computeID)
}

func (b *pgBackend) AddListener(id, lbID, protocol, operating string, enabled bool, defaultPool string) {
	b.port++
	b.exec(`INSERT INTO listener (id, load_balancer_id, protocol, protocol_port, provisioning_status, operating_status, enabled, default_pool_id)
		VALUES ($1, $2, $3, $4, 'ACTIVE', $5, $6, NULLIF($7, ''))`, id, lbID, protocol, b.port, operating, enabled, defaultPool)
}

func (b *pgBackend) AddPool(id, lbID, operating string) {
	b.exec(`INSERT INTO pool (id, load_balancer_id, protocol, lb_algorithm, operating_status, enabled, provisioning_status)
		VALUES ($1, $2, 'HTTP', 'ROUND_ROBIN', $3, true, 'ACTIVE')`, id, lbID, operating)
}

func (b *pgBackend) AddMember(id, poolID, operating string, enabled bool) {
	b.port++
	b.exec(`INSERT INTO member (id, pool_id, ip_address, protocol_port, operating_status, enabled, provisioning_status, backup)
		VALUES ($1, $2, '192.0.2.1', $3, $4, $5, 'ACTIVE', false)`, id, poolID, b.port, operating, enabled)
}

func (b *pgBackend) AddHealth(amphoraID string, age time.Duration, busy bool) {
	b.exec(`INSERT INTO amphora_health (amphora_id, last_update, busy)
		VALUES ($1, (now() AT TIME ZONE 'UTC') - $2::interval, $3)`, amphoraID, age, busy)
}

func (b *pgBackend) Health(amphoraID string) (lastUpdate time.Time, busy, ok bool) {
	err := b.db.QueryRow(context.Background(), `SELECT last_update, busy FROM amphora_health WHERE amphora_id = $1`, amphoraID).
		Scan(&lastUpdate, &busy)
	return lastUpdate, busy, err == nil
}

func (b *pgBackend) AmphoraStatus(id string) (status string, updatedAt *time.Time) {
	b.t.Helper()
	if err := b.db.QueryRow(context.Background(), `SELECT status, updated_at FROM amphora WHERE id = $1`, id).
		Scan(&status, &updatedAt); err != nil {
		b.t.Fatalf("read amphora %s: %v", id, err)
	}
	return status, updatedAt
}

func (b *pgBackend) OperatingStatus(table, id string) (status string, updatedAt *time.Time) {
	b.t.Helper()
	if err := b.db.QueryRow(context.Background(), `SELECT operating_status, updated_at FROM `+table+` WHERE id = $1`, id).
		Scan(&status, &updatedAt); err != nil {
		b.t.Fatalf("read %s %s: %v", table, id, err)
	}
	return status, updatedAt
}

func TestPostgreSQLStoreConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Backend {
		db := pgtest.NewPool(t)
		return &pgBackend{t: t, db: db, s: pgstore.New(db)}
	})
}

// cachedStore serves LoadTopologies through a topology cache, so that the
// suite's reads after its own row changes check that the cache sees them.
type cachedStore struct {
	*pgstore.Store
	cache healthdb.TopologyCache
}

func (s cachedStore) LoadTopologies(ctx context.Context, ids []string) (map[string]*healthdb.Topology, error) {
	return s.cache.Load(ctx, ids, time.Now())
}

type cachedBackend struct {
	*pgBackend
	store cachedStore
}

func (b *cachedBackend) Store() storetest.Store { return b.store }

func TestPostgreSQLStoreConformanceWithTopologyCache(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Backend {
		db := pgtest.NewPool(t)
		s := pgstore.New(db)
		return &cachedBackend{pgBackend: &pgBackend{t: t, db: db, s: s},
			store: cachedStore{Store: s, cache: s.NewTopologyCache(time.Hour, 0, nil)}}
	})
}
