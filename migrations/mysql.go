package migrations

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"sort"
)

// On MySQL and MariaDB, Octavia's schema belongs to Octavia's alembic
// (`octavia-db-manage upgrade head`); our only tables there are the ones in
// sql/mysql, each named with the ovh_ prefix. Every statement in them is
// idempotent (CREATE TABLE IF NOT EXISTS), so there is no version table of
// ours to keep.
//
//go:embed sql/mysql/*.sql
var mysqlFS embed.FS

// MySQLOwnTables returns the DDL of our own tables on MySQL, one statement
// per file, in file-name order.
func MySQLOwnTables() ([]string, error) {
	names, err := fs.Glob(mysqlFS, "sql/mysql/*.sql")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	stmts := make([]string, 0, len(names))
	for _, n := range names {
		b, err := mysqlFS.ReadFile(n)
		if err != nil {
			return nil, err
		}
		stmts = append(stmts, string(b))
	}
	return stmts, nil
}

// CreateMySQLOwnTables creates our own tables (and only those) on a MySQL
// database, if they are missing.
func CreateMySQLOwnTables(ctx context.Context, db *sql.DB) error {
	stmts, err := MySQLOwnTables()
	if err != nil {
		return err
	}
	for _, s := range stmts {
		if _, err := db.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("create our own MySQL tables: %w", err)
		}
	}
	return nil
}
