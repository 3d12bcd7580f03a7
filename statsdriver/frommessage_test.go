package statsdriver

import (
	"context"
	"reflect"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/octavia-vpp/health/heartbeat"
)

// Odd heartbeat shapes, from their JSON text, as Octavia's update_stats and
// stats_db treat them (heartbeat_udp.update_stats, statistics/drivers/
// update_db.py): dropped whole where update_stats raises before the
// drivers, cut at the first listener whose row stats_db fails to write.
func TestFromMessageOddShapes(t *testing.T) {
	row := func(l, amp string, rx, tx, conns, tot, ereq int64) ListenerStats {
		return ListenerStats{ListenerID: l, AmphoraID: amp, BytesIn: rx, BytesOut: tx, ActiveConnections: conns,
			TotalConnections: tot, RequestErrors: ereq}
	}
	const s = `"stats": {"tx": 1, "rx": 2, "conns": 3, "totconns": 4, "ereq": 5}`
	l1, l2 := row("l1", "a", 2, 1, 3, 4, 5), row("l2", "a", 2, 1, 3, 4, 5)
	cases := []struct {
		name   string
		text   string
		want   []ListenerStats
		deltas bool
		ok     bool
	}{
		{"well-formed", `{"id": "a", "listeners": {"l1": {` + s + `}, "l2": {` + s + `}}, "ver": 3}`, []ListenerStats{l1, l2}, true, true},
		// Only the stats are read: status and pools do not matter.
		{"no status, no pools", `{"id": "a", "listeners": {"l1": {` + s + `}}, "ver": 2}`, []ListenerStats{l1}, false, true},
		{"counter missing in the second listener", `{"id": "a", "listeners": {"l1": {` + s + `}, "l2": {"stats": {"tx": 1, "rx": 2, "conns": 3, "totconns": 4}}}, "ver": 3}`,
			[]ListenerStats{l1}, true, true},
		{"counter null in the first listener", `{"id": "a", "listeners": {"l1": {"stats": {"tx": null, "rx": 2, "conns": 3, "totconns": 4, "ereq": 5}}, "l2": {` + s + `}}, "ver": 3}`,
			[]ListenerStats{}, true, true},
		{"counter a string", `{"id": "a", "listeners": {"l1": {` + s + `}, "l2": {"stats": {"tx": "1", "rx": 2, "conns": 3, "totconns": 4, "ereq": 5}}}}`,
			[]ListenerStats{l1}, false, true},
		{"counter a boolean", `{"id": "a", "listeners": {"l1": {"stats": {"tx": true, "rx": 2, "conns": 3, "totconns": 4, "ereq": 5}}}}`,
			[]ListenerStats{}, false, true},
		{"counter beyond int64", `{"id": "a", "listeners": {"l1": {"stats": {"tx": 9223372036854775808, "rx": 2, "conns": 3, "totconns": 4, "ereq": 5}}}}`,
			[]ListenerStats{}, false, true},
		// PostgreSQL rounds a numeric half away from zero into bigint.
		{"counters non-integer numbers", `{"id": "a", "listeners": {"l1": {"stats": {"tx": 1.5, "rx": -2.5, "conns": 3e0, "totconns": 0.49, "ereq": 5}}}, "ver": 3}`,
			[]ListenerStats{row("l1", "a", -3, 2, 3, 0, 5)}, true, true},
		{"negative counters are passed on", `{"id": "a", "listeners": {"l1": {"stats": {"tx": -1, "rx": 2, "conns": 3, "totconns": 4, "ereq": 5}}}, "ver": 3}`,
			[]ListenerStats{row("l1", "a", 2, -1, 3, 4, 5)}, true, true},
		// update_stats raises before any driver.
		{"a listener without stats", `{"id": "a", "listeners": {"l1": {` + s + `}, "l2": {"status": "OPEN"}}, "ver": 3}`, nil, false, false},
		{"stats a list", `{"id": "a", "listeners": {"l1": {"stats": []}}, "ver": 3}`, nil, false, false},
		{"a listener not an object", `{"id": "a", "listeners": {"l1": {` + s + `}, "l2": 7}, "ver": 3}`, nil, false, false},
		{"listeners an array", `{"id": "a", "listeners": [], "ver": 3}`, nil, false, false},
		{"listeners null", `{"id": "a", "listeners": null, "ver": 3}`, nil, false, false},
		{"ver null", `{"id": "a", "listeners": {"l1": {` + s + `}}, "ver": null}`, nil, false, false},
		{"ver a string", `{"id": "a", "listeners": {"l1": {` + s + `}}, "ver": "3"}`, nil, false, false},
		// No "listeners" is an empty dict to update_stats.
		{"no listeners", `{"id": "a", "ver": 3}`, []ListenerStats{}, true, true},
		// "ver" compares as Python compares it.
		{"ver true is absolute", `{"id": "a", "listeners": {"l1": {` + s + `}}, "ver": true}`, []ListenerStats{l1}, false, true},
		{"ver 2.9 is absolute", `{"id": "a", "listeners": {"l1": {` + s + `}}, "ver": 2.9}`, []ListenerStats{l1}, false, true},
		{"ver NaN is absolute", `{"id": "a", "listeners": {"l1": {` + s + `}}, "ver": NaN}`, []ListenerStats{l1}, false, true},
		{"ver Infinity gives deltas", `{"id": "a", "listeners": {"l1": {` + s + `}}, "ver": Infinity}`, []ListenerStats{l1}, true, true},
		{"counter NaN", `{"id": "a", "listeners": {"l1": {` + s + `}, "l2": {"stats": {"tx": NaN, "rx": 2, "conns": 3, "totconns": 4, "ereq": 5}}}}`,
			[]ListenerStats{l1}, false, true},
		{"counter -Infinity", `{"id": "a", "listeners": {"l1": {"stats": {"tx": 1, "rx": -Infinity, "conns": 3, "totconns": 4, "ereq": 5}}}}`,
			[]ListenerStats{}, false, true},
		{"ver 3.0 gives deltas", `{"id": "a", "listeners": {"l1": {` + s + `}}, "ver": 3.0}`, []ListenerStats{l1}, true, true},
		// The id: absent or false to Python files the rows under the
		// listener id (an empty AmphoraID); true to Python fails the query.
		{"no id", `{"listeners": {"l1": {` + s + `}}, "ver": 3}`, []ListenerStats{row("l1", "", 2, 1, 3, 4, 5)}, true, true},
		{"id null", `{"id": null, "listeners": {"l1": {` + s + `}}, "ver": 3}`, []ListenerStats{row("l1", "", 2, 1, 3, 4, 5)}, true, true},
		{"id 0", `{"id": 0, "listeners": {"l1": {` + s + `}}, "ver": 3}`, []ListenerStats{row("l1", "", 2, 1, 3, 4, 5)}, true, true},
		{"id 7", `{"id": 7, "listeners": {"l1": {` + s + `}}, "ver": 3}`, []ListenerStats{}, true, true},
		{"id a list", `{"id": ["a"], "listeners": {"l1": {` + s + `}}, "ver": 3}`, []ListenerStats{}, true, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := heartbeat.DecodeMessage([]byte(c.text))
			if err != nil {
				t.Fatal(err)
			}
			got, deltas, ok := FromMessage(m)
			if !reflect.DeepEqual(got, c.want) || deltas != c.deltas || ok != c.ok {
				t.Errorf("got %v, %v, %v; want %v, %v, %v", got, deltas, ok, c.want, c.deltas, c.ok)
			}
		})
	}
}

