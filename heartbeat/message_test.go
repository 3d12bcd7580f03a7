package heartbeat

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// Strict mode (strict_heartbeats) rejects each of these whole; the default
// decoder keeps them.
func TestDecodeMessageMalformed(t *testing.T) {
	const okListener = `{"status": "OPEN", "stats": {"tx": 1, "rx": 2, "conns": 3, "totconns": 4, "ereq": 5}}`
	cases := []struct {
		name, text, field string
	}{
		{"no id", `{"listeners": {}, "pools": {}, "ver": 3}`, "id"},
		{"id not a string", `{"id": 7, "listeners": {}, "pools": {}, "ver": 3}`, "id"},
		{"id null", `{"id": null, "listeners": {}, "pools": {}, "ver": 3}`, "id"},
		{"seq a string", `{"id": "a", "seq": "1", "listeners": {}, "pools": {}, "ver": 3}`, "seq"},
		{"seq a float", `{"id": "a", "seq": 1.5, "listeners": {}, "pools": {}, "ver": 3}`, "seq"},
		{"ver a string", `{"id": "a", "listeners": {}, "pools": {}, "ver": "3"}`, "ver"},
		{"ver null", `{"id": "a", "listeners": {}, "pools": {}, "ver": null}`, "ver"},
		{"ver a float", `{"id": "a", "listeners": {}, "pools": {}, "ver": 3.0}`, "ver"},
		{"ver beyond int64", `{"id": "a", "listeners": {}, "pools": {}, "ver": 9223372036854775808}`, "ver"},
		{"no listeners", `{"id": "a", "pools": {}, "ver": 3}`, "listeners"},
		{"listeners a list", `{"id": "a", "listeners": [], "pools": {}, "ver": 3}`, "listeners"},
		{"listener a string", `{"id": "a", "listeners": {"l1": "OPEN"}, "pools": {}, "ver": 3}`, `listeners["l1"]`},
		{"listener without status", `{"id": "a", "listeners": {"l1": {"stats": {}}}, "pools": {}, "ver": 3}`, `listeners["l1"].status`},
		{"listener status a number", `{"id": "a", "listeners": {"l1": {"status": 1}}, "pools": {}, "ver": 3}`, `listeners["l1"].status`},
		{"stats a list", `{"id": "a", "listeners": {"l1": {"status": "OPEN", "stats": []}}, "pools": {}, "ver": 3}`, `listeners["l1"].stats`},
		{"stats without ereq", `{"id": "a", "listeners": {"l1": {"status": "OPEN", "stats": {"tx": 1, "rx": 2, "conns": 3, "totconns": 4}}}, "pools": {}, "ver": 3}`, `listeners["l1"].stats.ereq`},
		{"stats tx a float", `{"id": "a", "listeners": {"l1": {"status": "OPEN", "stats": {"tx": 1.0, "rx": 2, "conns": 3, "totconns": 4, "ereq": 5}}}, "pools": {}, "ver": 3}`, `listeners["l1"].stats.tx`},
		{"stats rx null", `{"id": "a", "listeners": {"l1": {"status": "OPEN", "stats": {"tx": 1, "rx": null, "conns": 3, "totconns": 4, "ereq": 5}}}, "pools": {}, "ver": 3}`, `listeners["l1"].stats.rx`},
		{"stats counter 2^64", `{"id": "a", "listeners": {"l1": {"status": "OPEN", "stats": {"tx": 18446744073709551616, "rx": 2, "conns": 3, "totconns": 4, "ereq": 5}}}, "pools": {}, "ver": 3}`, `listeners["l1"].stats.tx`},
		{"v2 without pools", `{"id": "a", "listeners": {}, "ver": 2}`, "pools"},
		{"v3 pools a list", `{"id": "a", "listeners": {}, "pools": [], "ver": 3}`, "pools"},
		{"pool a string", `{"id": "a", "listeners": {}, "pools": {"p:l": "UP"}, "ver": 3}`, `pools["p:l"]`},
		{"pool without status", `{"id": "a", "listeners": {}, "pools": {"p:l": {"members": {}}}, "ver": 3}`, `pools["p:l"].status`},
		{"pool without members", `{"id": "a", "listeners": {}, "pools": {"p:l": {"status": "UP"}}, "ver": 3}`, `pools["p:l"].members`},
		{"members a list", `{"id": "a", "listeners": {}, "pools": {"p:l": {"status": "UP", "members": []}}, "ver": 3}`, `pools["p:l"].members`},
		{"member status a number", `{"id": "a", "listeners": {}, "pools": {"p:l": {"status": "UP", "members": {"m1": 1}}}, "ver": 3}`, `pools["p:l"].members["m1"]`},
		{"member status null", `{"id": "a", "listeners": {}, "pools": {"p": {"status": "UP", "members": {"m1": null}}}, "ver": 3}`, `pools["p"].members["m1"]`},
		{"v1 listener pools a list", `{"id": "a", "listeners": {"l1": {"status": "OPEN", "pools": []}}, "ver": 1}`, `listeners["l1"].pools`},
		{"v0 member status an object", `{"id": "a", "listeners": {"l1": {"status": "OPEN", "pools": {"p": {"status": "UP", "members": {"m": {}}}}}}}`, `listeners["l1"].pools["p"].members["m"]`},
		{"field names escaped in the path", `{"id": "a", "listeners": {"l\"1": 5}, "pools": {}, "ver": 3}`, `listeners["l\"1"]`},
		{"listener 2 of 2 bad", `{"id": "a", "listeners": {"l1": ` + okListener + `, "l2": {"status": false}}, "pools": {}, "ver": 3}`, `listeners["l2"].status`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// By default the message is kept, with the same irregularity
			// recorded, for the status procedure to apply as Octavia does.
			lenient, err := DecodeMessage([]byte(c.text))
			if err != nil {
				t.Fatalf("default decoder rejected it: %v", err)
			}
			if lenient.Irregularity == nil || lenient.Irregularity.Field != c.field {
				t.Errorf("irregularity %v, want one at %q", lenient.Irregularity, c.field)
			}
			msg, err := DecodeMessageStrict([]byte(c.text))
			if err == nil {
				t.Fatalf("accepted: %+v", msg)
			}
			var he *Error
			if !asError(err, &he) || he.Reason != ReasonMalformed {
				t.Fatalf("got %v, want malformed", err)
			}
			if he.Field != c.field {
				t.Errorf("field %q, want %q (%v)", he.Field, c.field, err)
			}
			if !strings.Contains(err.Error(), c.field) {
				t.Errorf("error text %q does not name the field", err)
			}
		})
	}
}

