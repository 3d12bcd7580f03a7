package heartbeat

import "testing"

// Expected values are what Python 3's json.dumps(s) (ensure_ascii=True)
// prints for each string.
func TestAppendPyString(t *testing.T) {
	cases := []struct{ in, want string }{
		{"", `""`},
		{"plain id-123", `"plain id-123"`},
		{`quote " and backslash \`, `"quote \" and backslash \\"`},
		{"\b\f\n\r\t", `"\b\f\n\r\t"`},
		{"\x00\x01\x1f", `"\u0000\u0001\u001f"`},
		{"\x7f", `"\u007f"`},
		{"/<>&'", `"/<>&'"`},
		{"é", `"\u00e9"`},
		{"ключ", `"\u043a\u043b\u044e\u0447"`},
		{"\u2028\u2029", `"\u2028\u2029"`},
		{"\ufeff", `"\ufeff"`},
		{"\uffff", `"\uffff"`},
		{"😀", `"\ud83d\ude00"`},
		{"𝄞", `"\ud834\udd1e"`},
		{"\U0010ffff", `"\udbff\udfff"`},
		{"bad \xff utf8", `"bad \ufffd utf8"`},
	}
	for _, c := range cases {
		if got := string(appendPyString(nil, c.in)); got != c.want {
			t.Errorf("appendPyString(%q) = %s, want %s", c.in, got, c.want)
		}
	}
}

func TestAppendJSONShapes(t *testing.T) {
	stats := Stats{TX: 1, RX: 2, Conns: 3, TotConns: 4, EReq: 5}
	cases := []struct {
		name string
		msg  Message
		want string
	}{
		{"V3 with everything",
			Message{AmphoraID: "a", Seq: 9, HasSeq: true, Version: 3, HasVersion: true,
				Listeners: []Listener{{ID: "l", Status: "OPEN", Stats: stats, HasStats: true}},
				Pools:     []Pool{{Key: "p:l", Status: "UP", Members: []Member{{ID: "m1", Status: "UP"}, {ID: "m2", Status: "no check"}}}}},
			`{"id": "a", "seq": 9, "listeners": {"l": {"status": "OPEN", "stats": {"tx": 1, "rx": 2, "conns": 3, "totconns": 4, "ereq": 5}}}, "pools": {"p:l": {"status": "UP", "members": {"m1": "UP", "m2": "no check"}}}, "ver": 3}`},
		{"V2 with nil pools still writes pools",
			Message{AmphoraID: "a", Version: 2, HasVersion: true},
			`{"id": "a", "listeners": {}, "pools": {}, "ver": 2}`},
		{"V1 nests pools in listeners",
			Message{AmphoraID: "a", Seq: 1, HasSeq: true, Version: 1, HasVersion: true,
				Listeners: []Listener{{ID: "l", Status: "OPEN", Stats: stats, HasStats: true, HasPools: true,
					Pools: []Pool{{Key: "p", Status: "DOWN", Members: []Member{{ID: "m", Status: "DOWN 1/2"}}}}}}},
			`{"id": "a", "seq": 1, "listeners": {"l": {"status": "OPEN", "stats": {"tx": 1, "rx": 2, "conns": 3, "totconns": 4, "ereq": 5}, "pools": {"p": {"status": "DOWN", "members": {"m": "DOWN 1/2"}}}}}, "ver": 1}`},
		{"V0 without ver, seq, stats or pools",
			Message{AmphoraID: "a", Listeners: []Listener{{ID: "l", Status: "DOWN"}}},
			`{"id": "a", "listeners": {"l": {"status": "DOWN"}}}`},
		{"negative and extreme counters",
			Message{AmphoraID: "a", Version: 3, HasVersion: true,
				Listeners: []Listener{{ID: "l", Status: "OPEN", HasStats: true,
					Stats: Stats{TX: -1 << 63, RX: 1<<63 - 1, Conns: -5}}}},
			`{"id": "a", "listeners": {"l": {"status": "OPEN", "stats": {"tx": -9223372036854775808, "rx": 9223372036854775807, "conns": -5, "totconns": 0, "ereq": 0}}}, "pools": {}, "ver": 3}`},
	}
	for _, c := range cases {
		if got := string(c.msg.AppendJSON(nil)); got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.name, got, c.want)
		}
	}
}
