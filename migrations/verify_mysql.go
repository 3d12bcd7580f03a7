package migrations

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"

	"github.com/go-sql-driver/mysql"

	"github.com/octavia-vpp/health/internal/mysqlconf"
)

// On MySQL and MariaDB the schema is Octavia's: `octavia-db-manage upgrade
// head` creates and upgrades it. MigrateMySQL verifies it against the
// columns and lookup rows the PostgreSQL verification lists (usedColumns,
// usedLookupRows) and creates our own tables (sql/mysql, ovh_ prefix), and
// nothing else. docs/user-guide.md, "Running against MariaDB/Galera".

// OpenMySQL returns a database/sql handle for a driver configuration as
// internal/mysqlconf produces it, whose connections refuse a server
// without SKIP LOCKED (mysqlconf.NewConnector). It does not connect.
func OpenMySQL(cfg *mysql.Config) (*sql.DB, error) {
	c, err := mysqlconf.NewConnector(cfg, mysqlconf.CheckServerVersion)
	if err != nil {
		return nil, fmt.Errorf("open database: %v", err)
	}
	return sql.OpenDB(c), nil
}

// IsMySQL tells whether db was opened by OpenMySQL.
func IsMySQL(db *sql.DB) bool {
	switch db.Driver().(type) {
	case mysql.MySQLDriver, *mysql.MySQLDriver:
		return true
	}
	return false
}

// mysqlAccepts tells whether a MySQL column (information_schema's
// DATA_TYPE and COLUMN_TYPE) is usable where the PostgreSQL check wants k.
func (k kind) mysqlAccepts(dataType, columnType string) bool {
	switch k {
	case kindString:
		return dataType == "varchar" || dataType == "char" || dataType == "text"
	case kindBool:
		// SQLAlchemy's Boolean: tinyint(1). MySQL 8.0.19 and later still
		// show tinyint's display width of 1.
		return dataType == "tinyint" || dataType == "bit" && columnType == "bit(1)"
	case kindTimestamp:
		// Octavia's DateTime is DATETIME, holding UTC. TIMESTAMP is
		// refused: the server converts it through the session time zone.
		return dataType == "datetime"
	case kindInt:
		return dataType == "int" || dataType == "bigint"
	case kindBigint:
		return dataType == "bigint"
	}
	return false
}

func (k kind) mysqlString() string {
	switch k {
	case kindString:
		return "varchar, char or text"
	case kindBool:
		return "tinyint(1) (Boolean)"
	case kindTimestamp:
		return "datetime"
	case kindInt:
		return "int or bigint"
	case kindBigint:
		return "bigint"
	}
	return "unknown"
}

// VerifyMySQL is Verify for MySQL and MariaDB: one line per table or
// column the health manager needs that is missing or of an unusable
// type, and per status value missing from a lookup table. It only reads.
func VerifyMySQL(ctx context.Context, db *sql.DB) ([]string, error) {
	rows, err := db.QueryContext(ctx, `SELECT table_name, column_name, data_type, column_type
		FROM information_schema.columns WHERE table_schema = DATABASE()`)
	if err != nil {
		return nil, fmt.Errorf("read information_schema.columns: %w", err)
	}
	defer rows.Close()
	type colType struct{ data, column string }
	types := map[[2]string]colType{}
	tables := map[string]bool{}
	for rows.Next() {
		var table, column, dataType, columnType string
		if err := rows.Scan(&table, &column, &dataType, &columnType); err != nil {
			return nil, fmt.Errorf("read information_schema.columns: %w", err)
		}
		// Table names are case-sensitive on Linux; Octavia's are lower case.
		types[[2]string{table, strings.ToLower(column)}] = colType{strings.ToLower(dataType), strings.ToLower(columnType)}
		tables[table] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read information_schema.columns: %w", err)
	}

	var problems []string
	missingTable := map[string]bool{}
	lookupOK := map[string]bool{}
	for _, c := range usedColumns {
		if !tables[c.table] {
			if !missingTable[c.table] {
				missingTable[c.table] = true
				problems = append(problems, fmt.Sprintf("missing table %s", c.table))
			}
			continue
		}
		got, ok := types[[2]string{c.table, c.column}]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("missing column %s.%s (want %s)", c.table, c.column, c.kind.mysqlString()))
		case !c.kind.mysqlAccepts(got.data, got.column):
			problems = append(problems, fmt.Sprintf("column %s.%s is %s, want %s", c.table, c.column, got.column, c.kind.mysqlString()))
		default:
			if _, isLookup := usedLookupRows[c.table]; isLookup {
				lookupOK[c.table] = true
			}
		}
	}

	lookups := make([]string, 0, len(usedLookupRows))
	for t := range usedLookupRows {
		lookups = append(lookups, t)
	}
	slices.Sort(lookups)
	for _, table := range lookups {
		if !lookupOK[table] {
			continue // already reported
		}
		want := usedLookupRows[table]
		args := make([]any, len(want))
		for i, w := range want {
			args[i] = w
		}
		// table comes from usedLookupRows, never from input.
		q := fmt.Sprintf("SELECT name FROM `%s` WHERE name IN (?%s)", table, strings.Repeat(", ?", len(want)-1))
		present, err := queryStrings(ctx, db, q, args...)
		if err != nil {
			return nil, fmt.Errorf("read lookup table %s: %w", table, err)
		}
		var missing []string
		for _, w := range want {
			if !slices.Contains(present, w) {
				missing = append(missing, w)
			}
		}
		if len(missing) > 0 {
			problems = append(problems, fmt.Sprintf("lookup table %s lacks row(s) %s", table, strings.Join(missing, ", ")))
		}
	}
	return problems, nil
}

