package etc

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

const (
	rulesFile     = "../../etc/prometheus/octavia-health-alerts.yml"
	dashboardFile = "../../etc/grafana/octavia-health.json"
	troubleshoot  = "../../docs/troubleshooting.md"
	runbookPrefix = "https://github.com/octavia-vpp/health/blob/main/docs/troubleshooting.md#"
)

// exported reads the golden lists of the metric families both binaries
// export ("name type" per line), which their own tests keep equal to
// what they serve.
func exported(t *testing.T) map[string]string {
	t.Helper()
	types := map[string]string{
		// Written by Prometheus itself for every scrape target.
		"up": "gauge",
		// client_golang's process collector, which both binaries register.
		"process_start_time_seconds": "gauge",
	}
	for _, f := range []string{
		"../../cmd/octavia-health-manager/testdata/metric-names.golden",
		"../../cmd/amphora-agent/testdata/metric-names.golden",
	} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			name, typ, ok := strings.Cut(line, " ")
			if !ok {
				t.Fatalf("%s: bad line %q", f, line)
			}
			types[name] = typ
		}
	}
	return types
}

// rateFuncs read a counter's increase; a counter read any other way is
// meaningless (it resets on restart).
var rateFuncs = []string{"rate", "irate", "increase"}

// checkExpr checks every metric an expression reads: exported by a
// binary, counters (and histogram series) only through rate-like
// functions, ranges long enough for a 15 s to 1 min scrape interval.
func checkExpr(t *testing.T, where, expr string, types map[string]string) {
	t.Helper()
	refs, err := metricRefs(expr)
	if err != nil {
		t.Errorf("%s: %v", where, err)
		return
	}
	if len(refs) == 0 {
		t.Errorf("%s: %q reads no metric", where, expr)
	}
	for _, r := range refs {
		typ, ok := types[r.Name]
		if !ok {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if b, cut := strings.CutSuffix(r.Name, suffix); cut && types[b] == "histogram" {
					typ, ok = "counter", true
					if suffix == "_bucket" && !strings.Contains(expr, "histogram_quantile(") {
						t.Errorf("%s: %s outside histogram_quantile in %q", where, r.Name, expr)
					}
				}
			}
			if !ok {
				t.Errorf("%s: metric %s is not exported by either binary (expression %q)", where, r.Name, expr)
				continue
			}
		}
		if typ == "histogram" {
			t.Errorf("%s: histogram %s read without _bucket, _sum or _count in %q", where, r.Name, expr)
			continue
		}
		if typ == "counter" && !slices.Contains(rateFuncs, r.Func) {
			t.Errorf("%s: counter %s read outside rate()/increase() (in %q) in %q", where, r.Name, r.Func, expr)
		}
		if r.Range != "" && !strings.HasPrefix(r.Range, "$") {
			d, err := promDuration(r.Range)
			if err != nil {
				t.Errorf("%s: %v", where, err)
			} else if d < 2*time.Minute {
				t.Errorf("%s: range [%s] on %s is shorter than 2m: too few samples at a 1 min scrape interval", where, r.Range, r.Name)
			}
		}
	}
}

type rule struct {
	Alert       string            `yaml:"alert"`
	Record      string            `yaml:"record"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

type ruleFile struct {
	Groups []struct {
		Name     string `yaml:"name"`
		Interval string `yaml:"interval"`
		Rules    []rule `yaml:"rules"`
	} `yaml:"groups"`
}

// anchors returns the GitHub anchors of a Markdown file's headings.
func anchors(t *testing.T, path string) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	drop := regexp.MustCompile(`[^a-z0-9 _-]`)
	sc := bufio.NewScanner(bytes.NewReader(b))
	inFence := false
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "```") {
			inFence = !inFence
		}
		if inFence || !strings.HasPrefix(line, "#") {
			continue
		}
		title := strings.TrimSpace(strings.TrimLeft(line, "#"))
		out[strings.ReplaceAll(drop.ReplaceAllString(strings.ToLower(title), ""), " ", "-")] = true
	}
	return out
}

// The minimum set of alerts, by what they watch.
var requiredAlerts = map[string]string{
	"no heartbeats received at all": "OctaviaHMNoHeartbeats",
	"stale amphorae":                "OctaviaHMStaleAmphorae",
	"failover rate":                 "OctaviaHMFailoverRateHigh",
	"breaker tripped":               "OctaviaHMFailoverBreakerTripped",
	"drops":                         "OctaviaHMHeartbeatsDropped",
	"late":                          "OctaviaHMHeartbeatsLate",
	"stats backlog":                 "OctaviaHMStatsBacklog",
	"agent faulty":                  "AmphoraAgentFaulty",
}

func TestAlertRules(t *testing.T) {
	types := exported(t)
	raw, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	var rf ruleFile
	if err := dec.Decode(&rf); err != nil {
		t.Fatalf("%s: %v", rulesFile, err)
	}
	runbooks := anchors(t, troubleshoot)
	seen := map[string]bool{}
	for _, g := range rf.Groups {
		if g.Name == "" || len(g.Rules) == 0 {
			t.Errorf("group %q: no name or no rules", g.Name)
		}
		for _, r := range g.Rules {
			where := g.Name + "/" + r.Alert
			if r.Alert == "" {
				t.Errorf("%s: a rule without alert (recording rules are not expected here)", g.Name)
				continue
			}
			if seen[r.Alert] {
				t.Errorf("%s: alert defined twice", where)
			}
			seen[r.Alert] = true
			checkExpr(t, where, r.Expr, types)
			if _, err := promDuration(r.For); err != nil {
				t.Errorf("%s: for: %q: %v", where, r.For, err)
			}
			if s := r.Labels["severity"]; s != "critical" && s != "warning" {
				t.Errorf("%s: severity %q, want critical or warning", where, s)
			}
			for _, a := range []string{"summary", "description", "runbook_url"} {
				if r.Annotations[a] == "" {
					t.Errorf("%s: no %s annotation", where, a)
				}
			}
			anchor, ok := strings.CutPrefix(r.Annotations["runbook_url"], runbookPrefix)
			if !ok || anchor != strings.ToLower(r.Alert) {
				t.Errorf("%s: runbook_url %q, want %s%s", where, r.Annotations["runbook_url"], runbookPrefix, strings.ToLower(r.Alert))
			} else if !runbooks[anchor] {
				t.Errorf("%s: docs/troubleshooting.md has no section %q (a heading \"## %s\")", where, anchor, r.Alert)
			}
		}
	}
	for what, name := range requiredAlerts {
		if !seen[name] {
			t.Errorf("no alert %s (%s)", name, what)
		}
	}
}

