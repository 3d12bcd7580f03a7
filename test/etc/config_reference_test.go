package etc

import (
	"fmt"
	"net/netip"
	"os"
	"reflect"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	agent "github.com/octavia-vpp/health/amphora-agent"
	"github.com/octavia-vpp/health/internal/octaviaconf"
)

const configReference = "../../docs/config-reference.md"

// aliases are options read without a field of their own (deprecated
// names of another option); the reference lists them with free text.
var aliases = map[string]bool{
	"[health_manager] stats_update_driver": true,
}

// option is one row of docs/config-reference.md, or what the code says
// that row must be.
type option struct {
	Section, Name, Type, Default, Octavia string
}

func (o option) key() string { return "[" + o.Section + "] " + o.Name }

func (o option) row() string {
	return fmt.Sprintf("| `[%s]` | `%s` | %s | %s | %s |", o.Section, o.Name, o.Type, o.Default, o.Octavia)
}

// goTypes are the Go field types each documented type may have.
var goTypes = map[string][]string{
	"boolean":      {"bool"},
	"integer":      {"int", "uint32"},
	"port":         {"int"},
	"seconds":      {"time.Duration"},
	"milliseconds": {"time.Duration"},
	"string":       {"string", "vpp.Encap"},
	"URL":          {"string"},
	"path":         {"string"},
	"host:port":    {"string"},
	"list":         {"[]string"},
	"IP address":   {"netip.Addr"},
}

// tagged walks a configuration struct holding the defaults and returns
// the option each `conf` tag names, with the default rendered as the
// reference writes it.
func tagged(t *testing.T, v reflect.Value) []option {
	t.Helper()
	var out []option
	for i := 0; i < v.NumField(); i++ {
		f := v.Type().Field(i)
		tag, ok := f.Tag.Lookup("conf")
		if !ok {
			if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeFor[time.Time]() {
				out = append(out, tagged(t, v.Field(i))...)
			}
			continue
		}
		parts := strings.Split(tag, ",")
		if len(parts) < 3 {
			t.Errorf("field %s: conf tag %q, want \"section option,type,octavia[,flags]\"", f.Name, tag)
			continue
		}
		section, name, _ := strings.Cut(parts[0], " ")
		o := option{Section: section, Name: name, Type: parts[1], Octavia: parts[2]}
		flags := parts[3:]
		if !slices.Contains(goTypes[o.Type], f.Type.String()) {
			t.Errorf("%s: documented type %q does not fit the Go type %s", o.key(), o.Type, f.Type)
		}
		o.Default = renderDefault(v.Field(i), flags)
		out = append(out, o)
	}
	return out
}

func renderDefault(v reflect.Value, flags []string) string {
	switch {
	case slices.Contains(flags, "computed"):
		return "" // worked out at load time; any description will do
	case slices.Contains(flags, "nodefault"):
		if !v.IsZero() {
			return fmt.Sprintf("(nodefault, but %v)", v.Interface())
		}
		return "none"
	case slices.Contains(flags, "cpus"):
		if v.Int() != int64(runtime.NumCPU()) {
			return fmt.Sprintf("(cpus, but %d)", v.Int())
		}
		return "CPU count"
	}
	var s string
	switch x := v.Interface().(type) {
	case time.Duration:
		if slices.Contains(flags, "ms") {
			s = strconv.FormatInt(x.Milliseconds(), 10)
		} else {
			s = strconv.FormatFloat(x.Seconds(), 'f', -1, 64)
		}
	case []string:
		s = strings.Join(x, ", ")
	case netip.Addr:
		if x.IsValid() {
			s = x.String()
		}
	case fmt.Stringer:
		s = x.String()
	default:
		s = fmt.Sprint(x)
	}
	if s == "" {
		return "empty"
	}
	return "`" + s + "`"
}

// readOptions returns the "section option" pairs a loader's source reads,
// found by pattern: the octavia.conf loader calls r.<kind>("section",
// "option", ...), the agent's looks up "section.option" keys.
func readOptions(t *testing.T, paths []string, pattern *regexp.Regexp) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, path := range paths {
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range pattern.FindAllStringSubmatch(string(src), -1) {
			out["["+m[1]+"] "+m[2]] = true
		}
	}
	if len(out) == 0 {
		t.Fatalf("%v: no option found by %s", paths, pattern)
	}
	return out
}

// documented reads the option rows of each "## " part of the reference.
func documented(t *testing.T) map[string]map[string]option {
	t.Helper()
	b, err := os.ReadFile(configReference)
	if err != nil {
		t.Fatal(err)
	}
	parts := map[string]map[string]option{}
	part := ""
	for n, line := range strings.Split(string(b), "\n") {
		if h, ok := strings.CutPrefix(line, "## "); ok {
			part = h
			parts[part] = map[string]option{}
			continue
		}
		if !strings.HasPrefix(line, "| `[") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if len(cells) < 5 {
			t.Errorf("%s:%d: want | section | option | type | default | Octavia | notes |: %q", configReference, n+1, line)
			continue
		}
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		o := option{
			Section: strings.Trim(cells[0], "`[]"), Name: strings.Trim(cells[1], "`"),
			Type: cells[2], Default: cells[3], Octavia: cells[4],
		}
		if parts[part] == nil {
			t.Errorf("%s:%d: option row before any \"## \" heading", configReference, n+1)
			continue
		}
		if _, dup := parts[part][o.key()]; dup {
			t.Errorf("%s:%d: %s listed twice under %q", configReference, n+1, o.key(), part)
		}
		parts[part][o.key()] = o
	}
	return parts
}

