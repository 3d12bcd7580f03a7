package migrations

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
)

// kind groups the PostgreSQL types under which a column is usable by the
// health manager's queries.
type kind int

const (
	kindString    kind = iota // character varying, character, text
	kindBool                  // boolean (Octavia's tinyint(1), docs/schema.md)
	kindTimestamp             // timestamp without time zone holding UTC
	kindInt                   // integer or bigint
	kindBigint                // bigint only: counters that outgrow 32 bits
)

func (k kind) String() string {
	switch k {
	case kindString:
		return "a character type"
	case kindBool:
		return "boolean"
	case kindTimestamp:
		return "timestamp without time zone"
	case kindInt:
		return "integer or bigint"
	case kindBigint:
		return "bigint"
	}
	return "unknown"
}

func (k kind) accepts(dataType string) bool {
	switch k {
	case kindString:
		return dataType == "character varying" || dataType == "character" || dataType == "text"
	case kindBool:
		return dataType == "boolean"
	case kindTimestamp:
		// timestamptz is refused on purpose: the health manager writes
		// now() AT TIME ZONE 'UTC', which a timestamptz column would
		// reinterpret in the session's TimeZone.
		return dataType == "timestamp without time zone"
	case kindInt:
		return dataType == "integer" || dataType == "bigint"
	case kindBigint:
		return dataType == "bigint"
	}
	return false
}

type usedColumn struct {
	table, column string
	kind          kind
}

// usedColumns are the columns the health manager reads or writes: the
// health-update query, the status writes, the statistics
// upsert and the stale-amphora watcher.
var usedColumns = []usedColumn{
	{"amphora_health", "amphora_id", kindString},
	{"amphora_health", "last_update", kindTimestamp},
	{"amphora_health", "busy", kindBool},

	{"amphora", "id", kindString},
	{"amphora", "compute_id", kindString},
	{"amphora", "status", kindString},
	{"amphora", "load_balancer_id", kindString},
	{"amphora", "role", kindString},
	{"amphora", "updated_at", kindTimestamp},

	{"load_balancer", "id", kindString},
	{"load_balancer", "enabled", kindBool},
	{"load_balancer", "provisioning_status", kindString},
	{"load_balancer", "operating_status", kindString},
	{"load_balancer", "updated_at", kindTimestamp},

	{"listener", "id", kindString},
	{"listener", "load_balancer_id", kindString},
	{"listener", "default_pool_id", kindString},
	{"listener", "protocol", kindString},
	{"listener", "enabled", kindBool},
	{"listener", "provisioning_status", kindString},
	{"listener", "operating_status", kindString},
	{"listener", "updated_at", kindTimestamp},

	{"pool", "id", kindString},
	{"pool", "load_balancer_id", kindString},
	{"pool", "operating_status", kindString},
	{"pool", "updated_at", kindTimestamp},

	{"member", "id", kindString},
	{"member", "pool_id", kindString},
	{"member", "enabled", kindBool},
	{"member", "operating_status", kindString},
	{"member", "updated_at", kindTimestamp},

	{"listener_statistics", "listener_id", kindString},
	{"listener_statistics", "amphora_id", kindString},
	{"listener_statistics", "bytes_in", kindBigint},
	{"listener_statistics", "bytes_out", kindBigint},
	{"listener_statistics", "active_connections", kindInt},
	{"listener_statistics", "total_connections", kindBigint},
	{"listener_statistics", "request_errors", kindBigint},

	{"operating_status", "name", kindString},
	{"provisioning_status", "name", kindString},
}

// usedLookupRows are the status values the health manager writes; the
// foreign keys on the status columns refuse any value missing here.
var usedLookupRows = map[string][]string{
	"operating_status":    {"DEGRADED", "DRAINING", "ERROR", "NO_MONITOR", "OFFLINE", "ONLINE"},
	"provisioning_status": {"ACTIVE", "DELETED", "ERROR", "FAILOVER_STOPPED", "PENDING_UPDATE"},
}

// Verify checks that the database's current schema has every column the
// health manager uses, with a compatible type, and every status value it
// writes. It returns one human-readable line per problem; none means the
// schema is usable. It only reads.
func Verify(ctx context.Context, db *sql.DB) ([]string, error) {
	rows, err := db.QueryContext(ctx, `SELECT table_name, column_name, data_type
		FROM information_schema.columns
		WHERE table_schema = current_schema()`)
	if err != nil {
		return nil, fmt.Errorf("read information_schema.columns: %w", err)
	}
	defer rows.Close()
	types := map[[2]string]string{}
	for rows.Next() {
		var table, column, dataType string
		if err := rows.Scan(&table, &column, &dataType); err != nil {
			return nil, fmt.Errorf("read information_schema.columns: %w", err)
		}
		types[[2]string{table, column}] = dataType
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read information_schema.columns: %w", err)
	}

	var problems []string
	lookupTables := map[string]bool{}
	for _, c := range usedColumns {
		got, ok := types[[2]string{c.table, c.column}]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("missing column %s.%s (want %s)", c.table, c.column, c.kind))
		case !c.kind.accepts(got):
			problems = append(problems, fmt.Sprintf("column %s.%s is %s, want %s", c.table, c.column, got, c.kind))
		default:
			if _, isLookup := usedLookupRows[c.table]; isLookup {
				lookupTables[c.table] = true
			}
		}
	}

	tables := make([]string, 0, len(usedLookupRows))
	for t := range usedLookupRows {
		tables = append(tables, t)
	}
	slices.Sort(tables)
	for _, table := range tables {
		if !lookupTables[table] {
			continue // already reported as a missing column
		}
		// table comes from usedLookupRows, never from input.
		q := fmt.Sprintf(`SELECT name FROM %s WHERE name = ANY($1)`, table)
		rows, err := db.QueryContext(ctx, q, usedLookupRows[table])
		if err != nil {
			return nil, fmt.Errorf("read lookup table %s: %w", table, err)
		}
		present := map[string]bool{}
		for rows.Next() {
			var name string
			if err := rows.Scan(&name); err != nil {
				rows.Close()
				return nil, fmt.Errorf("read lookup table %s: %w", table, err)
			}
			present[name] = true
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("read lookup table %s: %w", table, err)
		}
		var missing []string
		for _, want := range usedLookupRows[table] {
			if !present[want] {
				missing = append(missing, want)
			}
		}
		if len(missing) > 0 {
			problems = append(problems, fmt.Sprintf("lookup table %s lacks row(s) %s", table, strings.Join(missing, ", ")))
		}
	}
	return problems, nil
}
