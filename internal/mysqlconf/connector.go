package mysqlconf

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"

	"github.com/go-sql-driver/mysql"
)

// ErrServerTooOld marks the refusal of a server without SELECT ... FOR
// UPDATE SKIP LOCKED.
var ErrServerTooOld = errors.New("database server too old")

// NewConnector is mysql.NewConnector whose every new connection first
// reads SELECT VERSION() and passes it to check (CheckServerVersion in
// production); a refusal closes the connection and is returned, wrapping
// ErrServerTooOld. Checking each connection, not only the first, keeps a
// failover of the database address to an older node from going unseen.
func NewConnector(cfg *mysql.Config, check func(version string) error) (driver.Connector, error) {
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	return &checkedConnector{Connector: c, check: check}, nil
}

// NewReadOnlyConnector is NewConnector whose sessions are read-only (SET
// SESSION TRANSACTION READ ONLY, on MySQL and MariaDB alike): any write
// fails, whatever the code asks (shadow mode, docs/shadow.md).
func NewReadOnlyConnector(cfg *mysql.Config, check func(version string) error) (driver.Connector, error) {
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	return &checkedConnector{Connector: c, check: check, init: []string{"SET SESSION TRANSACTION READ ONLY"}}, nil
}

type checkedConnector struct {
	driver.Connector
	check func(string) error
	// init runs on each new connection, after the version check.
	init []string
}

func (c *checkedConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	v, err := serverVersion(ctx, conn)
	if err == nil {
		if err = c.check(v); err != nil {
			err = fmt.Errorf("%w: %w", ErrServerTooOld, err)
		}
	}
	for _, stmt := range c.init {
		if err != nil {
			break
		}
		if x, ok := conn.(driver.ExecerContext); !ok {
			err = errors.New("the driver cannot execute " + stmt)
		} else if _, err = x.ExecContext(ctx, stmt, nil); err != nil {
			err = fmt.Errorf("%s: %w", stmt, err)
		}
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

func serverVersion(ctx context.Context, conn driver.Conn) (string, error) {
	q, ok := conn.(driver.QueryerContext)
	if !ok {
		return "", errors.New("read the server version: the driver cannot query")
	}
	rows, err := q.QueryContext(ctx, "SELECT VERSION()", nil)
	if err != nil {
		return "", fmt.Errorf("read the server version: %w", err)
	}
	defer rows.Close()
	dest := make([]driver.Value, len(rows.Columns()))
	if err := rows.Next(dest); err != nil {
		if err == io.EOF {
			err = errors.New("no row")
		}
		return "", fmt.Errorf("read the server version: %w", err)
	}
	switch v := dest[0].(type) {
	case []byte:
		return string(v), nil
	case string:
		return v, nil
	}
	return "", fmt.Errorf("read the server version: unexpected %T", dest[0])
}
