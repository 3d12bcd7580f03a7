package mysqlconf

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// ServerVersion is a server's version as SELECT VERSION() reports it.
type ServerVersion struct {
	MariaDB             bool
	Major, Minor, Patch int
	// Raw is the string it was read from.
	Raw string
}

func (v ServerVersion) String() string {
	name := "MySQL"
	if v.MariaDB {
		name = "MariaDB"
	}
	return fmt.Sprintf("%s %d.%d.%d", name, v.Major, v.Minor, v.Patch)
}

var versionNumber = regexp.MustCompile(`^(\d+)\.(\d+)(?:\.(\d+))?`)

// ParseServerVersion reads SELECT VERSION(): "10.11.6-MariaDB-0+deb12u1-log",
// "8.0.36", "5.7.44-log". The "5.5.5-" that old MariaDB puts before its
// version in the handshake is skipped.
func ParseServerVersion(s string) (ServerVersion, error) {
	v := ServerVersion{Raw: s, MariaDB: strings.Contains(strings.ToLower(s), "mariadb")}
	rest := strings.TrimSpace(s)
	if v.MariaDB {
		rest = strings.TrimPrefix(rest, "5.5.5-")
	}
	m := versionNumber.FindStringSubmatch(rest)
	if m == nil {
		return v, fmt.Errorf("server version %q is not a MySQL or MariaDB version", clip(s))
	}
	atoi := func(s string) int {
		n, err := strconv.Atoi(s)
		if err != nil || n > 1_000_000 {
			return -1
		}
		return n
	}
	v.Major, v.Minor = atoi(m[1]), atoi(m[2])
	if m[3] != "" {
		v.Patch = atoi(m[3])
	}
	if v.Major < 0 || v.Minor < 0 || v.Patch < 0 {
		return v, fmt.Errorf("server version %q is not a MySQL or MariaDB version", clip(s))
	}
	return v, nil
}

// Minimum versions: the first with SELECT ... FOR UPDATE SKIP LOCKED,
// which the stale-amphora claims need (docs/user-guide.md, "Running
// against MariaDB/Galera").
const (
	MinMariaDB = "10.6"
	MinMySQL   = "8.0"
)

// CheckServerVersion refuses a server without SKIP LOCKED, with a message
// saying what is needed.
func CheckServerVersion(s string) error {
	v, err := ParseServerVersion(s)
	if err != nil {
		return err
	}
	ok := v.Major > 8 || v.Major == 8 && !v.MariaDB
	if v.MariaDB {
		ok = v.Major > 10 || v.Major == 10 && v.Minor >= 6
	}
	if !ok {
		return fmt.Errorf("database server is %s (%q): SELECT ... FOR UPDATE SKIP LOCKED needs MariaDB %s or later, or MySQL %s or later; refusing to start",
			v, clip(s), MinMariaDB, MinMySQL)
	}
	return nil
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
