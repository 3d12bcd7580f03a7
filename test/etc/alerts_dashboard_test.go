package etc

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"slices"
	"testing"

	"gopkg.in/yaml.v3"
)

const ruleTestsFile = "../../etc/prometheus/octavia-health-alerts.test.yml"

// ruleTests is the part of a promtool rule test file read here.
type ruleTests struct {
	RuleFiles []string `yaml:"rule_files"`
	Tests     []struct {
		AlertRuleTest []struct {
			Alertname string           `yaml:"alertname"`
			ExpAlerts []map[string]any `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

// Every alert has a test case where it fires and one where it does not,
// and promtool (Debian: package prometheus, which test/install-deps.sh
// installs) passes them all.
func TestAlertRuleUnitTests(t *testing.T) {
	raw, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	if err := yaml.Unmarshal(raw, &rf); err != nil {
		t.Fatal(err)
	}
	raw, err = os.ReadFile(ruleTestsFile)
	if err != nil {
		t.Fatal(err)
	}
	var rt ruleTests
	if err := yaml.Unmarshal(raw, &rt); err != nil {
		t.Fatalf("%s: %v", ruleTestsFile, err)
	}
	if !slices.Equal(rt.RuleFiles, []string{"octavia-health-alerts.yml"}) {
		t.Errorf("%s: rule_files %q, want the alert file beside it", ruleTestsFile, rt.RuleFiles)
	}
	fires, silent := map[string]bool{}, map[string]bool{}
	for _, tc := range rt.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			} else {
				silent[a.Alertname] = true
			}
		}
	}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if !fires[r.Alert] {
				t.Errorf("%s: no test case where %s fires", ruleTestsFile, r.Alert)
			}
			if !silent[r.Alert] {
				t.Errorf("%s: no test case where %s stays silent", ruleTestsFile, r.Alert)
			}
		}
	}

	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool not found: run test/install-deps.sh (Debian package prometheus)")
	}
	out, err := exec.Command(promtool, "test", "rules", ruleTestsFile).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
}

// The dashboard goes through Grafana's import flow: the data source is
// the declared input (every query uses ${DS_PROMETHEUS}, which the import
// dialog replaces), and __requires names Grafana, the Prometheus data
// source and every panel type used.
func TestDashboardImportable(t *testing.T) {
	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Inputs []struct {
			Name, Type, PluginID string
		} `json:"__inputs"`
		Requires []struct {
			Type, ID, Name, Version string
		} `json:"__requires"`
		ID         any `json:"id"`
		Templating struct {
			List []map[string]any `json:"list"`
		} `json:"templating"`
		Panels []map[string]any `json:"panels"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&dash); err != nil {
		t.Fatal(err)
	}
	if len(dash.Inputs) != 1 || dash.Inputs[0].Type != "datasource" || dash.Inputs[0].PluginID != "prometheus" {
		t.Fatalf("__inputs %+v, want one Prometheus data source", dash.Inputs)
	}
	if dash.ID != nil {
		t.Errorf("id %v: an importable dashboard has none (Grafana assigns it)", dash.ID)
	}
	want := "${" + dash.Inputs[0].Name + "}"
	checkDS := func(where string, v any) {
		t.Helper()
		ds, ok := v.(map[string]any)
		if !ok || ds["type"] != "prometheus" || ds["uid"] != want {
			t.Errorf("%s: datasource %v, want {type: prometheus, uid: %s}", where, v, want)
		}
	}
	used := map[string]bool{}
	panels := 0
	var walk func([]map[string]any)
	walk = func(list []map[string]any) {
		for _, p := range list {
			typ, _ := p["type"].(string)
			title, _ := p["title"].(string)
			if nested, ok := p["panels"].([]any); ok {
				var children []map[string]any
				for _, c := range nested {
					if m, ok := c.(map[string]any); ok {
						children = append(children, m)
					}
				}
				walk(children)
			}
			if typ == "row" {
				continue
			}
			panels++
			used[typ] = true
			checkDS("panel "+title, p["datasource"])
			targets, _ := p["targets"].([]any)
			if len(targets) == 0 {
				t.Errorf("panel %s: no query", title)
			}
			for _, tg := range targets {
				if m, ok := tg.(map[string]any); ok {
					if ds, ok := m["datasource"]; ok {
						checkDS("panel "+title+" target", ds)
					}
				}
			}
		}
	}
	walk(dash.Panels)
	if panels == 0 {
		t.Fatal("no panels")
	}
	for _, v := range dash.Templating.List {
		if v["type"] == "query" {
			checkDS("template variable "+v["name"].(string), v["datasource"])
		}
	}

	requires := map[string]bool{}
	for _, r := range dash.Requires {
		if r.Name == "" {
			t.Errorf("__requires %+v has no name", r)
		}
		requires[r.Type+"/"+r.ID] = true
	}
	for _, need := range []string{"grafana/grafana", "datasource/prometheus"} {
		if !requires[need] {
			t.Errorf("__requires lacks %s", need)
		}
	}
	for typ := range used {
		if !requires["panel/"+typ] {
			t.Errorf("__requires lacks panel %s, which the dashboard uses", typ)
		}
	}
	for _, r := range dash.Requires {
		if r.Type == "panel" && !used[r.ID] {
			t.Errorf("__requires lists panel %s, which the dashboard does not use", r.ID)
		}
	}
}
