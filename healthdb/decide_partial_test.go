package healthdb

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/octavia-vpp/health/heartbeat"
)

// Heartbeats of odd shapes, decoded from their JSON text and decided
// against one topology: what Octavia 11's _update_health writes for each,
// read from its code (heartbeat_udp.py), including where it raises
// part-way. Changes are listed in the order Octavia makes them.
//
// The topology: listeners l1 and l2 (enabled), pool p1 with members m1 and
// m2, pool p2 with member m3; every status "bogus", so any mapped status is
// a change.
func TestDecideOddShapes(t *testing.T) {
	const (
		okStats = `"stats": {"tx": 1, "rx": 2, "conns": 3, "totconns": 4, "ereq": 5}`
		l1      = `"l1": {"status": "OPEN", ` + okStats + `}`
		l2      = `"l2": {"status": "OPEN", ` + okStats + `}`
		p2      = `"p2:l2": {"status": "UP", "members": {"m3": "UP"}}`
		p1ok    = `"p1:l1": {"status": "UP", "members": {"m1": "UP", "m2": "UP"}}`
	)
	v2 := func(listeners, pools string) string {
		return `{"id": "amp-1", "seq": 1, "listeners": {` + listeners + `}, "pools": {` + pools + `}, "ver": 2}`
	}
	// The changes of a heartbeat that gets through to the end with
	// everything OPEN and UP.
	all := []string{"listener l1 ONLINE", "listener l2 ONLINE", "member m1 ONLINE", "member m2 ONLINE",
		"pool p1 ONLINE", "member m3 ONLINE", "pool p2 ONLINE", "lb ONLINE"}
	listenersOnly := all[:2]
	cases := []struct {
		name   string
		text   string
		health HealthOutcome
		abort  AbortReason
		want   []string
	}{
		{"well-formed", v2(l1+", "+l2, p1ok+", "+p2), HealthWrite, AbortNone, all},

		// A listener status that is missing, null, not a string or
		// unknown is logged and skipped; everything else is applied.
		{"listener status missing", v2(`"l1": {`+okStats+`}, `+l2, p1ok+", "+p2), HealthWrite, AbortNone, all[1:]},
		{"listener status null", v2(`"l1": {"status": null}, `+l2, p1ok+", "+p2), HealthWrite, AbortNone, all[1:]},
		{"listener status a number", v2(`"l1": {"status": 1}, `+l2, p1ok+", "+p2), HealthWrite, AbortNone, all[1:]},
		{"listener status an object", v2(`"l1": {"status": {"a": 1}}, `+l2, p1ok+", "+p2), HealthWrite, AbortNone, all[1:]},
		{"listener status STOP", v2(`"l1": {"status": "STOP"}, `+l2, p1ok+", "+p2), HealthWrite, AbortNone, all[1:]},
		{"listener FULL degrades the LB", v2(`"l1": {"status": "FULL"}, `+l2, p1ok+", "+p2), HealthWrite, AbortNone,
			[]string{"listener l1 DEGRADED", "listener l2 ONLINE", "member m1 ONLINE", "member m2 ONLINE", "pool p1 ONLINE",
				"member m3 ONLINE", "pool p2 ONLINE", "lb DEGRADED"}},
		// Octavia's status path never reads stats.
		{"stats without a counter", v2(`"l1": {"status": "OPEN", "stats": {"tx": 1}}, `+l2, p1ok+", "+p2), HealthWrite, AbortNone, all},
		{"stats a list", v2(`"l1": {"status": "OPEN", "stats": []}, `+l2, p1ok+", "+p2), HealthWrite, AbortNone, all},
		{"pool status missing", v2(l1+", "+l2, `"p1:l1": {"members": {"m1": "UP", "m2": "UP"}}, `+p2), HealthWrite, AbortNone,
			[]string{"listener l1 ONLINE", "listener l2 ONLINE", "member m1 ONLINE", "member m2 ONLINE", "member m3 ONLINE", "pool p2 ONLINE", "lb ONLINE"}},
		{"pool status a boolean", v2(l1+", "+l2, `"p1:l1": {"status": true, "members": {"m1": "UP", "m2": "UP"}}, `+p2), HealthWrite, AbortNone,
			[]string{"listener l1 ONLINE", "listener l2 ONLINE", "member m1 ONLINE", "member m2 ONLINE", "member m3 ONLINE", "pool p2 ONLINE", "lb ONLINE"}},
		{"member status unknown", v2(l1+", "+l2, `"p1:l1": {"status": "UP", "members": {"m1": "WHAT", "m2": "UP"}}, `+p2), HealthWrite, AbortNone,
			[]string{"listener l1 ONLINE", "listener l2 ONLINE", "member m2 ONLINE", "pool p1 ONLINE", "member m3 ONLINE", "pool p2 ONLINE", "lb ONLINE"}},
		// An odd pool of no database pool is never looked at.
		{"unknown pool not an object", v2(l1+", "+l2, p1ok+", "+p2+`, "px:l1": 5`), HealthWrite, AbortNone, all},

		// Octavia raises before the amphora_health write: nothing.
		{"no id", `{"listeners": {` + l1 + `, ` + l2 + `}, "pools": {}, "ver": 2}`, HealthSkipAborted, AbortIDMissing, nil},
		{"id a number", `{"id": 7, "listeners": {` + l1 + `, ` + l2 + `}, "pools": {}, "ver": 2}`, HealthSkipAborted, AbortIDNotString, nil},
		{"id null finds no amphora", `{"id": null, "listeners": {}, "pools": {}, "ver": 2}`, HealthSkipUnknown, AbortNone, nil},
		{"id false", `{"id": false, "listeners": {}, "pools": {}, "ver": 2}`, HealthSkipAborted, AbortIDNotString, nil},
		{"no listeners", `{"id": "amp-1", "pools": {` + p1ok + `}, "ver": 2}`, HealthSkipAborted, AbortListenersMissing, nil},
		{"listeners null", `{"id": "amp-1", "listeners": null, "pools": {}, "ver": 2}`, HealthSkipAborted, AbortListenersNotObject, nil},
		{"listeners a number", `{"id": "amp-1", "listeners": 2, "pools": {}, "ver": 2}`, HealthSkipAborted, AbortListenersNotObject, nil},

		// Octavia writes amphora_health, then raises part-way.
		{"member status a number", v2(l1+", "+l2, `"p1:l1": {"status": "UP", "members": {"m1": 1, "m2": "UP"}}, `+p2),
			HealthWrite, AbortMemberStatusNotString, listenersOnly},
		{"second member status null", v2(l1+", "+l2, `"p1:l1": {"status": "UP", "members": {"m1": "DOWN", "m2": null}}, `+p2),
			HealthWrite, AbortMemberStatusNotString, []string{"listener l1 ONLINE", "listener l2 ONLINE", "member m1 ERROR"}},
		{"member status in the second pool", v2(l1+", "+l2, p1ok+`, "p2:l2": {"status": "UP", "members": {"m3": ["UP"]}}`),
			HealthWrite, AbortMemberStatusNotString, all[:5]},
		{"v2 without pools", `{"id": "amp-1", "listeners": {` + l1 + `, ` + l2 + `}, "ver": 2}`,
			HealthWrite, AbortPoolsMissing, listenersOnly},
		{"v3 pools a list", `{"id": "amp-1", "listeners": {` + l1 + `, ` + l2 + `}, "pools": [], "ver": 3}`,
			HealthWrite, AbortPoolsNotObject, listenersOnly},
		{"pool a string", v2(l1+", "+l2, `"p1:l1": "UP", `+p2), HealthWrite, AbortPoolNotObject, listenersOnly},
		{"pool without members", v2(l1+", "+l2, `"p1:l1": {"status": "DOWN"}, `+p2), HealthWrite, AbortMembersMissing, listenersOnly},
		{"members null", v2(l1+", "+l2, `"p1:l1": {"status": "UP", "members": null}, `+p2), HealthWrite, AbortMembersNotObject, listenersOnly},
		// Python's "in" answers for an array or a string; indexing fails.
		{"members an empty array", v2(l1+", "+l2, `"p1:l1": {"status": "UP", "members": []}, `+p2), HealthWrite, AbortNone,
			[]string{"listener l1 ONLINE", "listener l2 ONLINE", "member m1 OFFLINE", "member m2 OFFLINE", "pool p1 ONLINE",
				"member m3 ONLINE", "pool p2 ONLINE", "lb ONLINE"}},
		{"members a string holding m2", v2(l1+", "+l2, `"p1:l1": {"status": "UP", "members": "xm2x"}, `+p2), HealthWrite, AbortMembersNotObject,
			[]string{"listener l1 ONLINE", "listener l2 ONLINE", "member m1 OFFLINE"}},
		{"members an array holding m1", v2(l1+", "+l2, `"p1:l1": {"status": "UP", "members": ["m1"]}, `+p2), HealthWrite, AbortMembersNotObject, listenersOnly},
		{"listener a string", v2(`"l1": "OPEN", `+l2, p1ok+", "+p2), HealthWrite, AbortListenerNotObject, nil},
		{"second listener null", v2(l1+`, "l2": null`, p1ok+", "+p2), HealthWrite, AbortListenerNotObject, all[:1]},
		{"listeners an empty array", `{"id": "amp-1", "listeners": [], "pools": {` + p1ok + `, ` + p2 + `}, "ver": 2}`,
			HealthSkipCountMismatch, AbortNone,
			[]string{"listener l1 ERROR", "listener l2 ERROR", "member m1 ONLINE", "member m2 ONLINE", "pool p1 ONLINE",
				"member m3 ONLINE", "pool p2 ONLINE", "lb ONLINE"}},
		{"listeners an array holding l2", `{"id": "amp-1", "listeners": ["l2", 5], "pools": {}, "ver": 2}`,
			HealthWrite, AbortListenersNotObject, []string{"listener l1 ERROR"}},
		{"listeners a string holding l1", `{"id": "amp-1", "listeners": "l1", "pools": {}, "ver": 2}`,
			HealthWrite, AbortListenersNotObject, nil},

		// "ver" Python cannot compare with 2: the first reported listener
		// that is not {} gets its status, then the comparison raises.
		{"ver null", `{"id": "amp-1", "listeners": {` + l1 + `, ` + l2 + `}, "pools": {` + p1ok + `}, "ver": null}`,
			HealthWrite, AbortVersionNotComparable, all[:1]},
		{"ver a string", `{"id": "amp-1", "listeners": {` + l1 + `, ` + l2 + `}, "pools": {` + p1ok + `}, "ver": "2"}`,
			HealthWrite, AbortVersionNotComparable, all[:1]},
		{"ver an object, first listener {}", `{"id": "amp-1", "listeners": {"l1": {}, ` + l2 + `}, "pools": {}, "ver": {}}`,
			HealthWrite, AbortVersionNotComparable, all[1:2]},
		{"ver an array, no listener reported", `{"id": "amp-1", "listeners": {}, "pools": {}, "ver": []}`,
			HealthSkipCountMismatch, AbortVersionNotComparable, []string{"listener l1 ERROR", "listener l2 ERROR"}},
		// Numbers and booleans compare: floor for a float, 1 for true.
		{"ver 2.5 is a V2 message", `{"id": "amp-1", "listeners": {` + l1 + `, ` + l2 + `}, "pools": {` + p1ok + `, ` + p2 + `}, "ver": 2.5}`,
			HealthWrite, AbortNone, all},
		{"ver true is a V1 message", `{"id": "amp-1", "listeners": {"l1": {"status": "OPEN", "pools": {"p1:l1": {"status": "UP", "members": {"m1": "UP", "m2": "UP"}}}}, ` +
			`"l2": {"status": "OPEN", "pools": {` + p2 + `}}}, "pools": 7, "ver": true}`, HealthWrite, AbortNone, all},
		{"ver 1.9 with a listener without pools", `{"id": "amp-1", "listeners": {` + l1 + `, ` + l2 + `}, "ver": 1.9}`,
			HealthWrite, AbortListenerPoolsMissing, all[:1]},
		{"ver 1e400 is a V2 message", `{"id": "amp-1", "listeners": {` + l1 + `, ` + l2 + `}, "pools": {` + p1ok + `, ` + p2 + `}, "ver": 1e400}`,
			HealthWrite, AbortNone, all},
		// NaN compares false with 2 both ways: no pools are read at all.
		{"ver NaN reads no pools", `{"id": "amp-1", "listeners": {` + l1 + `, ` + l2 + `}, "pools": {` + p1ok + `, ` + p2 + `}, "ver": NaN}`,
			HealthWrite, AbortNone, []string{"listener l1 ONLINE", "listener l2 ONLINE", "lb ONLINE"}},
		{"ver -Infinity is a V1 message", `{"id": "amp-1", "listeners": {"l1": {"status": "OPEN", "pools": {"p1:l1": {"status": "UP", "members": {"m1": "UP", "m2": "UP"}}}}, ` +
			`"l2": {"status": "OPEN", "pools": {` + p2 + `}}}, "ver": -Infinity}`, HealthWrite, AbortNone, all},
		// Pre-V2: a listener sent as {} is false to Python, so its pools
		// are skipped; one with pools not an object raises.
		{"v1 listener {}", `{"id": "amp-1", "listeners": {"l1": {}, "l2": {"status": "OPEN", "pools": {` + p2 + `}}}, "ver": 1}`,
			HealthWrite, AbortNone, []string{"listener l2 ONLINE", "pool p1 OFFLINE", "member m3 ONLINE", "pool p2 ONLINE", "lb ONLINE"}},
		{"v0 listener pools a list", `{"id": "amp-1", "listeners": {"l1": {"status": "OPEN", "pools": []}, "l2": {"status": "OPEN", "pools": {}}}}`,
			HealthWrite, AbortPoolsNotObject, all[:1]},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := heartbeat.DecodeMessage([]byte(c.text))
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			m.RecvTime = now.Add(-1e9)
			tp := topo(withListeners(listener("l1"), listener("l2")),
				withPools(pool("p1", member("m1"), member("m2")), pool("p2", member("m3"))))
			d := Decide(tp, m, now, rules)
			if d.Health != c.health {
				t.Errorf("health %v, want %v", d.Health, c.health)
			}
			if d.Abort != c.abort {
				t.Errorf("abort %v (%s), want %v", d.Abort, d.AbortedAt, c.abort)
			}
			if (d.Abort == AbortNone) != (d.AbortedAt == "") {
				t.Errorf("abort %v with AbortedAt %q", d.Abort, d.AbortedAt)
			}
			if got := orderedChanges(&d); !reflect.DeepEqual(got, c.want) {
				t.Errorf("changes\n got %s\nwant %s", strings.Join(got, ", "), strings.Join(c.want, ", "))
			}
		})
	}
}

