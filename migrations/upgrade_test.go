package migrations_test

import (
	"slices"
	"testing"

	"github.com/octavia-vpp/health/migrations"
	"github.com/octavia-vpp/health/test/pgtest"
)

// TestUpgradeFromTwoMigrations: a database an earlier release migrated
// (00001 and 00002 only) gets Octavia's remaining tables and the alembic
// head, and keeps its rows; it then matches a fresh migration.
func TestUpgradeFromTwoMigrations(t *testing.T) {
	t.Parallel()
	db := open(t, pgtest.NewEmptyDB(t))
	if err := migrations.MigrateUpTo(ctx(t), db, 2); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx(t), `INSERT INTO amphora_health (amphora_id, last_update, busy) VALUES ('a1', now(), false)`); err != nil {
		t.Fatal(err)
	}

	res, err := migrations.Migrate(ctx(t), db, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"00003_octavia_11_remaining_tables.sql", "00004_alembic_version.sql", "00005_hot_updates.sql", "00006_ovh_lb_version.sql"}; res.Existing || !slices.Equal(res.Applied, want) {
		t.Fatalf("Migrate = %+v; want %q applied", res, want)
	}
	if got := queryLines(t, db, `SELECT amphora_id FROM amphora_health`); !slices.Equal(got, []string{"a1"}) {
		t.Errorf("amphora_health after the upgrade = %q, want [a1]", got)
	}
	assertSpecSchema(t, readSchema(t, db))
	if got := queryLines(t, db, `SELECT version_num FROM alembic_version`); !slices.Equal(got, []string{migrations.OctaviaAlembicHead}) {
		t.Errorf("alembic_version = %q", got)
	}
}
