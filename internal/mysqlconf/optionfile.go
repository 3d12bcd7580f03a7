package mysqlconf

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/ini.v1"
)

// optionFileKeys are the options of a my.cnf group that PyMySQL reads
// for read_default_file. Others (a [client] group often holds more for
// the mysql command) are ignored, as PyMySQL ignores them.
var optionFileKeys = []string{
	"user", "password", "host", "port", "database", "socket", "default-character-set",
	"ssl-ca", "ssl-capath", "ssl-cert", "ssl-key", "ssl-cipher", "bind-address",
}

// readOptionFile reads one group of a MySQL option file (my.cnf syntax).
// Option names may use "_" for "-", as the MySQL clients allow; values may
// be quoted. !include and !includedir are refused: PyMySQL does not follow
// them, and mysqlclient does, so no one reading is right.
func readOptionFile(name, group string, readFile func(string) ([]byte, error)) (map[string]string, error) {
	path := name
	if rest, ok := strings.CutPrefix(name, "~/"); ok {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, fmt.Errorf("read_default_file %s: %v", name, err)
		}
		path = filepath.Join(home, rest)
	}
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("read_default_file %s: want an absolute path", name)
	}
	data, err := readFile(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("read_default_file %s: %v", name, err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if t := strings.TrimSpace(line); strings.HasPrefix(t, "!include") {
			return nil, fmt.Errorf("read_default_file %s: !include and !includedir are not followed; put the options in this file", name)
		}
	}
	f, err := ini.LoadSources(ini.LoadOptions{
		AllowBooleanKeys:           true, // "skip-ssl", "quick"...
		IgnoreInlineComment:        true, // "#" may be part of a password
		SkipUnrecognizableLines:    false,
		Insensitive:                true,
		AllowPythonMultilineValues: false,
		UnescapeValueDoubleQuotes:  true,
	}, data)
	if err != nil {
		// ini's message may quote a line, and a line may be a password.
		return nil, fmt.Errorf("read_default_file %s: not a valid option file", name)
	}
	sec, err := f.GetSection(strings.ToLower(group))
	if err != nil {
		return nil, fmt.Errorf("read_default_file %s: no [%s] group", name, group)
	}
	out := map[string]string{}
	for _, k := range sec.Keys() {
		n := strings.ReplaceAll(strings.ToLower(k.Name()), "_", "-")
		for _, want := range optionFileKeys {
			if n == want {
				out[n] = unquote(strings.TrimSpace(k.Value()))
			}
		}
	}
	return out, nil
}

func unquote(v string) string {
	if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
		return v[1 : len(v)-1]
	}
	return v
}
