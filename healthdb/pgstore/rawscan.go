package pgstore

import (
	"encoding/binary"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// A batch's topology read returns some twenty member rows per heartbeat;
// decoding them through pgx's scan plans cost the manager more than the
// rest of the batch's work. The helpers below read the wire values
// directly where their encoding is fixed, and the callers fall back to
// rows.Scan for anything else (a NULL, a pool in simple-protocol mode).

// rawText is a varchar column's value: its text and binary encodings are
// both the string's bytes.
func rawText(v []byte) string { return string(v) }

// rawStatus is rawText for status columns, sharing the strings of the
// values Octavia uses instead of allocating one per row.
func rawStatus(v []byte) string {
	switch string(v) { // no allocation: the compiler compares in place
	case "ONLINE":
		return "ONLINE"
	case "OFFLINE":
		return "OFFLINE"
	case "DEGRADED":
		return "DEGRADED"
	case "ERROR":
		return "ERROR"
	case "NO_MONITOR":
		return "NO_MONITOR"
	case "DRAINING":
		return "DRAINING"
	}
	return string(v)
}

// rawBinary reports whether the given columns of rows arrive in binary
// format, which the fixed-width decoders below need.
func rawBinary(rows pgx.Rows, cols ...int) bool {
	f := rows.FieldDescriptions()
	for _, c := range cols {
		if c >= len(f) || f[c].Format != pgx.BinaryFormatCode {
			return false
		}
	}
	return true
}

// rawVersion decodes a (ctid, xmin) pair in binary format (tid: 4-byte
// block, 2-byte offset; xid: 4 bytes).
func rawVersion(tid, xmin []byte) (rowVersion, bool) {
	if len(tid) != 6 || len(xmin) != 4 {
		return rowVersion{}, false
	}
	return rowVersion{
		tid:  pgtype.TID{BlockNumber: binary.BigEndian.Uint32(tid), OffsetNumber: binary.BigEndian.Uint16(tid[4:]), Valid: true},
		xmin: binary.BigEndian.Uint32(xmin),
	}, true
}

// nonNull reports whether every value is present.
func nonNull(values [][]byte) bool {
	for _, v := range values {
		if v == nil {
			return false
		}
	}
	return true
}
