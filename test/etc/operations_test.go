package etc

import (
	"os"
	"regexp"
	"strconv"
	"testing"

	"github.com/octavia-vpp/health/heartbeat"
)

// TestOperationsLimiterBound: docs/operations.md gives the rejection log
// limiter's bound, one entry per rejection reason.
func TestOperationsLimiterBound(t *testing.T) {
	b, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\| rejection log rate limiter \| one entry per rejection reason \| (\d+)\b`).FindSubmatch(b)
	if m == nil {
		t.Fatal("docs/operations.md has no rejection log rate limiter row")
	}
	if got, want := string(m[1]), strconv.Itoa(len(heartbeat.Reasons())); got != want {
		t.Errorf("docs/operations.md: the limiter holds %s entries; there are %s rejection reasons", got, want)
	}
}
