package mysqltest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/go-sql-driver/mysql"

	"github.com/octavia-vpp/health/migrations"
)

// template is the schema of the template database, to replay into new ones.
type template struct {
	creates []string // SHOW CREATE TABLE of every table
	inserts []string // the rows of the template (lookups, alembic_version)
}

// buildTemplate builds Octavia's schema with its own alembic, plus our own
// tables, on the template database, and reads it back.
func buildTemplate(ctx context.Context, s *server) (*template, error) {
	var version string
	if err := s.db.QueryRowContext(ctx, "SELECT VERSION()").Scan(&version); err != nil {
		return nil, err
	}
	path, cacheOn := cachePath(version)
	if cacheOn {
		if tp := loadCached(path); tp != nil {
			return tp, nil
		}
	}
	tp, err := buildTemplateWithAlembic(ctx, s)
	if err == nil && cacheOn {
		saveCached(path, tp)
	}
	return tp, err
}

func buildTemplateWithAlembic(ctx context.Context, s *server) (*template, error) {
	if err := s.admin(ctx, "CREATE DATABASE "+templateName); err != nil {
		return nil, err
	}
	if err := octaviaDBManage(ctx, s.dir, s.dsn(templateName)); err != nil {
		return nil, err
	}
	db, err := openDSN(s.dsn(templateName))
	if err != nil {
		return nil, err
	}
	defer db.Close()
	if err := migrations.CreateMySQLOwnTables(ctx, db); err != nil {
		return nil, err
	}
	rows, err := db.QueryContext(ctx, `SELECT table_name FROM information_schema.tables
WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE' ORDER BY table_name`)
	if err != nil {
		return nil, err
	}
	var tables []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return nil, err
		}
		tables = append(tables, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	tp := &template{}
	for _, n := range tables {
		var name, create string
		if err := db.QueryRowContext(ctx, "SHOW CREATE TABLE `"+n+"`").Scan(&name, &create); err != nil {
			return nil, fmt.Errorf("show create table %s: %w", n, err)
		}
		tp.creates = append(tp.creates, create)
		ins, err := insertsOf(ctx, db, n)
		if err != nil {
			return nil, err
		}
		tp.inserts = append(tp.inserts, ins...)
	}
	return tp, nil
}

// insertsOf returns an INSERT statement with literal values for every row
// of table, so that the template can be copied to another server too.
func insertsOf(ctx context.Context, db *sql.DB, table string) ([]string, error) {
	rows, err := db.QueryContext(ctx, "SELECT * FROM `"+table+"`")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var out []string
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		lits := make([]string, len(vals))
		for i, v := range vals {
			if !v.Valid {
				lits[i] = "NULL"
				continue
			}
			r := strings.NewReplacer(`\`, `\\`, `'`, `''`)
			lits[i] = "'" + r.Replace(v.String) + "'"
		}
		out = append(out, "INSERT INTO `"+table+"` VALUES ("+strings.Join(lits, ", ")+")")
	}
	return out, rows.Err()
}

// clone creates database name on s as a copy of the template.
func (tp *template) clone(ctx context.Context, s *server, name string) error {
	if err := s.admin(ctx, "CREATE DATABASE "+name); err != nil {
		return err
	}
	cfg := s.config(name)
	cfg.MultiStatements = true
	// Tables are created in name order, before the ones their foreign
	// keys reference.
	cfg.Params = map[string]string{"foreign_key_checks": "0"}
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		return err
	}
	db := sql.OpenDB(c)
	defer db.Close()
	var b strings.Builder
	for _, q := range tp.creates {
		b.WriteString(q)
		b.WriteString(";\n")
	}
	for _, q := range tp.inserts {
		b.WriteString(q)
		b.WriteString(";\n")
	}
	if _, err := db.ExecContext(ctx, b.String()); err != nil {
		return err
	}
	return nil
}

func openDSN(dsn string) (*sql.DB, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, err
	}
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(c), nil
}

// octaviaDBManage runs `octavia-db-manage upgrade head` on the database of
// dsn, with a configuration file written into workDir.
func octaviaDBManage(ctx context.Context, workDir, dsn string) error {
	bin, err := exec.LookPath("octavia-db-manage")
	if err != nil {
		if _, statErr := os.Stat("/usr/bin/octavia-db-manage"); statErr != nil {
			return errors.New("octavia-db-manage not found: run `make deps` (installs Debian's python3-octavia " +
				"and python3-pymysql) or `apt-get install python3-octavia python3-pymysql`")
		}
		bin = "/usr/bin/octavia-db-manage"
	}
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return err
	}
	u := url.URL{Scheme: "mysql+pymysql", Path: "/" + cfg.DBName}
	if cfg.Passwd != "" {
		u.User = url.UserPassword(cfg.User, cfg.Passwd)
	} else {
		u.User = url.User(cfg.User)
	}
	if cfg.Net == "unix" {
		u.Host = "localhost"
		u.RawQuery = url.Values{"unix_socket": {cfg.Addr}}.Encode()
	} else {
		u.Host = cfg.Addr
	}
	conf := filepath.Join(workDir, "octavia-db-manage.conf")
	body := "[database]\nconnection = " + u.String() + "\n"
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, bin, "--config-file", conf, "upgrade", "head")
	cmd.Dir = workDir
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C.UTF-8", "HOME=" + workDir}
	if out, err := cmd.CombinedOutput(); err != nil {
		tail := string(out)
		if len(tail) > 4000 {
			tail = tail[len(tail)-4000:]
		}
		return fmt.Errorf("octavia-db-manage upgrade head: %w\n%s", err, tail)
	}
	return nil
}
