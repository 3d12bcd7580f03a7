package version

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestString(t *testing.T) {
	// A test binary carries no module version, and the linker set none.
	if got := String(); got != "dev" {
		t.Errorf("String() = %q, want dev", got)
	}
}

// TestLinkerFlag builds a program the way the Makefile's build target
// does and checks that the -X flag names the right variable.
func TestLinkerFlag(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	t.Parallel()
	const want = "v1.2.3-4-gabcdef0-dirty"
	bin := filepath.Join(t.TempDir(), "printversion")
	build := exec.Command("go", "build", "-o", bin,
		"-ldflags", "-X github.com/octavia-vpp/health/internal/version.version="+want, "./testdata/printversion")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); got != want {
		t.Errorf("version = %q, want %q", got, want)
	}
}
