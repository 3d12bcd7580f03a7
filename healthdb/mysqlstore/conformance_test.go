package mysqlstore_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/octavia-vpp/health/healthdb/mysqlstore"
	"github.com/octavia-vpp/health/healthdb/storetest"
	"github.com/octavia-vpp/health/test/mysqltest"
)

func TestMain(m *testing.M) { mysqltest.Main(m) }

// openStore opens the store on a fresh database with Octavia's schema.
func openStore(t *testing.T) (*mysqlstore.Store, *sql.DB) {
	t.Helper()
	cfg, err := mysql.ParseDSN(mysqltest.NewDB(t))
	if err != nil {
		t.Fatal(err)
	}
	db, err := mysqlstore.OpenDB(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return mysqlstore.New(db), db
}

// myBackend adapts the MySQL store, on a throwaway MariaDB database with
// the schema Octavia's alembic builds, to the conformance suite.
type myBackend struct {
	t    *testing.T
	db   *sql.DB
	s    *mysqlstore.Store
	port int
}

func (b *myBackend) Store() storetest.Store { return b.s }

func (b *myBackend) exec(q string, args ...any) {
	b.t.Helper()
	if _, err := b.db.ExecContext(context.Background(), q, args...); err != nil {
		b.t.Fatalf("%s: %v", q, err)
	}
}

// Now is the database clock at the precision of Octavia's DATETIME
// columns, converted by the server's own rule for storing into them.
func (b *myBackend) Now() time.Time {
	b.t.Helper()
	var at time.Time
	if err := b.db.QueryRowContext(context.Background(), `SELECT CAST(UTC_TIMESTAMP(6) AS DATETIME)`).Scan(&at); err != nil {
		b.t.Fatalf("read the database clock: %v", err)
	}
	return at
}

func (b *myBackend) AddLoadBalancer(id, provisioning, operating string, enabled bool) {
	b.exec(`INSERT INTO load_balancer (id, provisioning_status, operating_status, enabled) VALUES (?, ?, ?, ?)`,
		id, provisioning, operating, enabled)
}

func (b *myBackend) AddAmphora(id, lbID, status, computeID string) {
	b.exec(`INSERT INTO amphora (id, load_balancer_id, status, compute_id, cert_busy) VALUES (?, NULLIF(?, ''), ?, NULLIF(?, ''), 0)`,
		id, lbID, status, computeID)
}

func (b *myBackend) AddListener(id, lbID, protocol, operating string, enabled bool, defaultPool string) {
	b.port++
	b.exec(`INSERT INTO listener (id, load_balancer_id, protocol, protocol_port, provisioning_status, operating_status, enabled, default_pool_id)
		VALUES (?, ?, ?, ?, 'ACTIVE', ?, ?, NULLIF(?, ''))`, id, lbID, protocol, b.port, operating, enabled, defaultPool)
}

func (b *myBackend) AddPool(id, lbID, operating string) {
	b.exec(`INSERT INTO pool (id, load_balancer_id, protocol, lb_algorithm, operating_status, enabled, provisioning_status)
		VALUES (?, ?, 'HTTP', 'ROUND_ROBIN', ?, 1, 'ACTIVE')`, id, lbID, operating)
}

func (b *myBackend) AddMember(id, poolID, operating string, enabled bool) {
	b.port++
	b.exec(`INSERT INTO member (id, pool_id, ip_address, protocol_port, operating_status, enabled, provisioning_status, backup)
		VALUES (?, ?, '192.0.2.1', ?, ?, ?, 'ACTIVE', 0)`, id, poolID, b.port, operating, enabled)
}

func (b *myBackend) AddHealth(amphoraID string, age time.Duration, busy bool) {
	b.exec(`INSERT INTO amphora_health (amphora_id, last_update, busy)
		VALUES (?, UTC_TIMESTAMP(6) - INTERVAL ? MICROSECOND, ?)`, amphoraID, age.Microseconds(), busy)
}

func (b *myBackend) Health(amphoraID string) (lastUpdate time.Time, busy, ok bool) {
	err := b.db.QueryRowContext(context.Background(), `SELECT last_update, busy FROM amphora_health WHERE amphora_id = ?`, amphoraID).
		Scan(&lastUpdate, &busy)
	return lastUpdate, busy, err == nil
}

func (b *myBackend) AmphoraStatus(id string) (status string, updatedAt *time.Time) {
	b.t.Helper()
	if err := b.db.QueryRowContext(context.Background(), `SELECT status, updated_at FROM amphora WHERE id = ?`, id).
		Scan(&status, &updatedAt); err != nil {
		b.t.Fatalf("read amphora %s: %v", id, err)
	}
	return status, updatedAt
}

func (b *myBackend) OperatingStatus(table, id string) (status string, updatedAt *time.Time) {
	b.t.Helper()
	if err := b.db.QueryRowContext(context.Background(), `SELECT operating_status, updated_at FROM `+table+` WHERE id = ?`, id).
		Scan(&status, &updatedAt); err != nil {
		b.t.Fatalf("read %s %s: %v", table, id, err)
	}
	return status, updatedAt
}

func TestMariaDBStoreConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Backend {
		s, db := openStore(t)
		return &myBackend{t: t, db: db, s: s}
	})
}
