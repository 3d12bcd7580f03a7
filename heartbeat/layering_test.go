package heartbeat

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// listedPackage is one line of goListDeps.
type listedPackage struct {
	importPath, module string
	standard           bool
}

// goListDeps lists pkg and everything it imports, tests excluded, as the
// go tool resolves them for goos.
func goListDeps(t *testing.T, goos, pkg string) []listedPackage {
	t.Helper()
	// go test puts its own toolchain first on PATH.
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("no go tool to list imports with: %v", err)
	}
	cmd := exec.Command(goTool, "list", "-deps", "-f",
		"{{.ImportPath}}\t{{with .Module}}{{.Path}}{{end}}\t{{.Standard}}", pkg)
	cmd.Env = append(os.Environ(), "GOOS="+goos, "CGO_ENABLED=0")
	out, err := cmd.Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("go list for %s: %v\n%s", goos, err, ee.Stderr)
		}
		t.Fatalf("go list for %s: %v", goos, err)
	}
	var pkgs []listedPackage
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 3 {
			t.Fatalf("go list line %q", line)
		}
		pkgs = append(pkgs, listedPackage{importPath: f[0], module: f[1], standard: f[2] == "true"})
	}
	return pkgs
}

// The codec sits on the domain layer (docs/heartbeat.md, "Receiving and
// sending"): it may use the standard library, never a socket and never
// another package of this module, whose packages either sit above it
// (the pipeline, cmd) or would drag configuration or I/O in. Sockets
// belong to heartbeat/udp. The rule holds for every platform the
// receiver has a file for.
func TestCodecImportsNoModulePackageAndNoSockets(t *testing.T) {
	for _, goos := range []string{"linux", "darwin", "windows"} {
		pkgs := goListDeps(t, goos, ".")
		self := pkgs[len(pkgs)-1] // -deps lists a package after its imports
		if self.module == "" || !strings.HasSuffix(self.importPath, "/heartbeat") {
			t.Fatalf("%s: listed %+v last, want package heartbeat", goos, self)
		}
		for _, p := range pkgs[:len(pkgs)-1] {
			if p.module == self.module {
				t.Errorf("%s: heartbeat depends on %s of this module", goos, p.importPath)
			}
			if p.importPath == "net" || (strings.HasPrefix(p.importPath, "net/") && p.importPath != "net/netip") {
				t.Errorf("%s: heartbeat depends on the socket package %s", goos, p.importPath)
			}
		}
	}
}

// heartbeat/udp sits above the codec and below the pipeline: of this
// module it may use the codec and the internal helpers, nothing else.
func TestUDPImportsOnlyTheCodecAndInternalHelpers(t *testing.T) {
	for _, goos := range []string{"linux", "darwin", "windows"} {
		pkgs := goListDeps(t, goos, "./udp")
		self := pkgs[len(pkgs)-1]
		codec := strings.TrimSuffix(self.importPath, "/udp")
		for _, p := range pkgs[:len(pkgs)-1] {
			if p.module != self.module || p.importPath == codec || strings.HasPrefix(p.importPath, self.module+"/internal/") {
				continue
			}
			t.Errorf("%s: heartbeat/udp depends on %s, which is not below it", goos, p.importPath)
		}
	}
}