// On MySQL, stats_db stores a boolean counter as 0 or 1 (PyMySQL renders
// it so), where PostgreSQL refuses it and the rest of the heartbeat with
// it; everything else is cut as on PostgreSQL (MariaDB's differential
// fuzzer, seed 1 #62 with 200 messages: "rx": false).
func TestFromMessageOnMySQLBooleanCounters(t *testing.T) {
	row := func(l string, rx, tx, conns, tot, ereq int64) ListenerStats {
		return ListenerStats{ListenerID: l, AmphoraID: "a", BytesIn: rx, BytesOut: tx, ActiveConnections: conns,
			TotalConnections: tot, RequestErrors: ereq}
	}
	const s = `"stats": {"tx": 1, "rx": 2, "conns": 3, "totconns": 4, "ereq": 5}`
	cases := []struct {
		name            string
		text            string
		postgres, mysql []ListenerStats
	}{
		{"false then a well-formed listener", `{"id": "a", "listeners": {"l1": {"stats": {"tx": 7, "rx": false, "conns": 3, "totconns": 4, "ereq": 5}}, "l2": {` + s + `}}, "ver": true}`,
			[]ListenerStats{}, []ListenerStats{row("l1", 0, 7, 3, 4, 5), row("l2", 2, 1, 3, 4, 5)}},
		{"true as a gauge and a delta", `{"id": "a", "listeners": {"l1": {"stats": {"tx": true, "rx": 2, "conns": true, "totconns": 4, "ereq": 5}}}, "ver": 3}`,
			[]ListenerStats{}, []ListenerStats{row("l1", 2, 1, 1, 4, 5)}},
		{"a boolean before a null", `{"id": "a", "listeners": {"l1": {` + s + `}, "l2": {"stats": {"tx": true, "rx": null, "conns": 3, "totconns": 4, "ereq": 5}}}}`,
			[]ListenerStats{row("l1", 2, 1, 3, 4, 5)}, []ListenerStats{row("l1", 2, 1, 3, 4, 5)}},
		{"a boolean after a string", `{"id": "a", "listeners": {"l1": {"stats": {"tx": "1", "rx": true, "conns": 3, "totconns": 4, "ereq": 5}}}}`,
			[]ListenerStats{}, []ListenerStats{}},
		{"a missing counter", `{"id": "a", "listeners": {"l1": {"stats": {"tx": true, "rx": 2, "conns": 3, "totconns": 4}}}}`,
			[]ListenerStats{}, []ListenerStats{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := heartbeat.DecodeMessage([]byte(c.text))
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range []struct {
				dialect Dialect
				want    []ListenerStats
			}{{PostgreSQL, c.postgres}, {MySQL, c.mysql}} {
				got, _, ok := FromMessageOn(m, d.dialect)
				if !ok || !reflect.DeepEqual(got, d.want) {
					t.Errorf("dialect %d: got %v, %v; want %v", d.dialect, got, ok, d.want)
				}
			}
		})
	}
}

