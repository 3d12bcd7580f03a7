package migrations

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// This file adapts a pgx connection to database/sql, which goose requires.
//
// Why not pgx's own github.com/jackc/pgx/v5/stdlib: it imports pgxpool and
// so github.com/jackc/puddle/v2, which go.mod does not list, and go.mod is
// not this package's to change. Once puddle is listed, Open can become
// sql.Open("pgx", url) and this file can go. The adapter covers what goose
// and this package use: plain and parameterised statements, transactions,
// and scanning into the database/sql base types.

// Open returns a database/sql handle for a PostgreSQL URL (as produced by
// octaviaconf). It parses the URL but does not connect.
func Open(url string) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		// pgx's message would echo the URL and its password.
		return nil, errors.New("open database: malformed PostgreSQL URL")
	}
	return sql.OpenDB(&connector{cfg: cfg}), nil
}

type connector struct{ cfg *pgx.ConnConfig }

func (c *connector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, c.cfg.Copy())
	if err != nil {
		return nil, err
	}
	return &sqlConn{conn: conn}, nil
}

func (c *connector) Driver() driver.Driver { return sqlDriver{} }

// sqlDriver exists because driver.Connector must name one; connections are
// only ever made through the connector.
type sqlDriver struct{}

func (sqlDriver) Open(string) (driver.Conn, error) {
	return nil, errors.New("migrations: use migrations.Open")
}

type sqlConn struct{ conn *pgx.Conn }

var (
	_ driver.ExecerContext      = (*sqlConn)(nil)
	_ driver.QueryerContext     = (*sqlConn)(nil)
	_ driver.ConnBeginTx        = (*sqlConn)(nil)
	_ driver.NamedValueChecker  = (*sqlConn)(nil)
	_ driver.SessionResetter    = (*sqlConn)(nil)
	_ driver.Validator          = (*sqlConn)(nil)
	_ driver.ConnPrepareContext = (*sqlConn)(nil)
)

func (c *sqlConn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

// PrepareContext returns a statement that is sent when executed: pgx
// prepares and caches it per connection by itself.
func (c *sqlConn) PrepareContext(_ context.Context, query string) (driver.Stmt, error) {
	return &sqlStmt{conn: c, query: query}, nil
}

func (c *sqlConn) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c.conn.Close(ctx)
}

func (c *sqlConn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

func (c *sqlConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	var txOpts pgx.TxOptions
	switch sql.IsolationLevel(opts.Isolation) {
	case sql.LevelDefault:
	case sql.LevelReadCommitted:
		txOpts.IsoLevel = pgx.ReadCommitted
	case sql.LevelRepeatableRead, sql.LevelSnapshot:
		txOpts.IsoLevel = pgx.RepeatableRead
	case sql.LevelSerializable:
		txOpts.IsoLevel = pgx.Serializable
	default:
		return nil, fmt.Errorf("unsupported isolation level %v", sql.IsolationLevel(opts.Isolation))
	}
	if opts.ReadOnly {
		txOpts.AccessMode = pgx.ReadOnly
	}
	tx, err := c.conn.BeginTx(ctx, txOpts)
	if err != nil {
		return nil, err
	}
	return sqlTx{tx: tx}, nil
}

// CheckNamedValue passes every argument to pgx unchanged, so that slices
// (for = ANY($1)) and other types pgx encodes are accepted.
func (c *sqlConn) CheckNamedValue(*driver.NamedValue) error { return nil }

func (c *sqlConn) ResetSession(context.Context) error {
	if c.conn.IsClosed() {
		return driver.ErrBadConn
	}
	return nil
}

func (c *sqlConn) IsValid() bool { return !c.conn.IsClosed() }

func (c *sqlConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	tag, err := c.conn.Exec(ctx, query, values(args)...)
	if err != nil {
		return nil, err
	}
	return sqlResult{tag: tag}, nil
}

func (c *sqlConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	rows, err := c.conn.Query(ctx, query, values(args)...)
	if err != nil {
		return nil, err
	}
	return &sqlRows{rows: rows}, nil
}

func values(args []driver.NamedValue) []any {
	out := make([]any, len(args))
	for i, a := range args {
		out[i] = a.Value
	}
	return out
}

type sqlStmt struct {
	conn  *sqlConn
	query string
}

func (s *sqlStmt) Close() error  { return nil }
func (s *sqlStmt) NumInput() int { return -1 }

func (s *sqlStmt) Exec(args []driver.Value) (driver.Result, error) {
	return s.conn.ExecContext(context.Background(), s.query, named(args))
}

func (s *sqlStmt) Query(args []driver.Value) (driver.Rows, error) {
	return s.conn.QueryContext(context.Background(), s.query, named(args))
}

func named(args []driver.Value) []driver.NamedValue {
	out := make([]driver.NamedValue, len(args))
	for i, v := range args {
		out[i] = driver.NamedValue{Ordinal: i + 1, Value: v}
	}
	return out
}

type sqlTx struct{ tx pgx.Tx }

func (t sqlTx) Commit() error   { return t.tx.Commit(context.Background()) }
func (t sqlTx) Rollback() error { return t.tx.Rollback(context.Background()) }

type sqlResult struct{ tag pgconn.CommandTag }

func (r sqlResult) LastInsertId() (int64, error) {
	return 0, errors.New("LastInsertId is not supported by PostgreSQL; use RETURNING")
}

func (r sqlResult) RowsAffected() (int64, error) { return r.tag.RowsAffected(), nil }

type sqlRows struct{ rows pgx.Rows }

func (r *sqlRows) Columns() []string {
	fds := r.rows.FieldDescriptions()
	names := make([]string, len(fds))
	for i, fd := range fds {
		names[i] = fd.Name
	}
	return names
}

func (r *sqlRows) Close() error {
	r.rows.Close()
	return r.rows.Err()
}

func (r *sqlRows) Next(dest []driver.Value) error {
	if !r.rows.Next() {
		if err := r.rows.Err(); err != nil {
			return err
		}
		return io.EOF
	}
	vals, err := r.rows.Values()
	if err != nil {
		return err
	}
	for i, v := range vals {
		dest[i] = driverValue(v)
	}
	return nil
}

// driverValue narrows what pgx decodes to database/sql's base types.
func driverValue(v any) driver.Value {
	switch v := v.(type) {
	case nil, int64, float64, bool, []byte, string, time.Time:
		return v
	case int16:
		return int64(v)
	case int32:
		return int64(v)
	case int8:
		return int64(v)
	case float32:
		return float64(v)
	case fmt.Stringer:
		return v.String()
	default:
		return fmt.Sprint(v)
	}
}
