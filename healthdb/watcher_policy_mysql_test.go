package healthdb

import (
	"errors"
	"fmt"
	"testing"

	"github.com/go-sql-driver/mysql"
)

// MySQL server answers are failed writes with their SQLSTATE; only a
// connection-class answer or a shutting-down server is an outage, like
// PostgreSQL's classes 08 and 57P0x.
func TestMySQLErrorsSQLStateAndOutage(t *testing.T) {
	myErr := func(n uint16, state string) error {
		e := &mysql.MySQLError{Number: n}
		copy(e.SQLState[:], state)
		return fmt.Errorf("apply: %w", e)
	}
	for _, c := range []struct {
		name   string
		err    error
		state  string
		outage bool
	}{
		{"galera certification failure", myErr(1213, "40001"), "40001", false},
		{"read-only server", myErr(1290, "HY000"), "HY000", false},
		{"raised in a trigger", myErr(1644, "53100"), "53100", false},
		{"shutdown in progress", myErr(1053, "08S01"), "08S01", true},
		{"connection refused", errors.New("dial tcp: connection refused"), "", true},
		{"broken connection", mysql.ErrInvalidConn, "", true},
	} {
		if got := SQLState(c.err); got != c.state {
			t.Errorf("%s: SQLState %q, want %q", c.name, got, c.state)
		}
		if got := isOutage(c.err); got != c.outage {
			t.Errorf("%s: isOutage %v, want %v", c.name, got, c.outage)
		}
	}
}
