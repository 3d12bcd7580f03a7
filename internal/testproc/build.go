package testproc

import (
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// builds caches one build per main package for the life of the test
// process: suites start the same program many times.
var builds sync.Map // import path -> func() (string, error)

// Binary builds the main package pkg (an import path such as
// "github.com/octavia-vpp/health/cmd/octavia-health-manager") once per
// test process and returns the program's path. A failed build fails t.
func Binary(t testing.TB, pkg string) string {
	t.Helper()
	bin, err := Build(pkg)
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// Build is Binary for TestMain and sync.Once users, which have no t.
// The program lands in a directory of its own under the system's
// temporary directory, named after the package's last element.
func Build(pkg string) (string, error) {
	f, _ := builds.LoadOrStore(pkg, sync.OnceValues(func() (string, error) {
		dir, err := os.MkdirTemp("", "testproc-bin-")
		if err != nil {
			return "", err
		}
		bin := filepath.Join(dir, path.Base(pkg))
		out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
		}
		return bin, nil
	}))
	return f.(func() (string, error))()
}

// Golden compares lines with the golden file at path, one per line;
// UPDATE_GOLDEN=1 in the environment rewrites the file first.
func Golden(t testing.TB, path string, lines []string) {
	t.Helper()
	got := strings.Join(lines, "\n") + "\n"
	if os.Getenv("UPDATE_GOLDEN") != "" {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("%s differs (UPDATE_GOLDEN=1 rewrites it):\n got:\n%s\nwant:\n%s", path, got, want)
	}
}
