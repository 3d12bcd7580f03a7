package testproc

import (
	"os"
	"path/filepath"
	"testing"
)

func TestGolden(t *testing.T) {
	path := filepath.Join(t.TempDir(), "names.golden")
	if err := os.WriteFile(path, []byte("a counter\nb gauge\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	Golden(t, path, []string{"a counter", "b gauge"})

	t.Setenv("UPDATE_GOLDEN", "")
	rec := &recorder{TB: t}
	Golden(rec, path, []string{"a counter"})
	if !rec.failed {
		t.Error("a differing list passed")
	}
}

// recorder notes a failure instead of failing the test.
type recorder struct {
	testing.TB
	failed bool
}

func (r *recorder) Helper()               {}
func (r *recorder) Errorf(string, ...any) { r.failed = true }

func TestBuildOnce(t *testing.T) {
	first, err := Build("github.com/octavia-vpp/health/vpp/internal/fakevpp/cmd/fakevpp")
	if err != nil {
		t.Fatal(err)
	}
	again := Binary(t, "github.com/octavia-vpp/health/vpp/internal/fakevpp/cmd/fakevpp")
	if first != again {
		t.Errorf("built twice: %s, %s", first, again)
	}
	if _, err := os.Stat(first); err != nil {
		t.Error(err)
	}
}
