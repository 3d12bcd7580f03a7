package heartbeat

import (
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
)

// The default decoder keeps every JSON object, recording each odd field
// the way Octavia's code will meet it.
func TestDecodeMessageKeepsOddShapes(t *testing.T) {
	cases := []struct {
		name  string
		text  string
		check func(*Message) bool
	}{
		{"no id", `{"listeners": {}}`, func(m *Message) bool { return m.IDProblem == IDAbsent && m.AmphoraID == "" }},
		{"id null", `{"id": null, "listeners": {}}`, func(m *Message) bool { return m.IDProblem == IDNull }},
		{"id false", `{"id": false}`, func(m *Message) bool { return m.IDProblem == IDFalsy }},
		{"id 0.0", `{"id": 0.0}`, func(m *Message) bool { return m.IDProblem == IDFalsy }},
		{"id {}", `{"id": {}}`, func(m *Message) bool { return m.IDProblem == IDFalsy }},
		{"id 7", `{"id": 7}`, func(m *Message) bool { return m.IDProblem == IDTruthy }},
		{"id [0]", `{"id": [0]}`, func(m *Message) bool { return m.IDProblem == IDTruthy }},
		{"id empty string", `{"id": ""}`, func(m *Message) bool { return m.IDProblem == IDString && m.Irregularity.Field == "listeners" }},
		{"ver null", `{"id": "a", "ver": null}`, func(m *Message) bool { return m.HasVersion && m.VersionNotComparable }},
		{"ver a string", `{"id": "a", "ver": "3"}`, func(m *Message) bool { return m.VersionNotComparable && !m.StatsAreDeltas() }},
		{"ver an object", `{"id": "a", "ver": {}}`, func(m *Message) bool { return m.VersionNotComparable }},
		{"ver true", `{"id": "a", "ver": true}`, func(m *Message) bool { return m.Version == 1 && !m.VersionNotComparable && m.PoolsPerListener() }},
		{"ver false", `{"id": "a", "ver": false}`, func(m *Message) bool { return m.Version == 0 && m.HasVersion }},
		{"ver 2.5", `{"id": "a", "ver": 2.5}`, func(m *Message) bool { return m.Version == 2 && !m.PoolsPerListener() && !m.StatsAreDeltas() }},
		{"ver 2.99", `{"id": "a", "ver": 2.99}`, func(m *Message) bool { return m.Version == 2 }},
		{"ver 3e0", `{"id": "a", "ver": 3e0}`, func(m *Message) bool { return m.Version == 3 && m.StatsAreDeltas() }},
		{"ver -0.5", `{"id": "a", "ver": -0.5}`, func(m *Message) bool { return m.Version == -1 && m.PoolsPerListener() }},
		{"ver NaN", `{"id": "a", "ver": NaN}`, func(m *Message) bool {
			return m.VersionNaN && !m.PoolsPerListener() && !m.PoolsTopLevel() && !m.StatsAreDeltas() && m.Irregularity.Field == "ver"
		}},
		{"ver -Infinity", `{"id": "a", "ver": -Infinity}`, func(m *Message) bool { return m.Version == math.MinInt64 && m.PoolsPerListener() }},
		{"id NaN", `{"id": NaN}`, func(m *Message) bool { return m.IDProblem == IDTruthy }},
		{"ver 1e400", `{"id": "a", "ver": 1e400}`, func(m *Message) bool { return m.Version == math.MaxInt64 }},
		{"ver -2^64", `{"id": "a", "ver": -18446744073709551616}`, func(m *Message) bool { return m.Version == math.MinInt64 }},
		{"seq a string", `{"id": "a", "seq": "1", "listeners": {}}`, func(m *Message) bool { return !m.HasSeq && m.Irregularity.Field == "seq" }},
		{"no listeners", `{"id": "a"}`, func(m *Message) bool { return m.ListenersAbsent && m.Listeners == nil }},
		{"listeners an array", `{"id": "a", "listeners": ["l1", 2, "l2"]}`, func(m *Message) bool {
			return m.ListenersOdd.Kind == KindArray && m.ListenersOdd.Len == 3 &&
				reflect.DeepEqual(m.ListenersOdd.Strings, []string{"l1", "l2"})
		}},
		{"listeners a string", `{"id": "a", "listeners": "l\u00e91"}`, func(m *Message) bool {
			found, ok := m.ListenersOdd.Contains("\u00e91")
			return m.ListenersOdd.Kind == KindString && m.ListenersOdd.Len == 3 && found && ok
		}},
		{"listeners null", `{"id": "a", "listeners": null}`, func(m *Message) bool {
			_, ok := m.ListenersOdd.Contains("l1")
			return m.ListenersOdd.Kind == KindNull && !m.ListenersOdd.Sized() && !ok
		}},
		{"listener shapes", `{"id": "a", "listeners": {"l1": {}, "l2": 5, "l3": {"status": null}, "l4": {"status": "OPEN", "stats": [1]}}, "ver": 3, "pools": {}}`,
			func(m *Message) bool {
				l := m.Listeners
				return len(l) == 4 && l[0].Empty && l[0].StatusOdd == KindAbsent && l[1].NotObject && l[2].StatusOdd == KindNull &&
					!l[2].Empty && l[3].Status == "OPEN" && !l[3].HasStats
			}},
		{"a repeated listener keeps its last shape", `{"id": "a", "listeners": {"l1": {"status": "OPEN"}, "l1": "x"}}`, func(m *Message) bool {
			return len(m.Listeners) == 1 && m.Listeners[0].NotObject
		}},
		{"stats counters", `{"id": "a", "listeners": {"l1": {"stats": {"tx": 1.5, "rx": 2, "conns": "3", "totconns": 4}}}}`, func(m *Message) bool {
			l := m.Listeners[0]
			return l.HasStats && l.Stats.TX == 2 && l.Stats.RX == 2 && l.StatsUnwritable == `listeners["l1"].stats.conns: must be an integer, not a string`
		}},
		{"stats counter booleans", `{"id": "a", "listeners": {"l1": {"stats": {"tx": true, "rx": false, "conns": 3, "totconns": 4, "ereq": 0}}, "l2": {"stats": {"tx": true, "rx": null, "conns": 3, "totconns": 4, "ereq": 0}}}}`, func(m *Message) bool {
			l1, l2 := m.Listeners[0], m.Listeners[1]
			return l1.Stats.TX == 1 && l1.Stats.RX == 0 && l1.StatsUnwritable != "" && l1.StatsUnwritableMySQL == "" &&
				l2.StatsUnwritable != "" && l2.StatsUnwritableMySQL == `listeners["l2"].stats.rx: must be an integer, not null`
		}},
		{"stats counter -2.5", `{"id": "a", "listeners": {"l1": {"stats": {"tx": -2.5, "rx": 2, "conns": 3, "totconns": 4, "ereq": 0}}}}`, func(m *Message) bool {
			return m.Listeners[0].Stats.TX == -3 && m.Listeners[0].StatsUnwritable == ""
		}},
		{"stats counter 1e19", `{"id": "a", "listeners": {"l1": {"stats": {"tx": 1e19, "rx": 2, "conns": 3, "totconns": 4, "ereq": 0}}}}`, func(m *Message) bool {
			return m.Listeners[0].StatsUnwritable != ""
		}},
		{"v1 listener pools", `{"id": "a", "listeners": {"l1": {"status": "OPEN", "pools": []}, "l2": {"status": "OPEN"}}, "ver": 1}`, func(m *Message) bool {
			return m.Listeners[0].HasPools && m.Listeners[0].PoolsNotObject && !m.Listeners[1].HasPools
		}},
		{"v2 without pools", `{"id": "a", "listeners": {}, "ver": 2}`, func(m *Message) bool { return m.PoolsAbsent && m.Pools == nil }},
		{"v2 pools a string", `{"id": "a", "listeners": {}, "pools": "p", "ver": 2}`, func(m *Message) bool { return m.PoolsNotObject }},
		{"pool shapes", `{"id": "a", "listeners": {}, "ver": 2, "pools": {"p1": 1, "p2": {"status": 5, "members": null}, "p3": {"status": "UP"}, ` +
			`"p4": {"status": "UP", "members": ["m1", null]}, "p5": {"members": {"m1": 1, "m2": "UP"}}}}`, func(m *Message) bool {
			p := m.Pools
			return len(p) == 5 && p[0].NotObject && p[1].StatusOdd == KindNumber && p[1].MembersOdd.Kind == KindNull &&
				p[2].Status == "UP" && p[2].MembersAbsent && p[3].MembersOdd.Len == 2 && reflect.DeepEqual(p[3].MembersOdd.Strings, []string{"m1"}) &&
				p[4].StatusOdd == KindAbsent && p[4].Members[0].StatusOdd == KindNumber && p[4].Members[1].Status == "UP"
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := DecodeMessage([]byte(c.text))
			if err != nil {
				t.Fatalf("rejected: %v", err)
			}
			if !c.check(m) {
				t.Errorf("decoded as %+v", m)
			}
			if _, err := DecodeMessageStrict([]byte(c.text)); err == nil || ReasonOf(err) != ReasonMalformed {
				t.Errorf("strict decoder: %v, want malformed", err)
			}
		})
	}
}

