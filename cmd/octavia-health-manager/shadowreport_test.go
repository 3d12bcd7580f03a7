package main

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/octavia-vpp/health/healthdb/shadow"
)

func TestShadowReport(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "d.jsonl")
	l, err := shadow.OpenLog(file, shadow.MaxKept)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := l.Add(shadow.Disagreement{Kind: shadow.KindHealth, Entity: "amphora_health", ID: "amp-7",
			Ours: "refreshed", Octavia: "last_update did not advance"}); err != nil {
			t.Fatal(err)
		}
	}
	metrics := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, "octavia_hm_shadow_heartbeats_compared_total 9000\n"+
			`octavia_hm_shadow_disagreements_total{kind="health"} 3`+"\n")
	}))
	defer metrics.Close()
	conf := writeFile(t, filepath.Join(dir, "octavia.conf"), "[health_manager]\nshadow_disagreement_file = "+file+"\n")

	var out bytes.Buffer
	app := newApp()
	app.Writer = &out
	if err := app.Run([]string{"octavia-health-manager", "--config-file", conf, "shadow-report", "--metrics-url", metrics.URL}); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, want := range []string{"Heartbeats compared:", "9000", "health", "Disagreements kept:", "amp-7"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	t.Logf("\n%s", out.String())
}

// TestShadowReportNoDisagreement: a shadow that never disagreed has not
// created its file; the report says so and succeeds, as it is the report
// an operator wants to show.
func TestShadowReportNoDisagreement(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "d.jsonl")
	metrics := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, "octavia_hm_shadow_heartbeats_compared_total 9000\n")
	}))
	defer metrics.Close()
	conf := writeFile(t, filepath.Join(dir, "octavia.conf"), "[health_manager]\nshadow_disagreement_file = "+file+"\n")
	var out bytes.Buffer
	app := newApp()
	app.Writer = &out
	if err := app.Run([]string{"octavia-health-manager", "--config-file", conf, "shadow-report", "--metrics-url", metrics.URL}); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, want := range []string{"Disagreements since start:  0", "no disagreement recorded", "Disagreements kept:         0", "Top entities: none"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}
