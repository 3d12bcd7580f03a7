package healthdb

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"github.com/octavia-vpp/health/heartbeat"
)

func TestBatchResultListsCommittedTransitions(t *testing.T) {
	db := openDB(t)
	f := &fixture{t: t, db: db}
	f.lb("lb-1", "ACTIVE", "ONLINE", true)
	f.amphora("amp-1", "lb-1", "ALLOCATED", "c-1")
	f.pool("pool-1", "lb-1", "ONLINE")
	f.member("m-same", "pool-1", "ONLINE", true)
	f.member("m-down", "pool-1", "ONLINE", true)
	f.listener("l-1", "lb-1", "HTTP", "ONLINE", true, "pool-1")

	u := newTestUpdater(t, db, &recordingDeleter{}, now)
	msg := hb("amp-1", []heartbeat.Listener{{ID: "l-1", Status: "OPEN"}},
		heartbeat.Pool{Key: "pool-1:l-1", Status: "UP", Members: []heartbeat.Member{{ID: "m-same", Status: "UP"}, {ID: "m-down", Status: "DOWN"}}})
	res, err := u.ApplyBatch(context.Background(), []*heartbeat.Message{msg})
	if err != nil {
		t.Fatal(err)
	}
	want := []Transition{
		{Entity: "load_balancer", ID: "lb-1", From: "ONLINE", To: "DEGRADED"},
		{Entity: "pool", ID: "pool-1", From: "ONLINE", To: "DEGRADED"},
		{Entity: "member", ID: "m-down", From: "ONLINE", To: "ERROR"},
	}
	if !reflect.DeepEqual(res.Transitions, want) {
		t.Errorf("transitions %+v, want %+v", res.Transitions, want)
	}

	// The same heartbeat again changes nothing.
	res, err = u.ApplyBatch(context.Background(), []*heartbeat.Message{msg})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Transitions) != 0 {
		t.Errorf("repeated heartbeat: transitions %+v, want none", res.Transitions)
	}
}

func TestTransitionsAreBounded(t *testing.T) {
	s := newBatchState()
	s.lbs["lb"] = &tracked{original: "ONLINE", current: "ERROR"}
	for i := range 10 {
		s.members[fmt.Sprintf("m-%02d", i)] = &tracked{original: "ONLINE", current: "ERROR"}
	}
	s.members["m-unchanged"] = &tracked{original: "ONLINE", current: "online"}
	for _, c := range []struct {
		limit     int
		wantLen   int
		wantFirst string
		wantLast  string
	}{
		{limit: 100, wantLen: 11, wantFirst: "lb", wantLast: "m-09"},
		{limit: 4, wantLen: 4, wantFirst: "lb", wantLast: "m-02"},
		{limit: 1, wantLen: 1, wantFirst: "lb", wantLast: "lb"},
	} {
		got := s.transitions(c.limit)
		if len(got) != c.wantLen || got[0].ID != c.wantFirst || got[len(got)-1].ID != c.wantLast {
			t.Errorf("limit %d: %+v", c.limit, got)
		}
	}
}
