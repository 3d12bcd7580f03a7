package main

import (
	"os"
	"strings"
	"testing"
)

// TestManPage renders the man page from the command-line definitions;
// make deb packages it (MAN_OUT names the file to write).
func TestManPage(t *testing.T) {
	page, err := newApp().ToManWithSection(8)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{".TH octavia-health-manager 8", "config-file", "log-file", "use-journal"} {
		if !strings.Contains(page, want) {
			t.Errorf("the man page lacks %q", want)
		}
	}
	if out := os.Getenv("MAN_OUT"); out != "" {
		if err := os.WriteFile(out, []byte(page), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
