package statsdriver

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/jackc/pgx/v5"
)

// A flush larger than one in-place statement is applied once per row,
// whatever chunk a row falls in: existing rows get their delta added once,
// new rows are inserted, and a value Octavia refuses is refused, also at
// the chunk boundaries.
func TestApplyFlushAcrossStatementChunks(t *testing.T) {
	db := openDB(t)
	ctx := context.Background()
	r := rand.New(rand.NewPCG(5, 6))
	const existing, fresh = 3*inPlaceChunk + 7, 5
	keys := make([]pairKey, existing+fresh)
	rows := make([][]any, 0, existing)
	for i := range keys {
		keys[i] = pairKey{benchUUID(r), benchUUID(r)}
		if i < existing {
			rows = append(rows, []any{keys[i].listener, keys[i].amphora, int64(i), int64(2 * i), int32(1), int64(10), int64(0)})
		}
	}
	if _, err := db.CopyFrom(ctx, pgx.Identifier{"listener_statistics"},
		[]string{"listener_id", "amphora_id", "bytes_in", "bytes_out", "active_connections", "total_connections", "request_errors"},
		pgx.CopyFromRows(rows)); err != nil {
		t.Fatal(err)
	}
	refused := map[int]bool{inPlaceChunk - 1: true, inPlaceChunk: true, 2 * inPlaceChunk: true}
	inc := make([]ListenerStats, len(keys))
	for i, k := range keys {
		inc[i] = ListenerStats{ListenerID: k.listener, AmphoraID: k.amphora, BytesIn: 100, BytesOut: 200,
			ActiveConnections: 3, TotalConnections: 4, RequestErrors: 1}
		if refused[i] {
			inc[i].ActiveConnections = math.MaxInt32 + 1
		}
	}
	res, err := NewDB(db).ApplyFlush(ctx, &FlushBatch{Seq: 1, Increments: inc})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Refused) != len(refused) {
		t.Fatalf("refused %d rows, want %d: %+v", len(res.Refused), len(refused), res.Refused)
	}
	for i, k := range keys {
		var bytesIn, bytesOut, total, errs int64
		var active int32
		err := db.QueryRow(ctx, `SELECT bytes_in, bytes_out, active_connections, total_connections, request_errors
			FROM listener_statistics WHERE listener_id = $1 AND amphora_id = $2`, k.listener, k.amphora).
			Scan(&bytesIn, &bytesOut, &active, &total, &errs)
		switch {
		case i >= existing && err == pgx.ErrNoRows:
			t.Errorf("row %d (new): not inserted", i)
			continue
		case err != nil:
			t.Fatalf("row %d: %v", i, err)
		}
		want := [5]int64{100, 200, 3, 4, 1}
		if i < existing {
			want = [5]int64{int64(i) + 100, int64(2*i) + 200, 3, 14, 1}
			if refused[i] {
				want = [5]int64{int64(i), int64(2 * i), 1, 10, 0}
			}
		}
		if got := [5]int64{bytesIn, bytesOut, int64(active), total, errs}; got != want {
			t.Errorf("row %d: got %v, want %v", i, got, want)
		}
	}
}