func TestDecodeMessageNotJSONOrObject(t *testing.T) {
	cases := []struct {
		text string
		want Reason
	}{
		{``, ReasonNotJSON},
		{`   `, ReasonNotJSON},
		{`[]`, ReasonNotObject},
		{`"id"`, ReasonNotObject},
		{`42`, ReasonNotObject},
		{`null`, ReasonNotObject},
		{`{"id": "a"} {}`, ReasonNotJSON},
		{`{"id": "a",}`, ReasonNotJSON},
		{`{"id": -NaN}`, ReasonNotJSON},
		{`{"id": +Infinity}`, ReasonNotJSON},
		{`{"id": nan}`, ReasonNotJSON},
		{`{"id": Infinit}`, ReasonNotJSON},
		{`{"id": NaN1}`, ReasonNotJSON},
		{`{'id': 'a'}`, ReasonNotJSON},
		{"{\"id\": \"a\tb\"}", ReasonNotJSON},
		{"\xef\xbb\xbf{}", ReasonNotJSON},
		{"{\"id\": \"\xff\"}", ReasonNotUTF8},
		{strings.Repeat("[", 65) + strings.Repeat("]", 65), ReasonNotJSON},
	}
	for _, c := range cases {
		_, err := DecodeMessage([]byte(c.text))
		if got := ReasonOf(err); got != c.want {
			t.Errorf("%q: reason %v (%v), want %v", c.text, got, err, c.want)
		}
	}
}

