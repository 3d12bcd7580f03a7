package statuspage

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/octavia-vpp/health/healthdb/shadow"
)

type fakeShadow struct{ kept []shadow.Disagreement }

func (f fakeShadow) Recent() []shadow.Disagreement { return f.kept }
func (f fakeShadow) Counts() map[shadow.Kind]int {
	out := map[shadow.Kind]int{}
	for _, d := range f.kept {
		out[d.Kind]++
	}
	return out
}

func TestShadowSection(t *testing.T) {
	p := New(Config{HeartbeatTimeout: time.Minute, Logger: quiet})
	rec := httptest.NewRecorder()
	p.serveHTML(rec, httptest.NewRequest("GET", "/", nil))
	if strings.Contains(rec.Body.String(), `id="shadow"`) {
		t.Error("a shadow section outside shadow mode")
	}

	p = New(Config{HeartbeatTimeout: time.Minute, Logger: quiet, CacheFor: time.Nanosecond})
	p.SetShadow(fakeShadow{kept: []shadow.Disagreement{
		{Time: t0, Kind: shadow.KindStatus, Entity: "member", ID: "m-older", Ours: "DRAINING", Octavia: "ONLINE", Message: "older"},
		{Time: t0, Kind: shadow.KindFailover, Entity: "amphora", ID: "amp-9", Ours: "fail over", Octavia: "not failed over 1m3s later",
			Message: "last heartbeat: heartbeat of amphora amp-9 seq 7"},
	}})
	rec = httptest.NewRecorder()
	p.serveHTML(rec, httptest.NewRequest("GET", "/", nil))
	body := rec.Body.String()
	for _, want := range []string{`id="shadow"`, "failover: <b>1</b>", "status: <b>1</b>", "not failed over 1m3s later",
		"heartbeat of amphora amp-9 seq 7"} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if strings.Index(body, "amp-9") > strings.Index(body, "m-older") {
		t.Error("the newest disagreement is not first")
	}
	rec = httptest.NewRecorder()
	p.serveJSON(rec, httptest.NewRequest("GET", "/status.json", nil))
	var s struct {
		Shadow *ShadowView `json:"shadow"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &s); err != nil || rec.Code != http.StatusOK || s.Shadow == nil || len(s.Shadow.Recent) != 2 {
		t.Errorf("status.json shadow: %v %+v", err, s.Shadow)
	}
}
