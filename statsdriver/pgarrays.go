package statsdriver

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// A flush sends its rows as one array per column, thousands of elements
// each. pgx encodes an array element by element through its type plans,
// into buffers it grows from a few hundred bytes on every statement; at
// a flush's size that was most of this process's cost per row. The arrays
// are written here instead, in PostgreSQL's binary array format, into one
// buffer sized once, and sent with pgconn.
//
// The statement is prepared once per connection, as pgx does by default:
// its generic plan is a nested loop from the arrays into an index. Sent
// unprepared, each flush is planned with its arrays as constants, and
// PostgreSQL hashes the whole table to join a few thousand rows: 61 %
// more of its CPU per row at 6,000 rows of 40,000, more than twice as
// much at 600. A pool configured for another query mode (default_query_exec_mode,
// e.g. behind a pooler in transaction mode) gets unnamed statements.

// Element type OIDs (pg_type).
const (
	oidBool    = 16
	oidInt8    = 20
	oidInt4    = 23
	oidVarchar = 1043
)

// arrayOIDs maps an element type to its array type.
var arrayOIDs = map[uint32]uint32{oidBool: 1000, oidInt8: 1016, oidInt4: 1007, oidVarchar: 1015}

// arrayParams holds a statement's array parameters, encoded.
type arrayParams struct {
	buf    []byte
	values [][]byte
	oids   []uint32 // the parameters' array types
	start  int
}

var arrayParamsPool = sync.Pool{New: func() any { return new(arrayParams) }}

// reset readies p for a statement of about size bytes of parameters.
func (p *arrayParams) reset(size int) {
	if cap(p.buf) < size {
		p.buf = make([]byte, 0, size)
	}
	p.buf, p.values, p.oids, p.start = p.buf[:0], p.values[:0], p.oids[:0], 0
}

// release returns p to the pool unless it grew too large to keep.
func (p *arrayParams) release() {
	if cap(p.buf) <= 16<<20 {
		arrayParamsPool.Put(p)
	}
}

// begin starts a one-dimensional array of n elements of type elemOID
// without NULLs (the header array_recv reads: ndim, has-nulls flag,
// element type, then length and lower bound of the dimension).
func (p *arrayParams) begin(elemOID uint32, n int) {
	p.start = len(p.buf)
	p.oids = append(p.oids, arrayOIDs[elemOID])
	p.buf = binary.BigEndian.AppendUint32(p.buf, 1)
	p.buf = binary.BigEndian.AppendUint32(p.buf, 0)
	p.buf = binary.BigEndian.AppendUint32(p.buf, elemOID)
	p.buf = binary.BigEndian.AppendUint32(p.buf, uint32(n))
	p.buf = binary.BigEndian.AppendUint32(p.buf, 1)
}

// end closes the array begun last and adds it as the next parameter.
func (p *arrayParams) end() {
	p.values = append(p.values, p.buf[p.start:len(p.buf):len(p.buf)])
}

func (p *arrayParams) text(s string) {
	p.buf = binary.BigEndian.AppendUint32(p.buf, uint32(len(s)))
	p.buf = append(p.buf, s...)
}

func (p *arrayParams) int8(v int64) {
	p.buf = binary.BigEndian.AppendUint32(p.buf, 8)
	p.buf = binary.BigEndian.AppendUint64(p.buf, uint64(v))
}

func (p *arrayParams) int4(v int32) {
	p.buf = binary.BigEndian.AppendUint32(p.buf, 4)
	p.buf = binary.BigEndian.AppendUint32(p.buf, uint32(v))
}

func (p *arrayParams) bool(v bool) {
	p.buf = binary.BigEndian.AppendUint32(p.buf, 1)
	if v {
		p.buf = append(p.buf, 1)
	} else {
		p.buf = append(p.buf, 0)
	}
}

// Sizes of the encoding, for reset: an array's header, and its elements.
const (
	arrayHeaderSize = 20
	int8ElemSize    = 4 + 8
	int4ElemSize    = 4 + 4
	boolElemSize    = 4 + 1
)

func textElemSize(s string) int { return 4 + len(s) }

var binaryFormat = []int16{pgx.BinaryFormatCode}

// queryArrays runs sql with p's parameters in binary and every result
// column in binary, and hands each row's raw values to row.
func queryArrays(ctx context.Context, tx pgx.Tx, sql string, p *arrayParams, row func([][]byte) error) error {
	conn := tx.Conn()
	var rr *pgconn.ResultReader
	if conn.Config().DefaultQueryExecMode == pgx.QueryExecModeCacheStatement {
		sd, err := conn.Prepare(ctx, sql, sql)
		if err != nil {
			return err
		}
		rr = conn.PgConn().ExecStatement(ctx, sd, p.values, binaryFormat, binaryFormat)
	} else {
		rr = conn.PgConn().ExecParams(ctx, sql, p.values, p.oids, binaryFormat, binaryFormat)
	}
	var rowErr error
	for rr.NextRow() {
		if rowErr == nil {
			rowErr = row(rr.Values())
		}
	}
	if _, err := rr.Close(); err != nil {
		return err
	}
	if rowErr != nil {
		return rowErr
	}
	return nil
}

// int8Value decodes a binary bigint result value.
func int8Value(v []byte) (int64, error) {
	if len(v) != 8 {
		return 0, fmt.Errorf("a bigint of %d bytes", len(v))
	}
	return int64(binary.BigEndian.Uint64(v)), nil
}