func TestDecodeMessageVersions(t *testing.T) {
	cases := []struct {
		name             string
		text             string
		hasVersion       bool
		version          int64
		deltas, nested   bool
		topPools         int
		firstListenerHas bool
	}{
		{"absent ver is V0: nested pools, absolute stats",
			`{"id": "a", "listeners": {"l": {"status": "OPEN", "pools": {"p": {"status": "UP", "members": {}}}}}}`,
			false, 0, false, true, 0, true},
		{"ver 1",
			`{"id": "a", "listeners": {"l": {"status": "OPEN", "pools": {}}}, "ver": 1}`,
			true, 1, false, true, 0, true},
		{"ver 2: top-level pools, absolute stats",
			`{"id": "a", "listeners": {"l": {"status": "OPEN"}}, "pools": {"p:l": {"status": "UP", "members": {}}}, "ver": 2}`,
			true, 2, false, false, 1, false},
		{"ver 3: deltas",
			`{"id": "a", "listeners": {}, "pools": {}, "ver": 3}`,
			true, 3, true, false, 0, false},
		{"a future version reads as V3",
			`{"id": "a", "listeners": {}, "pools": {}, "ver": 7}`,
			true, 7, true, false, 0, false},
		{"ver before the fields it governs",
			`{"ver": 2, "pools": {}, "listeners": {}, "id": "a"}`,
			true, 2, false, false, 0, false},
		{"V0 ignores top-level pools, even malformed ones",
			`{"id": "a", "listeners": {}, "pools": "junk"}`,
			false, 0, false, true, 0, false},
		{"V3 ignores per-listener pools, even malformed ones",
			`{"id": "a", "listeners": {"l": {"status": "OPEN", "pools": 5}}, "pools": {}, "ver": 3}`,
			true, 3, true, false, 0, false},
		{"V0 UDP listener without pools",
			`{"id": "a", "listeners": {"l": {"status": "OPEN", "stats": {"tx": 0, "rx": 0, "conns": 0, "totconns": 0, "ereq": 0}}}}`,
			false, 0, false, true, 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			msg, err := DecodeMessage([]byte(c.text))
			if err != nil {
				t.Fatal(err)
			}
			if msg.HasVersion != c.hasVersion || msg.Version != c.version {
				t.Errorf("version %v/%d, want %v/%d", msg.HasVersion, msg.Version, c.hasVersion, c.version)
			}
			if msg.StatsAreDeltas() != c.deltas || msg.PoolsPerListener() != c.nested {
				t.Errorf("deltas %v nested %v, want %v %v", msg.StatsAreDeltas(), msg.PoolsPerListener(), c.deltas, c.nested)
			}
			if len(msg.Pools) != c.topPools || (c.nested && msg.Pools != nil) {
				t.Errorf("top-level pools %#v, want %d", msg.Pools, c.topPools)
			}
			if len(msg.Listeners) > 0 && msg.Listeners[0].HasPools != c.firstListenerHas {
				t.Errorf("listener HasPools %v, want %v", msg.Listeners[0].HasPools, c.firstListenerHas)
			}
		})
	}
}

