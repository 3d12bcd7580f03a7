package migrations

import (
	"database/sql"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// Open returns a database/sql handle (which goose needs) for a PostgreSQL
// URL as octaviaconf produces it. It parses the URL but does not connect.
func Open(url string) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		// pgx's message would echo the URL and its password.
		return nil, errors.New("open database: malformed PostgreSQL URL")
	}
	return stdlib.OpenDB(*cfg), nil
}
