// Package etc checks the operator files in etc/: the Prometheus alert
// rules and the Grafana dashboard against the metrics the binaries
// export, and the systemd units against what the programs support.
package etc

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// metricRef is one metric name a PromQL expression reads.
type metricRef struct {
	Name string
	// Func is the innermost function the name is an argument of, ignoring
	// aggregation operators ("" at the top level).
	Func string
	// Range is the range selector after the name ("5m",
	// "$__rate_interval"), "" for an instant vector.
	Range string
}

// keywords are PromQL words that are not metric names: aggregation
// operators, binary operators, modifiers and literals.
var keywords = map[string]bool{
	"sum": true, "min": true, "max": true, "avg": true, "count": true, "stddev": true, "stdvar": true,
	"topk": true, "bottomk": true, "quantile": true, "count_values": true, "group": true, "limitk": true,
	"limit_ratio": true,
	"by":          true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
	"and": true, "or": true, "unless": true, "bool": true, "offset": true, "atan2": true,
	"inf": true, "nan": true,
}

// labelLists are the keywords whose parenthesised argument is a list of
// label names.
var labelLists = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
}

// metricRefs lists the metric names an expression reads. It is a small
// tokenizer, not a parser: strings, label matchers ({...}) and durations
// are skipped, identifiers followed by "(" are functions, and identifiers
// inside by(...), without(...), on(...) and the like are label names.
// Grafana variables ($name, ${name}) are skipped.
func metricRefs(expr string) ([]metricRef, error) {
	var refs []metricRef
	var stack []string // function or keyword owning each open "("
	i := 0
	skipString := func(quote byte) error {
		for i++; i < len(expr); i++ {
			switch expr[i] {
			case '\\':
				i++
			case quote:
				i++
				return nil
			}
		}
		return fmt.Errorf("unterminated string in %q", expr)
	}
	isIdentStart := func(c byte) bool { return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
	isIdent := func(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' }
	skipSpace := func() {
		for i < len(expr) && (expr[i] == ' ' || expr[i] == '\t' || expr[i] == '\n') {
			i++
		}
	}
	inLabelList := func() bool { return len(stack) > 0 && labelLists[stack[len(stack)-1]] }
	enclosingFunc := func() string {
		for j := len(stack) - 1; j >= 0; j-- {
			if s := stack[j]; s != "" && !keywords[s] {
				return s
			}
		}
		return ""
	}
	for i < len(expr) {
		c := expr[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			if err := skipString(c); err != nil {
				return nil, err
			}
		case c == '{':
			end, err := matchersEnd(expr, i)
			if err != nil {
				return nil, err
			}
			i = end
		case c == '[':
			end := strings.IndexByte(expr[i:], ']')
			if end < 0 {
				return nil, fmt.Errorf("unterminated [ in %q", expr)
			}
			i += end + 1
		case c == '(':
			stack = append(stack, "")
			i++
		case c == ')':
			if len(stack) == 0 {
				return nil, fmt.Errorf("unbalanced ) in %q", expr)
			}
			stack = stack[:len(stack)-1]
			i++
		case c == '$':
			// A Grafana variable: $name or ${name}.
			i++
			if i < len(expr) && expr[i] == '{' {
				end := strings.IndexByte(expr[i:], '}')
				if end < 0 {
					return nil, fmt.Errorf("unterminated ${ in %q", expr)
				}
				i += end + 1
				continue
			}
			for i < len(expr) && isIdent(expr[i]) {
				i++
			}
		case c >= '0' && c <= '9' || c == '.':
			// A number or a duration (offset 5m).
			for i < len(expr) && (isIdent(expr[i]) || expr[i] == '.') {
				i++
			}
		case isIdentStart(c):
			start := i
			for i < len(expr) && isIdent(expr[i]) {
				i++
			}
			name := expr[start:i]
			skipSpace()
			if i < len(expr) && expr[i] == '(' {
				stack = append(stack, name)
				i++
				continue
			}
			if keywords[name] || inLabelList() {
				continue
			}
			ref := metricRef{Name: name, Func: enclosingFunc()}
			// The range, if any, follows the matchers, which the next
			// iteration skips.
			k := i
			if k < len(expr) && expr[k] == '{' {
				end, err := matchersEnd(expr, k)
				if err != nil {
					return nil, err
				}
				k = end
			}
			for k < len(expr) && expr[k] == ' ' {
				k++
			}
			if k < len(expr) && expr[k] == '[' {
				if end := strings.IndexByte(expr[k:], ']'); end > 0 {
					ref.Range = expr[k+1 : k+end]
				}
			}
			refs = append(refs, ref)
		default:
			i++
		}
	}
	if len(stack) != 0 {
		return nil, fmt.Errorf("unbalanced ( in %q", expr)
	}
	return refs, nil
}

// matchersEnd returns the index just after the label matchers that start
// at expr[i] == '{', skipping quoted strings.
func matchersEnd(expr string, i int) (int, error) {
	for i++; i < len(expr); i++ {
		switch q := expr[i]; q {
		case '}':
			return i + 1, nil
		case '"', '\'', '`':
			for i++; i < len(expr) && expr[i] != q; i++ {
				if expr[i] == '\\' {
					i++
				}
			}
		}
	}
	return 0, fmt.Errorf("unterminated { in %q", expr)
}

// promDuration parses a PromQL duration such as 5m or 1h30m.
func promDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, fmt.Errorf("empty duration")
	}
	var total time.Duration
	for s != "" {
		j := 0
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		if j == 0 {
			return 0, fmt.Errorf("bad duration %q", s)
		}
		n, err := strconv.Atoi(s[:j])
		if err != nil {
			return 0, err
		}
		s = s[j:]
		units := []struct {
			name string
			d    time.Duration
		}{{"ms", time.Millisecond}, {"s", time.Second}, {"m", time.Minute}, {"h", time.Hour}, {"d", 24 * time.Hour}, {"w", 7 * 24 * time.Hour}, {"y", 365 * 24 * time.Hour}}
		matched := false
		for _, u := range units {
			if strings.HasPrefix(s, u.name) {
				total += time.Duration(n) * u.d
				s = s[len(u.name):]
				matched = true
				break
			}
		}
		if !matched {
			return 0, fmt.Errorf("bad duration unit in %q", s)
		}
	}
	return total, nil
}

