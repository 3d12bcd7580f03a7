package statsdriver

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/octavia-vpp/health/heartbeat"
	"github.com/octavia-vpp/health/test/mysqltest"
	"github.com/octavia-vpp/health/test/pgtest"
)

func TestMain(m *testing.M) { os.Exit(mysqltest.Wrap(func() int { return pgtest.Run(m) })) }

func openDB(t testing.TB) *pgxpool.Pool { return pgtest.NewPool(t) }

// row is one listener_statistics row: bytes_in, bytes_out,
// active_connections, total_connections, request_errors.
type row [5]int64

func readRows(t *testing.T, pool *pgxpool.Pool) map[string]row {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT listener_id, amphora_id, bytes_in, bytes_out,
		active_connections, total_connections, request_errors FROM listener_statistics`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]row{}
	for rows.Next() {
		var l, a string
		var r row
		if err := rows.Scan(&l, &a, &r[0], &r[1], &r[2], &r[3], &r[4]); err != nil {
			t.Fatal(err)
		}
		out[l+"/"+a] = r
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func st(listener, amphora string, v row) ListenerStats {
	return ListenerStats{ListenerID: listener, AmphoraID: amphora,
		BytesIn: v[0], BytesOut: v[1], ActiveConnections: v[2], TotalConnections: v[3], RequestErrors: v[4]}
}

func TestDBUpdate(t *testing.T) {
	type call struct {
		stats   []ListenerStats
		deltas  bool
		wantErr bool
		written int // rows written before a refusal
	}
	long := strings.Repeat("x", 37)
	tests := []struct {
		name  string
		calls []call
		want  map[string]row
	}{
		{
			name:  "absolute values create the row",
			calls: []call{{stats: []ListenerStats{st("l1", "a1", row{1, 2, 3, 4, 5})}}},
			want:  map[string]row{"l1/a1": {1, 2, 3, 4, 5}},
		},
		{
			name: "absolute values replace every column",
			calls: []call{
				{stats: []ListenerStats{st("l1", "a1", row{10, 20, 30, 40, 50})}},
				{stats: []ListenerStats{st("l1", "a1", row{1, 2, 3, 4, 5})}},
			},
			want: map[string]row{"l1/a1": {1, 2, 3, 4, 5}},
		},
		{
			name: "deltas are summed, the gauge is overwritten",
			calls: []call{
				{stats: []ListenerStats{st("l1", "a1", row{10, 20, 30, 40, 50})}, deltas: true},
				{stats: []ListenerStats{st("l1", "a1", row{1, 2, 3, 4, 5})}, deltas: true},
			},
			want: map[string]row{"l1/a1": {11, 22, 3, 44, 55}},
		},
		{
			name: "rows are per listener and amphora, with no foreign key",
			calls: []call{
				{stats: []ListenerStats{st("l1", "a1", row{1, 1, 1, 1, 1}), st("l2", "a1", row{2, 2, 2, 2, 2})}, deltas: true},
				{stats: []ListenerStats{st("l1", "a2", row{5, 5, 5, 5, 5})}, deltas: true},
			},
			want: map[string]row{"l1/a1": {1, 1, 1, 1, 1}, "l2/a1": {2, 2, 2, 2, 2}, "l1/a2": {5, 5, 5, 5, 5}},
		},
		{
			name:  "an empty amphora id files the row under the listener id",
			calls: []call{{stats: []ListenerStats{st("l1", "", row{1, 2, 3, 4, 5})}}},
			want:  map[string]row{"l1/l1": {1, 2, 3, 4, 5}},
		},
		{
			name: "a negative absolute value on an existing row is stored (bulk update skips the validators)",
			calls: []call{
				{stats: []ListenerStats{st("l1", "a1", row{1, 1, 1, 1, 1})}},
				{stats: []ListenerStats{st("l1", "a1", row{-1, 2, 3, 4, 5})}},
			},
			want: map[string]row{"l1/a1": {-1, 2, 3, 4, 5}},
		},
		{
			name: "a negative value on a new row stops the message there; earlier listeners stay written",
			calls: []call{{stats: []ListenerStats{
				st("l1", "a1", row{1, 1, 1, 1, 1}),
				st("l2", "a1", row{1, 1, -1, 1, 1}),
				st("l3", "a1", row{1, 1, 1, 1, 1}),
			}, wantErr: true, written: 1}},
			want: map[string]row{"l1/a1": {1, 1, 1, 1, 1}},
		},
		{
			name: "a negative delta sum is refused, gauge included; a negative delta with a positive sum is fine",
			calls: []call{
				{stats: []ListenerStats{st("l1", "a1", row{5, 5, 5, 5, 5}), st("l2", "a1", row{5, 5, 5, 5, 5})}, deltas: true},
				{stats: []ListenerStats{st("l1", "a1", row{-2, 0, 7, 0, 0}), st("l2", "a1", row{0, -6, 9, 0, 0})}, deltas: true, wantErr: true, written: 1},
			},
			want: map[string]row{"l1/a1": {3, 5, 7, 5, 5}, "l2/a1": {5, 5, 5, 5, 5}},
		},
		{
			name: "a negative delta on a new row is refused",
			calls: []call{
				{stats: []ListenerStats{st("l1", "a1", row{0, 0, 0, -1, 0})}, deltas: true, wantErr: true},
			},
			want: map[string]row{},
		},
		{
			name: "a negative gauge with deltas on an existing row is refused",
			calls: []call{
				{stats: []ListenerStats{st("l1", "a1", row{1, 1, 1, 1, 1})}, deltas: true},
				{stats: []ListenerStats{st("l1", "a1", row{1, 1, -1, 1, 1})}, deltas: true, wantErr: true},
			},
			want: map[string]row{"l1/a1": {1, 1, 1, 1, 1}},
		},
		{
			name: "a gauge beyond the integer column stops the message",
			calls: []call{{stats: []ListenerStats{
				st("l1", "a1", row{1, 1, 1, 1, 1}),
				st("l2", "a1", row{1, 1, math.MaxInt32 + 1, 1, 1}),
			}, wantErr: true, written: 1}},
			want: map[string]row{"l1/a1": {1, 1, 1, 1, 1}},
		},
		{
			name: "a delta sum beyond bigint stops the message",
			calls: []call{
				{stats: []ListenerStats{st("l1", "a1", row{math.MaxInt64, 1, 1, 1, 1})}, deltas: true},
				{stats: []ListenerStats{st("l1", "a1", row{1, 1, 1, 1, 1})}, deltas: true, wantErr: true},
			},
			want: map[string]row{"l1/a1": {math.MaxInt64, 1, 1, 1, 1}},
		},
		{
			name: "an id longer than the column stops the message at that listener",
			calls: []call{{stats: []ListenerStats{
				st("l1", "a1", row{1, 1, 1, 1, 1}),
				st(long, "a1", row{1, 1, 1, 1, 1}),
				st("l3", "a1", row{1, 1, 1, 1, 1}),
			}, wantErr: true, written: 1}},
			want: map[string]row{"l1/a1": {1, 1, 1, 1, 1}},
		},
		{
			name: "36 non-ASCII characters fit",
			calls: []call{{stats: []ListenerStats{
				st(strings.Repeat("é", 36), "a1", row{1, 1, 1, 1, 1}),
			}}},
			want: map[string]row{strings.Repeat("é", 36) + "/a1": {1, 1, 1, 1, 1}},
		},
		{
			name:  "no listeners writes nothing",
			calls: []call{{stats: nil, deltas: true}},
			want:  map[string]row{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pool := openDB(t)
			d := NewDB(pool)
			for i, c := range tc.calls {
				err := d.Update(context.Background(), c.stats, c.deltas)
				if (err != nil) != c.wantErr {
					t.Fatalf("call %d: err = %v, want error %v", i, err, c.wantErr)
				}
				if err != nil && !errors.Is(err, ErrNotRecorded) {
					t.Errorf("call %d: %v does not wrap ErrNotRecorded", i, err)
				}
				var refused *RefusedError
				if err != nil && !errors.As(err, &refused) {
					t.Errorf("call %d: %v is not a *RefusedError", i, err)
				} else if err != nil && refused.Written != c.written {
					t.Errorf("call %d: %d rows written before the refusal, want %d", i, refused.Written, c.written)
				}
			}
			if got := readRows(t, pool); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("rows\n got %v\nwant %v", got, tc.want)
			}
		})
	}
}

func TestFromMessage(t *testing.T) {
	s := heartbeat.Stats{TX: 1, RX: 2, Conns: 3, TotConns: 4, EReq: 5}
	want := []ListenerStats{{ListenerID: "l1", AmphoraID: "a", BytesIn: 2, BytesOut: 1, ActiveConnections: 3, TotalConnections: 4, RequestErrors: 5}}
	tests := []struct {
		name       string
		msg        heartbeat.Message
		want       []ListenerStats
		wantDeltas bool
		wantOK     bool
	}{
		{"ver 3 gives deltas", heartbeat.Message{AmphoraID: "a", Version: 3, HasVersion: true,
			Listeners: []heartbeat.Listener{{ID: "l1", Stats: s, HasStats: true}}}, want, true, true},
		{"ver 2 gives absolute values", heartbeat.Message{AmphoraID: "a", Version: 2, HasVersion: true,
			Listeners: []heartbeat.Listener{{ID: "l1", Stats: s, HasStats: true}}}, want, false, true},
		{"no ver counts as 2", heartbeat.Message{AmphoraID: "a",
			Listeners: []heartbeat.Listener{{ID: "l1", Stats: s, HasStats: true}}}, want, false, true},
		{"ver 7 gives deltas", heartbeat.Message{AmphoraID: "a", Version: 7, HasVersion: true,
			Listeners: []heartbeat.Listener{{ID: "l1", Stats: s, HasStats: true}}}, want, true, true},
		{"a listener without stats drops the message", heartbeat.Message{AmphoraID: "a", Version: 3, HasVersion: true,
			Listeners: []heartbeat.Listener{{ID: "l1", Stats: s, HasStats: true}, {ID: "l2"}}}, nil, false, false},
		{"no listeners", heartbeat.Message{AmphoraID: "a", Version: 3, HasVersion: true}, []ListenerStats{}, true, true},
		// Found by the interop suite: Octavia's stats_db stops at an id its
		// database driver cannot encode.
		{"a listener id with a lone surrogate ends the list", heartbeat.Message{AmphoraID: "a", Version: 3, HasVersion: true,
			Listeners: []heartbeat.Listener{{ID: "l1", Stats: s, HasStats: true}, {ID: "l\ufffd", IDLoneSurrogate: true, Stats: s, HasStats: true},
				{ID: "l3", Stats: s, HasStats: true}}}, want, true, true},
		{"an amphora id with a lone surrogate gives nothing", heartbeat.Message{AmphoraID: "a\ufffd", AmphoraIDLoneSurrogate: true,
			Listeners: []heartbeat.Listener{{ID: "l1", Stats: s, HasStats: true}}}, []ListenerStats{}, false, true},
		{"a listener without stats still drops everything", heartbeat.Message{AmphoraID: "a", Version: 3, HasVersion: true,
			Listeners: []heartbeat.Listener{{ID: "l\ufffd", IDLoneSurrogate: true, Stats: s, HasStats: true}, {ID: "l2"}}}, nil, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, deltas, ok := FromMessage(&tc.msg)
			if !reflect.DeepEqual(got, tc.want) || deltas != tc.wantDeltas || ok != tc.wantOK {
				t.Errorf("got %v, %v, %v; want %v, %v, %v", got, deltas, ok, tc.want, tc.wantDeltas, tc.wantOK)
			}
		})
	}
}

func TestRegistry(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	if got := Names(); !reflect.DeepEqual(got, []string{"prometheus", "stats_db", "stats_logger"}) {
		t.Errorf("Names() = %v", got)
	}
	if _, err := Open("stats_db", Deps{Logger: log}); err == nil {
		t.Error("stats_db opened without a database")
	}
	if _, err := Open("nope", Deps{}); !errors.Is(err, ErrUnknownDriver) {
		t.Errorf("Open(nope) = %v, want ErrUnknownDriver", err)
	}
	if _, err := NewPipeline(PipelineConfig{Drivers: []string{"stats_logger", "nope"}, Deps: Deps{Logger: log}}); !errors.Is(err, ErrUnknownDriver) {
		t.Errorf("a pipeline with an unknown driver: %v, want ErrUnknownDriver", err)
	}
	if _, err := NewPipeline(PipelineConfig{Drivers: []string{"stats_db"}, Deps: Deps{Logger: log}, PerHeartbeat: true}); err == nil {
		t.Error("stats_db opened per heartbeat without a database")
	}
	p, err := NewPipeline(PipelineConfig{Drivers: []string{"stats_logger", "stats_logger"}, Deps: Deps{Logger: log}, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	msg := &heartbeat.Message{AmphoraID: "a1", Version: 3, HasVersion: true,
		Listeners: []heartbeat.Listener{{ID: "l1", HasStats: true, Stats: heartbeat.Stats{RX: 1, TX: 2}}}}
	if ok, err := p.Apply(context.Background(), msg); !ok || err != nil {
		t.Fatalf("Apply = %v, %v", ok, err)
	}
	if n := strings.Count(buf.String(), "listener_id=l1"); n != 1 {
		t.Errorf("stats_logger, named twice, logged the listener %d times: %s", n, buf.String())
	}
	if !strings.Contains(buf.String(), `msg="Logging listener stats deltas"`) || !strings.Contains(buf.String(), "listener_id=l1") {
		t.Errorf("stats_logger wrote %s", buf.String())
	}
}