// Through stats_db into the real database: the rows Octavia's stats_db
// leaves for odd heartbeats, each sent after a well-formed V3 heartbeat.
func TestOddHeartbeatsStatisticsRows(t *testing.T) {
	const (
		s1 = `"stats": {"tx": 1, "rx": 2, "conns": 3, "totconns": 4, "ereq": 5}`
	)
	first := `{"id": "a", "listeners": {"l1": {` + s1 + `}, "l2": {` + s1 + `}}, "pools": {}, "ver": 3}`
	cases := []struct {
		name string
		text string
		want map[string]row
	}{
		{"counter missing in l2: l1 summed, l2 kept", `{"id": "a", "listeners": {"l1": {` + s1 + `}, "l2": {"stats": {"tx": 1}}}, "pools": {}, "ver": 3}`,
			map[string]row{"l1/a": {4, 2, 3, 8, 10}, "l2/a": {2, 1, 3, 4, 5}}},
		{"status missing: both summed", `{"id": "a", "listeners": {"l1": {` + s1 + `}, "l2": {` + s1 + `}}, "ver": 3}`,
			map[string]row{"l1/a": {4, 2, 3, 8, 10}, "l2/a": {4, 2, 3, 8, 10}}},
		{"a listener without stats: nothing", `{"id": "a", "listeners": {"l1": {` + s1 + `}, "l2": {"status": "OPEN"}}, "pools": {}, "ver": 3}`,
			map[string]row{"l1/a": {2, 1, 3, 4, 5}, "l2/a": {2, 1, 3, 4, 5}}},
		{"no id: rows under the listener id", `{"listeners": {"l1": {` + s1 + `}}, "ver": 3}`,
			map[string]row{"l1/a": {2, 1, 3, 4, 5}, "l2/a": {2, 1, 3, 4, 5}, "l1/l1": {2, 1, 3, 4, 5}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pool := openDB(t)
			db := NewDB(pool)
			for _, text := range []string{first, c.text} {
				m, err := heartbeat.DecodeMessage([]byte(text))
				if err != nil {
					t.Fatal(err)
				}
				stats, deltas, ok := FromMessage(m)
				if !ok {
					continue
				}
				if err := db.Update(context.Background(), stats, deltas); err != nil {
					t.Fatal(err)
				}
			}
			if got := readRows(t, pool); !reflect.DeepEqual(got, c.want) {
				t.Errorf("rows\n got %v\nwant %v", got, c.want)
			}
		})
	}
}

type recordingDriver struct{ got [][]ListenerStats }

func (r *recordingDriver) Update(_ context.Context, stats []ListenerStats, _ bool) error {
	r.got = append(r.got, stats)
	return nil
}

// The pipeline hands every driver the rows of its dialect.
func TestPipelineDialect(t *testing.T) {
	m, err := heartbeat.DecodeMessage([]byte(`{"id": "a", "listeners": {"l1": {"stats": {"tx": 1, "rx": true, "conns": 3, "totconns": 4, "ereq": 5}}}, "ver": 3}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		dialect Dialect
		rows    int
	}{{PostgreSQL, 0}, {MySQL, 1}} {
		rec := &recordingDriver{}
		p, err := NewPipeline(PipelineConfig{Extra: []Driver{rec}, Dialect: c.dialect, Metrics: NewPipelineMetrics(prometheus.NewRegistry())})
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := p.Apply(context.Background(), m); !ok || err != nil {
			t.Fatalf("Apply: %v, %v", ok, err)
		}
		if len(rec.got) != 1 || len(rec.got[0]) != c.rows {
			t.Errorf("dialect %d: driver got %v, want one call with %d rows", c.dialect, rec.got, c.rows)
		} else if c.rows == 1 && rec.got[0][0].BytesIn != 1 {
			t.Errorf("dialect %d: rx true stored as %d, want 1", c.dialect, rec.got[0][0].BytesIn)
		}
	}
}
