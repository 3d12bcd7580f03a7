package agent

import (
	"strings"
	"testing"
)

// TestLoadConfigParseErrorHidesKey: the INI parser's error for an unclosed
// """ value quoted the rest of the file, heartbeat key included.
func TestLoadConfigParseErrorHidesKey(t *testing.T) {
	path := writeFile(t, t.TempDir(), "amphora-agent.conf", "[health_manager]\nheartbeat_key = \"\"\"s3cret-key-material\n")
	_, err := LoadConfig(path)
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("err = %v; want a parse error without the key", err)
	}
}