func TestConfigReference(t *testing.T) {
	docs := documented(t)
	programs := []struct {
		part     string // the heading of the reference's table
		defaults reflect.Value
		loader   []string
		reads    *regexp.Regexp
	}{
		{"octavia.conf (octavia-health-manager)", reflect.ValueOf(*octaviaconf.Defaults()),
			[]string{"../../internal/octaviaconf/config.go", "../../internal/octaviaconf/values.go"}, regexp.MustCompile(`r\.\w+\("(\w+)", "(\w+)"`)},
		{"amphora-agent.conf (amphora-agent)", reflect.ValueOf(agent.DefaultConfig()),
			[]string{"../../amphora-agent/config.go"}, regexp.MustCompile(`"([a-z_]+|DEFAULT)\.([a-z0-9_]+)"`)},
	}
	for _, p := range programs {
		rows, ok := docs[p.part]
		if !ok {
			t.Errorf("%s: no \"## %s\" table", configReference, p.part)
			continue
		}
		want := tagged(t, p.defaults)
		read := readOptions(t, p.loader, p.reads)
		inCode := map[string]bool{}
		for _, o := range want {
			inCode[o.key()] = true
			if !read[o.key()] {
				t.Errorf("%s: %s has a conf tag but %s never reads it", p.part, o.key(), strings.Join(p.loader, ", "))
			}
			got, ok := rows[o.key()]
			if !ok {
				t.Errorf("%s: %s is missing from %s; add the row\n\t%s notes |", p.part, o.key(), configReference, o.row())
				continue
			}
			if o.Default == "" && got.Default != "" { // computed at load time
				o.Default = got.Default
			}
			if got != o {
				t.Errorf("%s: %s row is wrong:\n\tgot  %s\n\twant %s", p.part, o.key(), got.row(), o.row())
			}
		}
		var untagged []string
		for k := range read {
			if inCode[k] {
				continue
			}
			untagged = append(untagged, k)
			if !aliases[k] {
				t.Errorf("%s: the loader reads %s, but no field has a conf tag for it: tag its field "+
					"`conf:\"%s,<type>,<same|ours|changed>\"` and add its row to %s",
					p.part, k, strings.Replace(strings.TrimPrefix(k, "["), "] ", " ", 1), configReference)
				continue
			}
			if _, ok := rows[k]; !ok {
				t.Errorf("%s: the loader reads %s, which %s does not list", p.part, k, configReference)
			}
		}
		sort.Strings(untagged)
		for k, o := range rows {
			if !read[k] {
				t.Errorf("%s: %s lists %s, which the loader does not read:\n\t%s", p.part, configReference, k, o.row())
			}
			if !slices.Contains([]string{"same", "ours", "changed"}, o.Octavia) {
				t.Errorf("%s: %s: Octavia status %q, want same, ours or changed", p.part, k, o.Octavia)
			}
		}
		t.Logf("%s: %d options with a field, read without one: %v", p.part, len(want), untagged)
	}
}

// TestIgnoredOptionsListed: the reference's "Accepted, ignored" list is
// octaviaconf.IgnoredOptions, and the loader reads none of them.
func TestIgnoredOptionsListed(t *testing.T) {
	b, err := os.ReadFile(configReference)
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(b), "\nAccepted, ignored:")
	if !ok {
		t.Fatalf("%s has no \"Accepted, ignored:\" paragraph", configReference)
	}
	after, _, _ = strings.Cut(after, "\n## ")
	var listed []string
	for _, m := range regexp.MustCompile("(?m)^- `\\[(\\w+)\\] (\\w+)`").FindAllStringSubmatch(after, -1) {
		listed = append(listed, m[1]+" "+m[2])
	}
	want := slices.Clone(octaviaconf.IgnoredOptions)
	slices.Sort(listed)
	slices.Sort(want)
	if !slices.Equal(listed, want) {
		t.Errorf("%s lists %q as accepted and ignored; octaviaconf.IgnoredOptions is %q", configReference, listed, want)
	}
	read := readOptions(t, []string{"../../internal/octaviaconf/config.go", "../../internal/octaviaconf/values.go"},
		regexp.MustCompile(`r\.\w+\("(\w+)", "(\w+)"`))
	for _, o := range want {
		section, name, _ := strings.Cut(o, " ")
		if read["["+section+"] "+name] {
			t.Errorf("[%s] %s is listed as ignored but the loader reads it", section, name)
		}
	}
}
