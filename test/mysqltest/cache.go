package mysqltest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/octavia-vpp/health/migrations"
)

// octaviaVersions is where Debian's python3-octavia keeps its alembic
// migrations; the schema they build is cached under a hash of them.
const octaviaVersions = "/usr/lib/python3/dist-packages/octavia/db/migration/alembic_migrations/versions"

// The template's schema, as built by octavia-db-manage, is cached between
// test binaries (in the user's cache directory, or $MYSQLTEST_CACHE), so
// that only the first of them pays for alembic. The cache key covers
// Octavia's migration files, our own DDL and the server's version: a
// different Octavia, a changed DDL file or another server builds afresh.
// MYSQLTEST_CACHE=off disables the cache.
func cachePath(serverVersion string) (string, bool) {
	dir := os.Getenv("MYSQLTEST_CACHE")
	if dir == "off" {
		return "", false
	}
	if dir == "" {
		d, err := os.UserCacheDir()
		if err != nil {
			return "", false
		}
		dir = filepath.Join(d, "octavia-vpp-health", "mysqltest")
	}
	h := sha256.New()
	fmt.Fprintf(h, "server %s\n", serverVersion)
	entries, err := os.ReadDir(octaviaVersions)
	if err != nil {
		return "", false
	}
	var names []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".py") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(octaviaVersions, n))
		if err != nil {
			return "", false
		}
		fmt.Fprintf(h, "%s %x\n", n, sha256.Sum256(b))
	}
	own, err := migrations.MySQLOwnTables()
	if err != nil {
		return "", false
	}
	for _, s := range own {
		fmt.Fprintf(h, "own %x\n", sha256.Sum256([]byte(s)))
	}
	return filepath.Join(dir, "schema-"+hex.EncodeToString(h.Sum(nil))[:16]+".json"), true
}

func loadCached(path string) *template {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var tp cachedTemplate
	if json.Unmarshal(b, &tp) != nil || len(tp.Creates) == 0 {
		return nil
	}
	return &template{creates: tp.Creates, inserts: tp.Inserts}
}

func saveCached(path string, tp *template) {
	b, err := json.Marshal(cachedTemplate{Creates: tp.creates, Inserts: tp.inserts})
	if err != nil {
		return
	}
	if os.MkdirAll(filepath.Dir(path), 0o755) != nil {
		return
	}
	// Written whole, then renamed: a parallel test binary reads either
	// nothing or all of it.
	tmp := fmt.Sprintf("%s.%d.tmp", path, os.Getpid())
	if os.WriteFile(tmp, b, 0o644) != nil {
		os.Remove(tmp)
		return
	}
	if os.Rename(tmp, path) != nil {
		os.Remove(tmp)
	}
}

type cachedTemplate struct {
	Creates []string `json:"creates"`
	Inserts []string `json:"inserts"`
}