func TestDecodeMessageKeepsOrderAndResolvesDuplicatesLikePython(t *testing.T) {
	text := `{"id": "first", "seq": 1, "listeners": {` +
		`"l2": {"status": "OPEN"}, "l1": {"status": "FULL"}, "l2": {"status": "STOP", "status": "DOWN"}}, ` +
		`"pools": {"p:l2": {"status": "UP", "members": {"m2": "UP", "m1": "DOWN", "m2": "DRAIN"}}, "p:l1": {"status": "DOWN", "members": {}}}, ` +
		`"ver": 3, "id": "second", "unknown": {"deep": [1, 2, {"x": null}]}, "recv_time": 5}`
	msg, err := DecodeMessage([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	want := &Message{
		AmphoraID: "second", Seq: 1, HasSeq: true, Version: 3, HasVersion: true,
		Listeners: []Listener{{ID: "l2", Status: "DOWN"}, {ID: "l1", Status: "FULL"}},
		Pools: []Pool{
			{Key: "p:l2", Status: "UP", Members: []Member{{ID: "m2", Status: "DRAIN"}, {ID: "m1", Status: "DOWN"}}},
			{Key: "p:l1", Status: "DOWN", Members: []Member{}},
		},
	}
	if !reflect.DeepEqual(msg, want) {
		t.Errorf("got  %+v\nwant %+v", msg, want)
	}
	// Both keys normalise to pool "p": the last one in JSON order wins.
	norm := NormalizePools(msg.Pools)
	if len(norm) != 1 || norm[0].Key != "p" || norm[0].Status != "DOWN" {
		t.Errorf("normalised pools %+v, want one pool p with status DOWN", norm)
	}
}

func TestEscapedKeysMatchFieldNames(t *testing.T) {
	msg, err := DecodeMessage([]byte(`{"\u0069d": "a\u00e9\ud83d\ude00", "listeners": {}, "p\u006fols": {}, "ver": 3}`))
	if err != nil {
		t.Fatal(err)
	}
	if msg.AmphoraID != "aé😀" {
		t.Errorf("id %q", msg.AmphoraID)
	}
}

func TestManyDuplicateKeysStayLinear(t *testing.T) {
	// Past linearScanMax entries the duplicate check switches to a map; the
	// result must be the same as with a scan.
	var b strings.Builder
	b.WriteString(`{"id": "a", "listeners": {`)
	const distinct = 200
	for i := 0; i < 3*distinct; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, `"l%d": {"status": "S%d"}`, i%distinct, i)
	}
	b.WriteString(`}, "pools": {}, "ver": 3}`)
	msg, err := DecodeMessage([]byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if len(msg.Listeners) != distinct {
		t.Fatalf("%d listeners, want %d", len(msg.Listeners), distinct)
	}
	for i, l := range msg.Listeners {
		if l.ID != fmt.Sprintf("l%d", i) || l.Status != fmt.Sprintf("S%d", i+2*distinct) {
			t.Fatalf("listener %d = %+v", i, l)
		}
	}
}

func TestPoolIDFromKey(t *testing.T) {
	cases := map[string]string{
		"P:L":   "P",
		"P":     "P",
		"P:x:L": "P:x",
		"abc:":  "abc",
		":":     "",
		"":      "",
		":L":    "",
		"é:ß":   "é",
	}
	for key, want := range cases {
		if got := PoolIDFromKey(key); got != want {
			t.Errorf("PoolIDFromKey(%q) = %q, want %q", key, got, want)
		}
	}
}

func TestNormalizePools(t *testing.T) {
	pools := []Pool{
		{Key: "a:l1", Status: "UP"},
		{Key: "b", Status: "UP"},
		{Key: "a:l2", Status: "DOWN"},
		{Key: "b:l3", Status: "DRAIN"},
		{Key: "c:x:l", Status: "UP"},
	}
	got := NormalizePools(pools)
	want := []Pool{{Key: "a", Status: "DOWN"}, {Key: "b", Status: "DRAIN"}, {Key: "c:x", Status: "UP"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if pools[0].Key != "a:l1" {
		t.Error("NormalizePools modified its input")
	}
	var many []Pool
	for i := 0; i < 100; i++ {
		many = append(many, Pool{Key: fmt.Sprintf("p%d:l%d", i%10, i), Status: fmt.Sprint(i)})
	}
	got = NormalizePools(many)
	if len(got) != 10 || got[3].Key != "p3" || got[3].Status != "93" {
		t.Errorf("large input normalised to %+v", got)
	}
}

// Found by the interop suite: Python keeps a lone surrogate in an id, and
// Octavia's database driver cannot encode it, so no statistics are written
// for that listener (or, for the amphora id, for the whole message). We
// carry U+FFFD instead, and must say so for the stats path to match.
func TestDecodeMessageFlagsLoneSurrogates(t *testing.T) {
	tests := []struct {
		id, listener         string
		wantAmp, wantListner bool
	}{
		{`amp`, `l`, false, false},
		{`amp\ud800`, `l`, true, false},
		{`amp`, `l\udc00x`, false, true},
		{`\ud83d\ude00`, `\ud83d\ude00`, false, false}, // a valid pair
		{`\ud83d\u0041`, `\ude00\ud83d`, true, true},   // high then not low; low then high
		{`\\ud800`, `\\\ud800`, false, true},           // an escaped backslash, then a real escape
		{`\ufffd`, `x\ud83d`, false, true},             // U+FFFD itself is fine; a high surrogate at the end is not
	}
	for _, tc := range tests {
		text := `{"id": "` + tc.id + `", "listeners": {"` + tc.listener + `": {"status": "OPEN"}}, "pools": {}, "ver": 3}`
		m, err := DecodeMessage([]byte(text))
		if err != nil {
			t.Fatalf("%s: %v", text, err)
		}
		if m.AmphoraIDLoneSurrogate != tc.wantAmp || m.Listeners[0].IDLoneSurrogate != tc.wantListner {
			t.Errorf("%s: flags amphora %v listener %v, want %v %v", text,
				m.AmphoraIDLoneSurrogate, m.Listeners[0].IDLoneSurrogate, tc.wantAmp, tc.wantListner)
		}
	}
}