func TestMetricRefs(t *testing.T) {
	tests := []struct {
		expr string
		want []metricRef
	}{
		{`up{job="x"} == 0`, []metricRef{{Name: "up"}}},
		{`sum by (instance, reason) (rate(a_total{reason=~"b|c", x='}'}[5m])) > 0.05`,
			[]metricRef{{Name: "a_total", Func: "rate", Range: "5m"}}},
		{`histogram_quantile(0.99, sum by (le) (rate(h_bucket{instance=~"$instance"}[$__rate_interval])))`,
			[]metricRef{{Name: "h_bucket", Func: "rate", Range: "$__rate_interval"}}},
		{`time() - max by (instance) (g offset 5m) and on (instance) c_total`,
			[]metricRef{{Name: "g", Func: ""}, {Name: "c_total"}}},
		{`count(x == 0) or vector(0)`, []metricRef{{Name: "x"}}},
		{`sum(rate(s_sum[10m])) / sum(rate(s_count[10m]))`,
			[]metricRef{{Name: "s_sum", Func: "rate", Range: "10m"}, {Name: "s_count", Func: "rate", Range: "10m"}}},
	}
	for _, tt := range tests {
		got, err := metricRefs(tt.expr)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("metricRefs(%q) = %+v, %v; want %+v", tt.expr, got, err, tt.want)
		}
	}
	for _, bad := range []string{`rate(x[5m]`, `x{a="b"`, `sum(x))`, `x{a="b}`} {
		if _, err := metricRefs(bad); err == nil {
			t.Errorf("metricRefs(%q): no error", bad)
		}
	}
}

func TestPromDuration(t *testing.T) {
	for s, want := range map[string]time.Duration{"0m": 0, "5m": 5 * time.Minute, "1h30m": 90 * time.Minute, "500ms": 500 * time.Millisecond} {
		if got, err := promDuration(s); err != nil || got != want {
			t.Errorf("promDuration(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, bad := range []string{"", "5", "m", "5x"} {
		if _, err := promDuration(bad); err == nil {
			t.Errorf("promDuration(%q): no error", bad)
		}
	}
}
