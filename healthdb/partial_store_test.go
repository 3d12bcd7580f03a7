package healthdb

import (
	"context"
	"testing"

	"github.com/octavia-vpp/health/heartbeat"
)

// Heartbeats that Octavia applies only in part, through the updater into
// the real database: the rows are Octavia's (amphora_health written, the
// changes made before the point where its procedure raises, nothing after
// it), and the message is counted as partial with its reason.
func TestPartialHeartbeatsRows(t *testing.T) {
	const (
		stats = `"stats": {"tx": 1, "rx": 2, "conns": 3, "totconns": 4, "ereq": 5}`
		l1    = `"l-1": {"status": "OPEN", ` + stats + `}`
		l2    = `"l-2": {"status": "OPEN", ` + stats + `}`
		p2    = `"pool-2:l-2": {"status": "UP", "members": {"m-3": "UP"}}`
	)
	type rows map[string]string // "table id" -> operating_status
	unchanged := rows{"load_balancer lb-1": "OFFLINE", "listener l-1": "OFFLINE", "listener l-2": "OFFLINE",
		"pool pool-1": "OFFLINE", "pool pool-2": "OFFLINE", "member m-1": "OFFLINE", "member m-2": "OFFLINE", "member m-3": "OFFLINE"}
	with := func(changes rows) rows {
		out := rows{}
		for k, v := range unchanged {
			out[k] = v
		}
		for k, v := range changes {
			out[k] = v
		}
		return out
	}
	cases := []struct {
		name    string
		text    string
		health  HealthOutcome
		abort   AbortReason
		written bool // amphora_health
		want    rows
	}{
		{"member status not a string", `{"id": "amp-1", "listeners": {` + l1 + `, ` + l2 + `}, "pools": {"pool-1:l-1": {"status": "UP", "members": {"m-1": "UP", "m-2": 5}}, ` + p2 + `}, "ver": 3}`,
			HealthWrite, AbortMemberStatusNotString, true,
			with(rows{"listener l-1": "ONLINE", "listener l-2": "ONLINE", "member m-1": "ONLINE"})},
		{"version 2 without pools", `{"id": "amp-1", "listeners": {` + l1 + `, ` + l2 + `}, "ver": 2}`,
			HealthWrite, AbortPoolsMissing, true,
			with(rows{"listener l-1": "ONLINE", "listener l-2": "ONLINE"})},
		{"ver null", `{"id": "amp-1", "listeners": {` + l1 + `, ` + l2 + `}, "pools": {}, "ver": null}`,
			HealthWrite, AbortVersionNotComparable, true,
			with(rows{"listener l-1": "ONLINE"})},
		{"listener status missing is only skipped", `{"id": "amp-1", "listeners": {"l-1": {` + stats + `}, ` + l2 + `}, "pools": {"pool-1:l-1": {"status": "UP", "members": {"m-1": "UP", "m-2": "DOWN"}}, ` + p2 + `}, "ver": 3}`,
			HealthWrite, AbortNone, true,
			with(rows{"load_balancer lb-1": "DEGRADED", "listener l-2": "ONLINE", "pool pool-1": "DEGRADED", "pool pool-2": "ONLINE",
				"member m-1": "ONLINE", "member m-2": "ERROR", "member m-3": "ONLINE"})},
		{"no id writes nothing", `{"listeners": {` + l1 + `, ` + l2 + `}, "pools": {}, "ver": 3}`,
			HealthSkipAborted, AbortIDMissing, false, unchanged},
		{"no listeners writes nothing", `{"id": "amp-1", "pools": {}, "ver": 3}`,
			HealthSkipAborted, AbortListenersMissing, false, unchanged},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			db := openDB(t)
			f := &fixture{t: t, db: db}
			f.lb("lb-1", "ACTIVE", "OFFLINE", true)
			f.amphora("amp-1", "lb-1", "ALLOCATED", "c-1")
			f.pool("pool-1", "lb-1", "OFFLINE")
			f.pool("pool-2", "lb-1", "OFFLINE")
			f.member("m-1", "pool-1", "OFFLINE", true)
			f.member("m-2", "pool-1", "OFFLINE", true)
			f.member("m-3", "pool-2", "OFFLINE", true)
			f.listener("l-1", "lb-1", "HTTP", "OFFLINE", true, "pool-1")
			f.listener("l-2", "lb-1", "HTTP", "OFFLINE", true, "pool-2")

			m, err := heartbeat.DecodeMessage([]byte(c.text))
			if err != nil {
				t.Fatal(err)
			}
			m.RecvTime = now
			u := newTestUpdater(t, db, &recordingDeleter{}, now)
			res, err := u.ApplyBatch(context.Background(), []*heartbeat.Message{m})
			if err != nil {
				t.Fatal(err)
			}
			if res.Health[c.health] != 1 {
				t.Errorf("health outcomes %v, want one %v", res.Health, c.health)
			}
			wantAborted := 0
			if c.abort != AbortNone {
				wantAborted = 1
			}
			if res.Aborted != wantAborted || res.Partial[c.abort] != wantAborted {
				t.Errorf("aborted %d, partial %v; want %d of %v", res.Aborted, res.Partial, wantAborted, c.abort)
			}
			if _, _, ok := f.health("amp-1"); ok != c.written {
				t.Errorf("amphora_health written %v, want %v", ok, c.written)
			}
			got := rows{}
			for key := range c.want {
				var table, id string
				for i := range key {
					if key[i] == ' ' {
						table, id = key[:i], key[i+1:]
						break
					}
				}
				got[key], _ = f.statusOf(table, id)
			}
			for key, want := range c.want {
				if got[key] != want {
					t.Errorf("%s: %s, want %s", key, got[key], want)
				}
			}
		})
	}
}
