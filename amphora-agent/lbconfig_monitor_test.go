package agent

import (
	"strings"
	"testing"

	"github.com/octavia-vpp/health/vpp"
)

// TestMonitorPeriodsInRange holds what FuzzParseLB found: a delay or
// timeout too small became a zero duration, one too large overflowed into
// a negative one, and either made the member's prober spin.
func TestMonitorPeriodsInRange(t *testing.T) {
	for _, c := range []struct {
		from, to string
		ok       bool
	}{
		{`"delay": 5`, `"delay": 1e-12`, false},
		{`"delay": 5`, `"delay": 1e300`, false},
		{`"delay": 5`, `"delay": 2147483648`, false},
		{`"timeout": 3`, `"timeout": 1e-300`, false},
		{`"timeout": 3`, `"timeout": 0`, false},
		{`"max_retries": 2`, `"max_retries": 2, "fast_delay": 1e-15`, false},
		{`"max_retries": 2`, `"max_retries": 2, "down_delay": 9e18`, false},
		{`"max_retries": 2`, `"max_retries": 2, "down_delay": -1`, false},
		{`"delay": 5`, `"delay": 0.001`, true},
		{`"delay": 5`, `"delay": 2147483647`, true},
		{`"max_retries": 2`, `"max_retries": 2, "fast_delay": 0, "down_delay": 0.5`, true},
	} {
		_, err := ParseLB([]byte(strings.Replace(validLB, c.from, c.to, 1)), vpp.EncapGRE4)
		if (err == nil) != c.ok {
			t.Errorf("%s: err = %v; want accepted %v", c.to, err, c.ok)
		}
	}
}
