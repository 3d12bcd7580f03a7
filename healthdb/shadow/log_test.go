package shadow

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLogKeepsTheLastAndReopens(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d.jsonl")
	l, err := OpenLog(path, 10)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 35; i++ {
		if err := l.Add(Disagreement{Kind: KindStatus, ID: string(rune('a' + i%26)), B64: "AAAA", SrcAddr: "127.0.0.1"}); err != nil {
			t.Fatal(err)
		}
	}
	onFile, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(onFile) < 10 || len(onFile) > 20 {
		t.Fatalf("%d lines on file, want 10 to 20", len(onFile))
	}
	if got := onFile[len(onFile)-1].ID; got != string(rune('a'+34%26)) {
		t.Errorf("last line %q", got)
	}
	if n := len(l.Recent()); n != 10 {
		t.Errorf("%d kept in memory", n)
	}
	if c := l.Counts()[KindStatus]; c != 35 {
		t.Errorf("counted %d", c)
	}
	// Each line is a line replay reads: "b64" and "srcaddr".
	b, _ := os.ReadFile(path)
	first, _, _ := strings.Cut(string(b), "\n")
	var line struct{ B64, SrcAddr string }
	if err := json.Unmarshal([]byte(first), &line); err != nil || line.B64 != "AAAA" {
		t.Errorf("line %s: %v", first, err)
	}
	again, err := OpenLog(path, 10)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(again.Recent()); n != 10 {
		t.Errorf("reopened with %d", n)
	}
}