// A well-formed heartbeat records no irregularity, and the strict decoder
// accepts it.
func TestDecodeMessageWellFormedHasNoIrregularity(t *testing.T) {
	for _, v := range vectors(t).Valid {
		if v.Name == "octavia_unit_test_fixture" {
			continue
		}
		m, err := DecodeMessage([]byte(v.JSONText))
		if err != nil || m.Irregularity != nil {
			t.Errorf("%s: %v, irregularity %v", v.Name, err, m.Irregularity)
		}
		if _, err := DecodeMessageStrict([]byte(v.JSONText)); err != nil {
			t.Errorf("%s: strict: %v", v.Name, err)
		}
	}
}

// Long collections share reused indexes: each pool's members, and each
// message, must still be checked for repeats on their own.
func TestLongCollectionsKeepTheirOwnMembers(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"id": "a", "ver": 3, "listeners": {}, "pools": {`)
	for p, status := range []string{"UP", "DOWN"} {
		if p > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, `"p%d": {"status": "UP", "members": {`, p)
		for m := 0; m < 3*linearScanMax; m++ {
			if m > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, `"m%d": "%s"`, m%(2*linearScanMax), status)
		}
		b.WriteString("}}")
	}
	b.WriteString("}}")
	for round := 0; round < 3; round++ {
		msg, err := DecodeMessage([]byte(b.String()))
		if err != nil {
			t.Fatal(err)
		}
		for p, want := range []string{"UP", "DOWN"} {
			members := msg.Pools[p].Members
			if len(members) != 2*linearScanMax {
				t.Fatalf("round %d pool %d: %d members, want %d", round, p, len(members), 2*linearScanMax)
			}
			for i, m := range members {
				if m.ID != fmt.Sprintf("m%d", i) || m.Status != want {
					t.Fatalf("round %d pool %d member %d: %+v", round, p, i, m)
				}
			}
		}
	}
}

// The pools' member lists share one array: growing one must not write
// over the next.
func TestMemberListsDoNotOverlap(t *testing.T) {
	msg, err := DecodeMessage([]byte(`{"id": "a", "ver": 3, "listeners": {}, "pools": {` +
		`"p1": {"status": "UP", "members": {"m1": "UP", "m2": "UP"}}, ` +
		`"p2": {"status": "UP", "members": {"m3": "DOWN"}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	grown := append(msg.Pools[0].Members, Member{ID: "extra", Status: "UP"})
	if len(grown) != 3 || msg.Pools[1].Members[0] != (Member{ID: "m3", Status: "DOWN"}) {
		t.Fatalf("appending to the first pool's members changed the second's: %+v", msg.Pools[1].Members)
	}
}

// "members": {} is an empty list, not a missing one, whichever pool it is in.
func TestEmptyMembersAreNotNil(t *testing.T) {
	for _, text := range []string{
		`{"id": "a", "ver": 3, "listeners": {}, "pools": {"p": {"status": "UP", "members": {}}}}`,
		`{"id": "a", "ver": 3, "listeners": {}, "pools": {"p": {"status": "UP", "members": {"m": "UP"}}, "q": {"status": "UP", "members": {}}}}`,
		`{"id": "a", "listeners": {"l": {"status": "OPEN", "pools": {"p": {"status": "UP", "members": {}}}}}}`,
	} {
		msg, err := DecodeMessage([]byte(text))
		if err != nil {
			t.Fatal(err)
		}
		pools := msg.Pools
		if len(msg.Listeners) > 0 {
			pools = msg.Listeners[0].Pools
		}
		last := pools[len(pools)-1]
		if last.Members == nil || len(last.Members) != 0 {
			t.Errorf("%s: members %#v, want an empty, non-nil list", text, last.Members)
		}
	}
}
