package agent

import (
	"strings"
	"testing"
)

// TestLoadConfigRefusesUnrepresentableSeconds holds what FuzzLoadConfig
// found: NaN, infinities and numbers too large for a time.Duration were
// accepted and became negative durations.
func TestLoadConfigRefusesUnrepresentableSeconds(t *testing.T) {
	for _, v := range []string{"NaN", "nan", "inf", "+Inf", "1e300", "9300000000"} {
		path := writeFile(t, t.TempDir(), "amphora-agent.conf",
			"[amphora_agent]\namphora_id = a\nvpp_unreachable_limit = "+v+"\n[health_manager]\nheartbeat_key = k\n")
		_, err := LoadConfig(path)
		if err == nil || !strings.Contains(err.Error(), "vpp_unreachable_limit") {
			t.Errorf("vpp_unreachable_limit = %s: err = %v; want it refused", v, err)
		}
	}
	path := writeFile(t, t.TempDir(), "amphora-agent.conf",
		"[amphora_agent]\namphora_id = a\nvpp_unreachable_limit = 9200000000\n[health_manager]\nheartbeat_key = k\n")
	if _, err := LoadConfig(path); err != nil {
		t.Errorf("the largest representable value is refused: %v", err)
	}
}
