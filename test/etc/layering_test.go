package etc

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// The layers of docs/architecture.md, bottom first. A package may import
// packages of its own layer or of a layer below it, never one above.
type layer int

const (
	internalLayer layer = iota // internal/: helpers that know nothing of heartbeats or stores
	domainLayer                // codec, rules, stores, stats drivers, VPP, schema
	pipelineLayer              // healthdb/manager and its HTTP views, amphora-agent
	cmdLayer                   // flag parsing and wiring
	testSupport                // harnesses and fakes: import anything, imported by tests only
)

func (l layer) String() string {
	return [...]string{"internal", "domain", "pipeline", "cmd", "test support"}[l]
}

// layerRoots places every package of the module: a package belongs to the
// longest root that is its path or a parent of it. A new package under an
// existing root inherits its layer; one outside every root fails the test
// until it is placed here (and in docs/architecture.md).
var layerRoots = map[string]layer{
	"cmd":                            cmdLayer,
	"healthdb/manager":               pipelineLayer,
	"amphora-agent":                  pipelineLayer,
	"healthdb":                       domainLayer,
	"heartbeat":                      domainLayer,
	"statsdriver":                    domainLayer,
	"vpp":                            domainLayer,
	"migrations":                     domainLayer,
	"internal":                       internalLayer,
	"test":                           testSupport,
	"vpp/internal/fakevpp":           testSupport,
	"healthdb/manager/managertest":   testSupport,
	"healthdb/failover/failovertest": testSupport,
	"healthdb/storetest":             testSupport,
	"statsdriver/sinktest":           testSupport,
	"vpp/internal/dptest":            testSupport,
}

// layerOf places rel, a package path relative to the module.
func layerOf(rel string) (layer, bool) {
	best, found := "", false
	var l layer
	for root, rl := range layerRoots {
		if (rel == root || strings.HasPrefix(rel, root+"/")) && len(root) >= len(best) {
			best, l, found = root, rl, true
		}
	}
	return l, found
}

// listedPackage is what the layering check needs of `go list -json`.
type listedPackage struct {
	ImportPath  string
	Imports     []string
	TestImports []string
	Error       *struct{ Err string }
}

// layerViolations returns one line per import that runs up the layers, or
// per package the layer table does not place. Imports counts the
// package's own files; testImports those of its in-package tests, which
// are compiled into the package and so keep to its layer (the only
// exception: they may use test support). External test packages
// (package x_test) are not checked: like the suites under test/, they sit
// above everything they test and no package imports them.
func layerViolations(module string, pkgs []listedPackage) []string {
	var bad []string
	rel := func(path string) (string, bool) {
		if path == module {
			return "", true
		}
		r, ok := strings.CutPrefix(path, module+"/")
		return r, ok
	}
	for _, p := range pkgs {
		from, ok := rel(p.ImportPath)
		if !ok {
			continue
		}
		fl, ok := layerOf(from)
		if !ok {
			bad = append(bad, fmt.Sprintf("%s is on no layer: add it to layerRoots and docs/architecture.md", from))
			continue
		}
		check := func(imports []string, what string, testSupportAllowed bool) {
			for _, imp := range imports {
				to, ok := rel(imp)
				if !ok {
					continue
				}
				tl, ok := layerOf(to)
				switch {
				case !ok:
					bad = append(bad, fmt.Sprintf("%s imports %s, which is on no layer", from, to))
				case fl == testSupport:
				case tl == testSupport:
					if !testSupportAllowed {
						bad = append(bad, fmt.Sprintf("%s (%s) imports the test support %s", from, fl, to))
					}
				case tl > fl:
					bad = append(bad, fmt.Sprintf("%s%s (%s) imports %s (%s), a layer above it", from, what, fl, to, tl))
				}
			}
		}
		check(p.Imports, "", false)
		check(p.TestImports, "'s tests", true)
	}
	slices.Sort(bad)
	return slices.Compact(bad)
}

func goListModule(t *testing.T, goos string) (module string, pkgs []listedPackage) {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("no go tool to list imports with: %v", err)
	}
	mod := exec.Command(goTool, "list", "-m")
	mod.Dir = "../.."
	out, err := mod.Output()
	if err != nil {
		t.Fatalf("go list -m: %v", err)
	}
	module = strings.TrimSpace(string(out))

	cmd := exec.Command(goTool, "list", "-e", "-json=ImportPath,Imports,TestImports,Error", "./...")
	cmd.Dir = "../.."
	cmd.Env = append(os.Environ(), "GOOS="+goos, "CGO_ENABLED=0")
	out, err = cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list for %s: %v\n%s", goos, err, ee.Stderr)
		}
		t.Fatalf("go list for %s: %v", goos, err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p listedPackage
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("go list output for %s: %v", goos, err)
		}
		pkgs = append(pkgs, p)
	}
	return module, pkgs
}

// No package of the module imports a package on a layer above it
// (docs/architecture.md, "Layers"), on every platform the module has
// files for. heartbeat/layering_test.go holds the codec to a stricter
// rule: no package of this module at all, and no sockets.
func TestNoImportRunsUpTheLayers(t *testing.T) {
	for _, goos := range []string{"linux", "darwin", "windows"} {
		module, pkgs := goListModule(t, goos)
		if len(pkgs) < 20 {
			t.Fatalf("%s: go list found only %d packages", goos, len(pkgs))
		}
		for _, p := range pkgs {
			if p.Error != nil && strings.HasPrefix(p.ImportPath, module) {
				t.Errorf("%s: %s: %s", goos, p.ImportPath, p.Error.Err)
			}
		}
		for _, v := range layerViolations(module, pkgs) {
			t.Errorf("%s: %s", goos, v)
		}
	}
}

// The check itself reports what it must: the two arrows this module used
// to have, an unplaced package, and production code using test support.
func TestLayerViolationsReportsUpwardImports(t *testing.T) {
	const m = "example.org/m"
	pkgs := []listedPackage{
		{ImportPath: m + "/internal/loadgen", Imports: []string{m + "/heartbeat", "net"}},
		{ImportPath: m + "/internal/pgtest", Imports: []string{m + "/migrations"}},
		{ImportPath: m + "/healthdb/manager", Imports: []string{m + "/healthdb", m + "/internal/boundq", m + "/healthdb/manager/statuspage"},
			TestImports: []string{m + "/test/pgtest", m + "/healthdb/manager/managertest"}},
		{ImportPath: m + "/healthdb", Imports: []string{m + "/healthdb/storetest"}},
		{ImportPath: m + "/newtop", Imports: nil},
		{ImportPath: m + "/test/faults", Imports: []string{m + "/cmd/octavia-health-manager"}},
		{ImportPath: m + "/heartbeat", TestImports: []string{m + "/healthdb"}},
	}
	got := layerViolations(m, pkgs)
	want := []string{
		"healthdb (domain) imports the test support healthdb/storetest",
		"internal/loadgen (internal) imports heartbeat (domain), a layer above it",
		"internal/pgtest (internal) imports migrations (domain), a layer above it",
		"newtop is on no layer: add it to layerRoots and docs/architecture.md",
	}
	if !slices.Equal(got, want) {
		t.Errorf("violations:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