func TestDashboard(t *testing.T) {
	types := exported(t)
	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var dash map[string]any
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	exprs := 0
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			title, _ := v["title"].(string)
			for k, child := range v {
				if k == "expr" {
					expr, ok := child.(string)
					if !ok {
						t.Errorf("%s: expr is not a string", path)
						continue
					}
					exprs++
					checkExpr(t, path+" "+title, expr, types)
					continue
				}
				walk(path+"/"+k, child)
			}
		case []any:
			for _, child := range v {
				walk(path, child)
			}
		}
	}
	walk("", dash["panels"])
	if exprs < 20 {
		t.Errorf("only %d expressions in the dashboard", exprs)
	}
	// Template variables: label_values(metric, label).
	labelValues := regexp.MustCompile(`^label_values\(([a-zA-Z_:][a-zA-Z0-9_:]*),\s*[a-zA-Z_][a-zA-Z0-9_]*\)$`)
	templating, _ := dash["templating"].(map[string]any)
	list, _ := templating["list"].([]any)
	for _, v := range list {
		tv, _ := v.(map[string]any)
		def, _ := tv["definition"].(string)
		if tv["type"] != "query" {
			continue
		}
		m := labelValues.FindStringSubmatch(def)
		if m == nil {
			t.Errorf("template variable %v: definition %q is not label_values(metric, label)", tv["name"], def)
			continue
		}
		if _, ok := types[m[1]]; !ok {
			t.Errorf("template variable %v: metric %s is not exported", tv["name"], m[1])
		}
	}
}

// unit is a systemd unit file: section -> key -> values in order.
type unit map[string]map[string][]string

func readUnit(t *testing.T, path string) unit {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	u := unit{}
	section := ""
	for n, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: not a key=value line in a section: %q", path, n+1, line)
			}
			u[section][strings.TrimSpace(k)] = append(u[section][strings.TrimSpace(k)], strings.TrimSpace(v))
		}
	}
	return u
}

func TestSystemdUnits(t *testing.T) {
	tests := []struct {
		file string
		want map[string]string // Service key -> a value it must have
	}{
		{"../../etc/systemd/octavia-health-manager.service", map[string]string{
			"Type":            "notify",
			"NotifyAccess":    "main",
			"ExecReload":      "/bin/kill -HUP $MAINPID",
			"User":            "octavia",
			"NoNewPrivileges": "yes",
			"ProtectSystem":   "strict",
			"Restart":         "on-failure",
		}},
		{"../../etc/systemd/amphora-agent.service", map[string]string{
			"Type":            "notify",
			"NotifyAccess":    "main",
			"ExecReload":      "/bin/kill -HUP $MAINPID",
			"NoNewPrivileges": "yes",
			"ProtectSystem":   "strict",
		}},
	}
	for _, tt := range tests {
		u := readUnit(t, tt.file)
		for _, section := range []string{"Unit", "Service", "Install"} {
			if u[section] == nil {
				t.Errorf("%s: no [%s] section", tt.file, section)
			}
		}
		svc := u["Service"]
		for k, v := range tt.want {
			if !slices.Contains(svc[k], v) {
				t.Errorf("%s: [Service] %s = %q, want %q among them", tt.file, k, svc[k], v)
			}
		}
		if start := svc["ExecStart"]; len(start) != 1 || !strings.Contains(start[0], "--config-file /etc/octavia/") {
			t.Errorf("%s: ExecStart %q does not pass --config-file", tt.file, start)
		}
	}
	hm := readUnit(t, "../../etc/systemd/octavia-health-manager.service")["Service"]
	if wd := hm["WatchdogSec"]; len(wd) != 1 {
		t.Errorf("octavia-health-manager.service: WatchdogSec %q, want one value", wd)
	} else if d, err := time.ParseDuration(strings.TrimSuffix(wd[0], "s") + "s"); err != nil || d < 30*time.Second {
		// A batch may legitimately take as long as a database statement;
		// the watchdog must not restart a manager that is only slow.
		t.Errorf("octavia-health-manager.service: WatchdogSec %q, want at least 30 seconds", wd[0])
	}
	agent := readUnit(t, "../../etc/systemd/amphora-agent.service")["Service"]
	if wd := agent["WatchdogSec"]; len(wd) != 1 {
		t.Errorf("amphora-agent.service: WatchdogSec %q, want one value", wd)
	} else if d, err := time.ParseDuration(strings.TrimSuffix(wd[0], "s") + "s"); err != nil || d < 30*time.Second {
		// The agent pings every WatchdogSec/2, and only while healthy; its
		// own verdict needs 3 x heartbeat_interval (30 s by default).
		t.Errorf("amphora-agent.service: WatchdogSec %q, want at least 30 seconds", wd[0])
	}
}
