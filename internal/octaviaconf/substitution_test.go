package octaviaconf

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// TestSubstitutionExpansionIsBounded holds the hang FuzzLoad found:
// options that each name the previous one eight times expanded
// exponentially (8^9 references, 16 MB, seconds of CPU) before failing.
func TestSubstitutionExpansionIsBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("[DEFAULT]\nv0 = x\n")
	for i := 1; i <= 9; i++ {
		fmt.Fprintf(&b, "v%d = %s\n", i, strings.Repeat(fmt.Sprintf("$v%d", i-1), 8))
	}
	b.WriteString("[health_manager]\nbind_ip = $v9\n")
	_, err := load(slog.New(slog.DiscardHandler), writeConf(t, "octavia.conf", b.String()))
	if err == nil || !strings.Contains(err.Error(), "substitutions in one value") {
		t.Fatalf("err = %.200v; want the substitution limit", err)
	}
}