// orderedChanges lists a decision's changes in a fixed order: listeners,
// then per database pool (p1, p2) its members and then the pool, then the
// load balancer. (Octavia interleaves a pre-V2 listener's pools with the
// listeners; that order does not change any row.)
func orderedChanges(d *Decision) []string {
	var out []string
	for _, c := range d.Listeners {
		out = append(out, "listener "+c.ID+" "+c.To)
	}
	memberPool := map[string]string{"m1": "p1", "m2": "p1", "m3": "p2"}
	for _, p := range []string{"p1", "p2"} {
		for _, c := range d.Members {
			if memberPool[c.ID] == p {
				out = append(out, "member "+c.ID+" "+c.To)
			}
		}
		for _, c := range d.Pools {
			if c.ID == p {
				out = append(out, "pool "+c.ID+" "+c.To)
			}
		}
	}
	if d.LoadBalancer != nil {
		out = append(out, "lb "+d.LoadBalancer.To)
	}
	return out
}

// A zombie's heartbeat reaches "listeners" only when the compute delete
// fails; then the same gate applies.
func TestDecideZombieOddListeners(t *testing.T) {
	zombie := &Topology{AmphoraID: "amp-1", AmphoraExists: true, ComputeID: "c-1"}
	for _, c := range []struct {
		text     string
		ifFails  HealthOutcome
		abort    AbortReason
		reported int
	}{
		{`{"id": "amp-1", "pools": {}, "ver": 2}`, HealthSkipAborted, AbortListenersMissing, 0},
		{`{"id": "amp-1", "listeners": 0, "ver": 2}`, HealthSkipAborted, AbortListenersNotObject, 0},
		{`{"id": "amp-1", "listeners": "", "ver": 2}`, HealthWrite, AbortNone, 0},
		{`{"id": "amp-1", "listeners": ["x"], "ver": 2}`, HealthSkipCountMismatch, AbortNone, 1},
	} {
		m, err := heartbeat.DecodeMessage([]byte(c.text))
		if err != nil {
			t.Fatal(err)
		}
		m.RecvTime = now
		d := Decide(zombie, m, now, rules)
		if d.Health != HealthSkipZombie || d.DeleteComputeID != "c-1" || d.HealthIfDeleteFails != c.ifFails ||
			d.Abort != c.abort || d.ReportedListeners != c.reported {
			t.Errorf("%s: got %+v", c.text, d)
		}
	}
}

