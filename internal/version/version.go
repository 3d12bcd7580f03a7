// Package version holds the programs' version, set at build time by the
// Makefile's build target:
//
//	go build -ldflags "-X github.com/octavia-vpp/health/internal/version.version=$(git describe --tags --always --dirty)"
package version

import "runtime/debug"

// version is empty unless the linker set it.
var version string

// String is the version set at build time; without one, the module
// version go install recorded (v1.2.3), and "dev" for a plain go build
// from a checkout, whose build info says only "(devel)".
func String() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}
