package shadow

import (
	"bytes"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

func TestReportFromMetricsAndFile(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	m.Compared.Add(1234)
	m.Disagreements.WithLabelValues(string(KindStatus)).Add(3)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	for _, f := range families {
		if _, err := expfmt.MetricFamilyToText(&body, f); err != nil {
			t.Fatal(err)
		}
	}
	r := &Report{File: "d.jsonl", Kept: []Disagreement{
		{Time: t0, Kind: KindStatus, Entity: "member", ID: "m-1", Ours: "DRAINING", Octavia: "ONLINE"},
		{Time: t0, Kind: KindStatus, Entity: "member", ID: "m-1", Ours: "DRAINING", Octavia: "ONLINE"},
		{Time: t0, Kind: KindStatus, Entity: "member", ID: "m-2", Ours: "ERROR", Octavia: "ONLINE"},
	}}
	if err := r.ParseMetrics("http://x/metrics", &body); err != nil {
		t.Fatal(err)
	}
	if r.Compared != 1234 || r.ByKind[KindStatus] != 3 || r.ByKind[KindHealth] != 0 {
		t.Errorf("parsed %+v", r)
	}
	top := r.TopEntities(10)
	if len(top) != 2 || top[0].ID != "m-1" || top[0].Count != 2 {
		t.Errorf("top %+v", top)
	}
	var out bytes.Buffer
	r.Print(&out)
	for _, want := range []string{"Heartbeats compared:", "1234", "status", "Disagreements kept:", "m-1", "DRAINING / ONLINE"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

func TestReportWithoutShadowMetrics(t *testing.T) {
	r := &Report{}
	if err := r.ParseMetrics("u", strings.NewReader("octavia_hm_build_info 1\n")); err == nil {
		t.Error("a body without shadow metrics was accepted")
	}
}