// FuzzDecideDecodedText runs any text the decoder keeps through Decide
// against a fixed topology. Octavia's rules that hold whatever the shape:
// nothing after an abort (no load balancer status), nothing at all when
// the abort comes before amphora_health, and a well-formed message stops
// only where Octavia's agents themselves cause it (a pre-V2 listener
// without pools).
func FuzzDecideDecodedText(f *testing.F) {
	for _, s := range []string{
		`{"id": "amp-1", "listeners": {"l1": {"status": "OPEN"}, "l2": {"status": "FULL"}}, "pools": {"p1:l1": {"status": "UP", "members": {"m1": "UP", "m2": 5}}}, "ver": 3}`,
		`{"id": "amp-1", "listeners": ["l1", "l2"], "pools": {}, "ver": 2}`,
		`{"id": "amp-1", "listeners": {"l1": {}, "l2": {"status": "OPEN", "pools": {"p2": {"status": "DOWN", "members": "m3"}}}}, "ver": true}`,
		`{"id": "amp-1", "listeners": {"l1": {"status": "OPEN"}, "l2": null}, "ver": null}`,
		`{"id": 5, "listeners": {}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, text []byte) {
		m, err := heartbeat.DecodeMessage(text)
		if err != nil {
			return
		}
		m.RecvTime = now.Add(-1e9)
		tp := topo(withListeners(listener("l1"), listener("l2")),
			withPools(pool("p1", member("m1"), member("m2")), pool("p2", member("m3"))))
		if m.IDProblem == heartbeat.IDString && m.AmphoraID != "amp-1" {
			tp = &Topology{AmphoraID: m.AmphoraID}
		}
		d := Decide(tp, m, now, rules)
		if d.Abort != AbortNone && d.LoadBalancer != nil {
			t.Fatalf("load balancer written after an abort: %+v", d)
		}
		if d.Health == HealthSkipAborted && (hasChanges(d) || d.Abort == AbortNone) {
			t.Fatalf("aborted before amphora_health, yet: %+v", d)
		}
		if (d.Abort == AbortNone) != (d.AbortedAt == "") {
			t.Fatalf("abort %v at %q", d.Abort, d.AbortedAt)
		}
		if m.Irregularity == nil && d.Abort != AbortNone && d.Abort != AbortListenerPoolsMissing {
			t.Fatalf("a well-formed message aborted: %v (%s)", d.Abort, d.AbortedAt)
		}
		for _, c := range append(append(append([]StatusChange{}, d.Listeners...), d.Pools...), d.Members...) {
			if !slices.Contains([]string{StatusOnline, StatusDegraded, StatusError, StatusOffline, StatusDraining, StatusNoMonitor}, c.To) {
				t.Fatalf("change to %q", c.To)
			}
		}
	})
}
