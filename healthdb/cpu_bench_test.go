package healthdb

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/octavia-vpp/health/test/pgtest"
)

func startCPU(b *testing.B, db *pgxpool.Pool) *pgtest.CPUMeter { return pgtest.StartCPU(b, db) }

func selfCPU() time.Duration { return pgtest.SelfCPU() }
