package oslocli

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/octavia-vpp/health/internal/version"
)

func TestResolve(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	touch := func(rel string) string {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	a, b := touch("a.conf"), touch("b.conf")
	def := touch("octavia.conf")
	missing := filepath.Join(dir, "missing.conf")
	// Written out of order: the result must be in name order, whatever
	// the directory's own order.
	d20, d10, d9 := touch("d/20-late.conf"), touch("d/10-early.conf"), touch("d/9-last-by-name.conf")
	touch("d/.hidden.conf")
	touch("d/notes.txt")
	touch("d/README.conf.disabled")
	if err := os.Mkdir(filepath.Join(dir, "d", "sub.conf"), 0o700); err != nil {
		t.Fatal(err)
	}
	e := touch("e/x.conf")
	empty := filepath.Join(dir, "empty")
	if err := os.Mkdir(empty, 0o700); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		files   []string
		dirs    []string
		def     Default
		want    []string
		wantErr string
	}{
		{"files in command-line order", []string{b, a}, nil, Default{}, []string{b, a}, ""},
		{"dir after the files, in name order", []string{b}, []string{filepath.Join(dir, "d")}, Default{}, []string{b, d10, d20, d9}, ""},
		{"two dirs in command-line order", nil, []string{filepath.Join(dir, "e"), filepath.Join(dir, "d")}, Default{}, []string{e, d10, d20, d9}, ""},
		{"empty dir", []string{a}, []string{empty}, Default{}, []string{a}, ""},
		{"missing dir", []string{a}, []string{filepath.Join(dir, "nope")}, Default{}, nil, "config dir"},
		{"file as dir", nil, []string{a}, Default{}, nil, "config dir"},
		{"default used without --config-file", nil, nil, Default{Path: def, IfExists: true}, []string{def}, ""},
		{"default before the dir", nil, []string{filepath.Join(dir, "e")}, Default{Path: def, IfExists: true}, []string{def, e}, ""},
		{"default replaced by --config-file", []string{a}, nil, Default{Path: def, IfExists: true}, []string{a}, ""},
		{"missing default skipped if optional", nil, nil, Default{Path: missing, IfExists: true}, nil, ""},
		{"missing default kept if required", nil, nil, Default{Path: missing}, []string{missing}, ""},
		{"no default", nil, nil, Default{}, nil, ""},
		{"default dir without --config-dir", []string{a}, nil, Default{Dir: filepath.Join(dir, "e")}, []string{a, e}, ""},
		{"default dir replaced by --config-dir", []string{a}, []string{filepath.Join(dir, "d")}, Default{Dir: filepath.Join(dir, "e")}, []string{a, d10, d20, d9}, ""},
		{"missing default dir skipped", []string{a}, nil, Default{Dir: filepath.Join(dir, "nope")}, []string{a}, ""},
		{"default file and dir", nil, nil, Default{Path: def, IfExists: true, Dir: filepath.Join(dir, "e")}, []string{def, e}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := resolve(tc.files, tc.dirs, tc.def)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("files = %q, want %q", got, tc.want)
			}
		})
	}
}

// run runs a minimal app wired as both programs are, returning what its
// action saw as the config files and what it printed.
func run(t *testing.T, def Default, args ...string) (files []string, out string, code int) {
	t.Helper()
	var buf bytes.Buffer
	app := &cli.App{
		Name:           "prog",
		Writer:         &buf,
		ErrWriter:      &buf,
		Flags:          Flags(def),
		Before:         func(c *cli.Context) error { return Before(c, def) },
		Action:         func(c *cli.Context) error { files = Files(c); return nil },
		ExitErrHandler: func(*cli.Context, error) {},
		Commands: []*cli.Command{{Name: "sub", Action: func(c *cli.Context) error {
			files = Files(c)
			return nil
		}}},
		DisableSliceFlagSeparator: true,
	}
	Setup(app)
	err := app.Run(append([]string{"prog"}, args...))
	var coder cli.ExitCoder
	switch {
	case err == nil:
	case errors.As(err, &coder):
		code = coder.ExitCode()
		buf.WriteString(err.Error())
	default:
		t.Fatalf("run %q: %v", args, err)
	}
	return files, buf.String(), code
}

func TestCommandLine(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	conf := filepath.Join(dir, "x.conf")
	if err := os.WriteFile(conf, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	def := Default{Path: filepath.Join(dir, "default.conf")}

	files, out, code := run(t, def, "--version")
	if code != 0 || out != "prog "+version.String()+"\n" || files != nil {
		t.Errorf("--version: code %d, output %q, action ran with %q; want 0, %q and no action", code, out, files, "prog "+version.String()+"\n")
	}
	// The subcommand sees the list the root's Before worked out.
	files, _, code = run(t, def, "--config-file", "a,b", "--config-dir", dir, "sub")
	if want := []string{"a,b", conf}; code != 0 || !slices.Equal(files, want) {
		t.Errorf("sub: code %d, files %q, want %q (a comma is part of a path)", code, files, want)
	}
	files, _, _ = run(t, def)
	if !slices.Equal(files, []string{def.Path}) {
		t.Errorf("no flags: files %q, want the default", files)
	}
	_, out, code = run(t, def, "--config-dir", filepath.Join(dir, "nope"))
	if code != exitUsage || !strings.Contains(out, "prog: config dir") {
		t.Errorf("missing dir: code %d, output %q", code, out)
	}
}