func queryStrings(ctx context.Context, db *sql.DB, q string, args ...any) ([]string, error) {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// ErrNoOctaviaSchema is returned on MySQL when the database holds none of
// Octavia's tables: there, Octavia's own migrations must build the schema.
var ErrNoOctaviaSchema = errors.New("the database holds no Octavia schema; on MySQL/MariaDB create it with Octavia's " +
	"`octavia-db-manage upgrade head` first (this command never creates Octavia's tables there)")

var createTableName = regexp.MustCompile(`(?i)CREATE\s+TABLE\s+IF\s+NOT\s+EXISTS\s+` + "`?" + `(\w+)`)

// MySQLOwnTableNames are the tables sql/mysql creates, in file order.
func MySQLOwnTableNames() ([]string, error) {
	stmts, err := MySQLOwnTables()
	if err != nil {
		return nil, err
	}
	var names []string
	for _, s := range stmts {
		for _, m := range createTableName.FindAllStringSubmatch(s, -1) {
			names = append(names, m[1])
		}
	}
	return names, nil
}

// MySQLServerVersion reads SELECT VERSION() and refuses a server without
// SELECT ... FOR UPDATE SKIP LOCKED (mysqlconf.CheckServerVersion).
func MySQLServerVersion(ctx context.Context, db *sql.DB) (string, error) {
	var v string
	if err := db.QueryRowContext(ctx, "SELECT VERSION()").Scan(&v); err != nil {
		return "", fmt.Errorf("read the server version: %w", err)
	}
	return v, mysqlconf.CheckServerVersion(v)
}

// MigrateMySQL verifies Octavia's schema on a MySQL/MariaDB database and
// creates our own tables in it if they are missing. It never creates or
// alters Octavia's tables. A schema that fails verification yields the
// Result with its problems and an error wrapping ErrIncompatibleSchema;
// nothing is created then. A server older than MariaDB 10.6 or MySQL 8.0
// is refused.
func MigrateMySQL(ctx context.Context, db *sql.DB, logger *slog.Logger) (*Result, error) {
	logger = orDiscard(logger)
	if _, err := MySQLServerVersion(ctx, db); err != nil {
		return nil, err
	}
	res, err := statusMySQL(ctx, db)
	if err != nil {
		return nil, err
	}
	if len(res.Problems) > 0 {
		return res, fmt.Errorf("%w: %d problem(s)", ErrIncompatibleSchema, len(res.Problems))
	}
	logger.Info("verified Octavia's schema: every table, column and lookup row the health manager uses is present")
	own, err := MySQLOwnTableNames()
	if err != nil {
		return res, err
	}
	before, err := presentTables(ctx, db, own)
	if err != nil {
		return res, err
	}
	if err := CreateMySQLOwnTables(ctx, db); err != nil {
		return res, err
	}
	for _, t := range own {
		if !slices.Contains(before, t) {
			res.CreatedOwn = append(res.CreatedOwn, t)
			logger.Info("created our own table; nothing of Octavia's was changed", "table", t)
		}
	}
	return res, nil
}

// StatusMySQL is Status for MySQL/MariaDB: there are no migrations of
// ours to list, only the verification of Octavia's schema, and whether
// our own tables exist yet (a missing one is not a problem: migrate
// creates it).
func StatusMySQL(ctx context.Context, db *sql.DB) (*StatusReport, error) {
	var version string
	if err := db.QueryRowContext(ctx, "SELECT VERSION()").Scan(&version); err != nil {
		return nil, fmt.Errorf("read the server version: %w", err)
	}
	res, err := statusMySQL(ctx, db)
	if err != nil {
		return nil, err
	}
	if err := mysqlconf.CheckServerVersion(version); err != nil {
		res.Problems = append([]string{err.Error()}, res.Problems...)
	}
	return &StatusReport{Existing: true, Problems: res.Problems}, nil
}

func statusMySQL(ctx context.Context, db *sql.DB) (*Result, error) {
	octavia, err := presentTables(ctx, db, []string{"alembic_version", "amphora", "load_balancer"})
	if err != nil {
		return nil, err
	}
	if len(octavia) == 0 {
		return nil, ErrNoOctaviaSchema
	}
	problems, err := VerifyMySQL(ctx, db)
	if err != nil {
		return nil, err
	}
	return &Result{Existing: true, Problems: problems}, nil
}

func presentTables(ctx context.Context, db *sql.DB, names []string) ([]string, error) {
	args := make([]any, len(names))
	for i, n := range names {
		args[i] = n
	}
	got, err := queryStrings(ctx, db, `SELECT table_name FROM information_schema.tables
		WHERE table_schema = DATABASE() AND table_name IN (?`+strings.Repeat(", ?", len(names)-1)+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("read information_schema.tables: %w", err)
	}
	return got, nil
}
