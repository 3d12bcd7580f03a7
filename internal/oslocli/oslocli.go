// Package oslocli is the part of oslo.config's command line that both
// programs share: repeated --config-file, --config-dir, a default config
// file, and --version.
package oslocli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/octavia-vpp/health/internal/version"
)

// Default is the config file read when no --config-file is given, and
// the directory read when no --config-dir is given.
type Default struct {
	Path string
	// IfExists skips Path when it does not exist (the health manager, as
	// oslo.config's default files); otherwise a missing Path is the
	// error any missing config file is (the agent needs its file).
	IfExists bool
	// Dir, if it exists, is read as a --config-dir would be when none is
	// given, as oslo.config reads /etc/<project>/<project>.conf.d.
	Dir string
}

// metadataKey holds the resolved file list in cli.App.Metadata.
const metadataKey = "oslocli.config-files"

// Flags are --config-file, --config-dir and --version.
func Flags(def Default) []cli.Flag {
	defText := def.Path
	if def.IfExists {
		defText += " if it exists"
	}
	dirUsage := "read every *.conf file in `DIR`, in name order, after the --config-file files, " +
		"so that its values win; may be repeated"
	if def.Dir != "" {
		dirUsage += " (default " + def.Dir + " if it exists)"
	}
	return []cli.Flag{
		&cli.StringSliceFlag{
			Name: "config-file",
			Usage: "oslo-style config `PATH`; repeat it, later files override earlier ones " +
				"(default " + defText + ")",
		},
		&cli.StringSliceFlag{Name: "config-dir", Usage: dirUsage},
		&cli.BoolFlag{Name: "version", Usage: "print the version and exit"},
	}
}

// Setup records the version in the app. --version is an ordinary flag
// (Flags) handled by Before: urfave/cli's own is a package-level variable,
// which one process building several apps (tests) would race on, and it
// adds a -v alias oslo does not have.
func Setup(app *cli.App) {
	app.Version = version.String()
	app.HideVersion = true
}

// exitUsage is both programs' exit code for a command that could not run.
const exitUsage = 2

// Before belongs in the app's Before hook: --version prints the program's
// name and version, as Octavia's programs do, and exits 0; otherwise it works out the config
// files to read, in order, and records them for Files.
func Before(c *cli.Context, def Default) error {
	if c.Bool("version") {
		fmt.Fprintln(c.App.Writer, c.App.Name, c.App.Version)
		return cli.Exit("", 0)
	}
	files, err := resolve(c.StringSlice("config-file"), c.StringSlice("config-dir"), def)
	if err != nil {
		return cli.Exit(c.App.Name+": "+err.Error(), exitUsage)
	}
	if c.App.Metadata == nil {
		c.App.Metadata = map[string]any{}
	}
	c.App.Metadata[metadataKey] = files
	return nil
}

// Files is the list Resolve recorded: the --config-file files (or the
// default file), then each --config-dir's *.conf files in name order.
func Files(c *cli.Context) []string {
	if files, ok := c.App.Metadata[metadataKey].([]string); ok {
		return files
	}
	return c.StringSlice("config-file")
}

func resolve(files, dirs []string, def Default) ([]string, error) {
	out := append([]string(nil), files...)
	// As in oslo.config, the default file stands in for --config-file
	// only; --config-dir does not replace it.
	if len(files) == 0 && def.Path != "" {
		_, err := os.Stat(def.Path)
		switch {
		case err == nil || !def.IfExists:
			out = append(out, def.Path)
		case !errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("default config file %s: %w", def.Path, err)
		}
	}
	if len(dirs) == 0 && def.Dir != "" {
		switch st, err := os.Stat(def.Dir); {
		case err == nil && st.IsDir():
			dirs = []string{def.Dir}
		case err != nil && !errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("default config dir %s: %w", def.Dir, err)
		}
	}
	for _, dir := range dirs {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("config dir %s: %w", dir, err)
		}
		// ReadDir sorts by name, the order oslo.config reads them in; like
		// Python's glob, "*.conf" does not match hidden files.
		for _, e := range entries {
			name := e.Name()
			if e.IsDir() || strings.HasPrefix(name, ".") || !strings.HasSuffix(name, ".conf") {
				continue
			}
			out = append(out, filepath.Join(dir, name))
		}
	}
	return out, nil
}
