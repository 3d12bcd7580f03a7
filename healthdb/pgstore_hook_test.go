package healthdb_test

import (
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/octavia-vpp/health/healthdb"
	"github.com/octavia-vpp/health/healthdb/pgstore"
)

func init() {
	healthdb.PGStoreFor = func(db *pgxpool.Pool) healthdb.PGTestStore { return pgstore.New(db) }
}
