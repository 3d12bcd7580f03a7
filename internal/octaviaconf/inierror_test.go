package octaviaconf

import (
	"log/slog"
	"strings"
	"testing"
)

// TestParseErrorsHideText holds the leak FuzzLoadConfig found in the INI
// parser's own errors, which quote the line, or for an unclosed """ value
// the rest of the file.
func TestParseErrorsHideText(t *testing.T) {
	const secret = "k3y-M4terial-zz"
	for _, conf := range []string{
		"[health_manager]\nheartbeat_key = \"\"\"" + secret + "\n",
		"[health_manager]\nheartbeat_key = `" + secret + "\n",
		"[health_manager]\nheartbeat_key " + secret + "\n",
		"[health_manager]\n= " + secret + "\n",
		"[health_manager]\n\"" + secret + " = x\n",
		"[health_manager " + secret + "\n",
	} {
		_, err := load(slog.New(slog.DiscardHandler), writeConf(t, "octavia.conf", conf))
		if err == nil {
			t.Errorf("%q: no error", conf)
			continue
		}
		if !strings.Contains(err.Error(), "octavia.conf") {
			t.Errorf("%q: error does not name the file: %v", conf, err)
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("%q: error shows the text: %v", conf, err)
		}
	}
}
