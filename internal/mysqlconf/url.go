// Package mysqlconf turns Octavia's MySQL/MariaDB database URLs (SQLAlchemy
// syntax, as [database] connection holds them) into go-sql-driver/mysql
// configurations, and judges a server's version.
//
// The URL grammar and the parameters follow what SQLAlchemy 1.4 with
// PyMySQL or mysqlclient (MySQLdb) accepts; docs/configuration.md lists the
// parameters and what each becomes. Every error is written so that it can
// be logged: it never shows the password, nor any part of the URL that may
// hold one.
package mysqlconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// IsMySQLURL reports whether v names a MySQL or MariaDB database by its
// scheme (mysql://, mysql+pymysql://, mariadb+mysqldb://...), whether or
// not the rest of it parses.
func IsMySQLURL(v string) bool {
	scheme, _, ok := strings.Cut(v, "://")
	if !ok {
		return false
	}
	dialect, _, _ := strings.Cut(strings.ToLower(scheme), "+")
	return dialect == "mysql" || dialect == "mariadb"
}

// Driver is the Python DB-API driver a URL names; it decides the few
// details where PyMySQL and mysqlclient differ.
type Driver string

const (
	// PyMySQL is mysql+pymysql://, what Octavia's packages install.
	PyMySQL Driver = "pymysql"
	// MySQLdb is mysql+mysqldb:// and plain mysql:// (SQLAlchemy's
	// default MySQL driver is mysqlclient).
	MySQLdb Driver = "mysqldb"
)

// DefaultSocket is the server socket mysqlclient (libmariadb as Debian
// builds it) connects to for host "localhost" or no host.
const DefaultSocket = "/run/mysqld/mysqld.sock"

// sqlalchemyURL is SQLAlchemy 1.4's URL grammar (sqlalchemy.engine.url):
// the user name runs to the first ":" or "/", the password to the first
// "@", so a password holding "@" must be percent-encoded.
var sqlalchemyURL = regexp.MustCompile(`^(?s)([\w+]+)://` +
	`(?:([^:/]*)(?::([^@]*))?@)?` +
	`(?:(?:\[([^/?]+)\]|([^/:?]+))?(?::([^/?]*))?)?` +
	`(?:/([^?]*))?` +
	`(?:\?(.*))?$`)

// ParseURL parses a MySQL/MariaDB SQLAlchemy URL into a driver
// configuration: ParseTime, Loc UTC, Octavia's session sql_mode
// (TRADITIONAL, oslo.db's default) and, when the character set allows it,
// InterpolateParams. A read_default_file is read now.
func ParseURL(v string) (*mysql.Config, error) {
	return parseURL(v, os.ReadFile)
}

// urlParts is a URL's parts before they become a driver configuration.
type urlParts struct {
	driver               Driver
	user, password       string
	host, port, database string
	params               map[string]string
	paramOrder           []string
}

func splitURL(v string) (*urlParts, error) {
	if !IsMySQLURL(v) {
		return nil, errors.New("not a MySQL URL (want mysql+pymysql://user:password@host/octavia)")
	}
	m := sqlalchemyURL.FindStringSubmatchIndex(v)
	if m == nil {
		return nil, errors.New("malformed URL (percent-encode \"@\", \":\" and \"/\" in the user name and password)")
	}
	group := func(i int) (string, bool) {
		if m[2*i] < 0 {
			return "", false
		}
		return v[m[2*i]:m[2*i+1]], true
	}
	scheme, _ := group(1)
	p := &urlParts{params: map[string]string{}}
	_, driver, _ := strings.Cut(strings.ToLower(scheme), "+")
	switch driver {
	case "pymysql":
		p.driver = PyMySQL
	case "", "mysqldb":
		p.driver = MySQLdb
	default:
		return nil, fmt.Errorf("scheme %q names an SQLAlchemy driver that is not supported (want mysql://, mysql+pymysql:// or mysql+mysqldb://)", redactScheme(scheme))
	}
	var err error
	if u, ok := group(2); ok {
		if p.user, err = url.PathUnescape(u); err != nil {
			return nil, errors.New("malformed percent-encoding in the user name")
		}
	}
	if pw, ok := group(3); ok {
		if p.password, err = url.PathUnescape(pw); err != nil {
			return nil, errors.New("malformed percent-encoding in the password")
		}
	}
	if h, ok := group(4); ok {
		p.host = h
	} else if h, ok := group(5); ok {
		p.host = h
	}
	if strings.ContainsAny(p.host, "@ ") {
		// An "@" here means the password held an unencoded "@": the
		// host now holds part of it, so it is not shown.
		return nil, errors.New("malformed host (percent-encode \"@\" in the password as %40)")
	}
	if port, ok := group(6); ok && port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return nil, errors.New("malformed port (want a number from 1 to 65535)")
		}
		p.port = strconv.Itoa(n)
	}
	if db, ok := group(7); ok {
		// SQLAlchemy does not decode the database name; a "%" in it is
		// kept, and one containing "/" or "?" could not be written.
		p.database = db
	}
	if q, ok := group(8); ok && q != "" {
		for _, kv := range strings.Split(q, "&") {
			if kv == "" {
				continue
			}
			k, val, _ := strings.Cut(kv, "=")
			k, err1 := url.QueryUnescape(k)
			val, err2 := url.QueryUnescape(val)
			if err1 != nil || err2 != nil {
				return nil, fmt.Errorf("malformed percent-encoding in parameter %s", paramName(k))
			}
			if _, dup := p.params[k]; dup {
				return nil, fmt.Errorf("parameter %s is given twice", paramName(k))
			}
			p.params[k] = val
			p.paramOrder = append(p.paramOrder, k)
		}
	}
	return p, nil
}

var plainName = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// paramName quotes a parameter name for an error, unless it does not look
// like one (it might then be a misplaced password).
func paramName(k string) string {
	if plainName.MatchString(k) {
		return strconv.Quote(k)
	}
	return "(a malformed name, not shown)"
}

func redactScheme(s string) string {
	if plainName.MatchString(strings.ReplaceAll(s, "+", "_")) {
		return s
	}
	return "(malformed)"
}

// Parameters the URL may carry. Each is what SQLAlchemy passes to the
// driver, except plugin, which loads an SQLAlchemy engine plugin
// (devstack's dbcounter) inside Octavia's Python process: it is accepted
// and changes nothing here.
var knownParams = []string{
	"charset", "unix_socket", "read_default_file", "read_default_group",
	"ssl_ca", "ssl_capath", "ssl_cert", "ssl_key", "ssl_check_hostname",
	"connect_timeout", "read_timeout", "write_timeout",
	"plugin",
}

// refusedParams have a reason of their own.
var refusedParams = map[string]string{
	"ssl_cipher":   "cipher lists are not configurable here (Go chooses the TLS 1.2/1.3 cipher suites); remove it",
	"ssl_mode":     "not supported; use ssl_ca (verify), or ssl_cert/ssl_key without ssl_ca (encrypt without verifying)",
	"ssl":          "not supported as a URL parameter; use ssl_ca, ssl_cert and ssl_key",
	"bind_address": "not supported; the operating system chooses the source address",
	// SQLAlchemy hands these to PyMySQL as strings, so that even "false"
	// turns verification settings on and drops ssl_ca: no sane meaning to
	// copy.
	"ssl_verify_cert":     "not supported (SQLAlchemy passes it to PyMySQL as a string, which discards ssl_ca); ssl_ca verifies the server, ssl_check_hostname=false skips its name",
	"ssl_verify_identity": "not supported; ssl_ca verifies the server's certificate and name",
	"ssl_disabled":        "not supported; leave out the ssl_ parameters for a connection without TLS",
}

func parseURL(v string, readFile func(string) ([]byte, error)) (*mysql.Config, error) {
	p, err := splitURL(v)
	if err != nil {
		return nil, err
	}
	var unknown []string
	for _, k := range p.paramOrder {
		if why, ok := refusedParams[k]; ok {
			return nil, fmt.Errorf("parameter %s: %s", paramName(k), why)
		}
		if !slices.Contains(knownParams, k) {
			unknown = append(unknown, paramName(k))
		}
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("unknown parameter(s) %s (known: %s)", strings.Join(unknown, ", "), strings.Join(knownParams, ", "))
	}
	opt := p.params

	// read_default_file fills what the URL leaves unset, as PyMySQL does
	// (a value in the URL wins).
	if group, ok := opt["read_default_group"]; ok {
		if _, ok := opt["read_default_file"]; !ok {
			return nil, errors.New("parameter \"read_default_group\" needs read_default_file (the implicit /etc/my.cnf is not read)")
		}
		if group == "" {
			return nil, errors.New("parameter \"read_default_group\" is empty")
		}
	}
	if file, ok := opt["read_default_file"]; ok {
		group := opt["read_default_group"]
		if group == "" {
			group = "client"
		}
		of, err := readOptionFile(file, group, readFile)
		if err != nil {
			return nil, err
		}
		fill := func(dst *string, key string) {
			if *dst == "" {
				*dst = of[key]
			}
		}
		fill(&p.user, "user")
		fill(&p.password, "password")
		fill(&p.host, "host")
		fill(&p.database, "database")
		if p.port == "" {
			if port, ok := of["port"]; ok {
				n, err := strconv.Atoi(port)
				if err != nil || n < 1 || n > 65535 {
					return nil, fmt.Errorf("read_default_file %s: [%s] port is not a port number", file, group)
				}
				p.port = strconv.Itoa(n)
			}
		}
		for _, k := range []struct{ file, param string }{
			{"socket", "unix_socket"}, {"default-character-set", "charset"},
			{"ssl-ca", "ssl_ca"}, {"ssl-capath", "ssl_capath"}, {"ssl-cert", "ssl_cert"}, {"ssl-key", "ssl_key"},
		} {
			if v, ok := of[k.file]; ok && opt[k.param] == "" {
				opt[k.param] = v
			}
		}
		if _, ok := of["ssl-cipher"]; ok {
			return nil, fmt.Errorf("read_default_file %s: [%s] ssl-cipher: %s", file, group, refusedParams["ssl_cipher"])
		}
		if _, ok := of["bind-address"]; ok {
			return nil, fmt.Errorf("read_default_file %s: [%s] bind-address: %s", file, group, refusedParams["bind_address"])
		}
	}

	cfg := mysql.NewConfig()
	cfg.User = p.user
	cfg.Passwd = p.password
	cfg.DBName = p.database
	if cfg.DBName == "" {
		return nil, errors.New("no database name (want .../octavia)")
	}
	if cfg.User == "" {
		// PyMySQL would log in as "" and mysqlclient as the Unix user;
		// neither is how Octavia is deployed.
		return nil, errors.New("no user name (want mysql+pymysql://user:password@host/octavia)")
	}
	cfg.ParseTime = true
	cfg.Loc = time.UTC
	// oslo.db's [database] mysql_sql_mode default: strict, so that a bad
	// value is an error, as in Octavia.
	cfg.Params = map[string]string{"sql_mode": "'TRADITIONAL'"}

	switch sock := opt["unix_socket"]; {
	case sock != "":
		if !filepath.IsAbs(sock) {
			return nil, errors.New("parameter \"unix_socket\" must be an absolute path")
		}
		cfg.Net, cfg.Addr = "unix", sock
	case p.driver == MySQLdb && (p.host == "" || p.host == "localhost"):
		// libmysqlclient's rule: "localhost" is the local socket,
		// whatever the port.
		cfg.Net, cfg.Addr = "unix", DefaultSocket
	default:
		host, port := p.host, p.port
		if host == "" {
			host = "localhost"
		}
		if port == "" {
			port = "3306"
		}
		cfg.Net, cfg.Addr = "tcp", net.JoinHostPort(host, port)
	}

	charset := opt["charset"]
	if _, ok := opt["charset"]; !ok || charset == "" {
		// oslo.db's default when the URL names none.
		charset = "utf8"
	}
	if !charsetName.MatchString(charset) {
		return nil, errors.New("parameter \"charset\" is not a character set name")
	}
	if err := cfg.Apply(mysql.Charset(charset, "")); err != nil {
		return nil, err
	}
	// Interpolation saves a round trip per statement; the driver allows
	// it only where backslash escaping is safe.
	cfg.InterpolateParams = !slices.Contains(unsafeCharsets, strings.ToLower(charset))

	for _, t := range []struct {
		name string
		dst  *time.Duration
	}{{"connect_timeout", &cfg.Timeout}, {"read_timeout", &cfg.ReadTimeout}, {"write_timeout", &cfg.WriteTimeout}} {
		s, ok := opt[t.name]
		if !ok {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 86400 {
			return nil, fmt.Errorf("parameter %q: want whole seconds from 1 to 86400", t.name)
		}
		*t.dst = time.Duration(n) * time.Second
	}

	tlsCfg, err := tlsConfig(opt, cfg, readFile)
	if err != nil {
		return nil, err
	}
	cfg.TLS = tlsCfg
	return cfg, nil
}

var charsetName = regexp.MustCompile(`^[A-Za-z0-9_]{1,32}$`)

// unsafeCharsets are those in which a backslash may end a multi-byte
// character, so that client-side escaping is unsafe.
var unsafeCharsets = []string{"big5", "cp932", "gb2312", "gbk", "sjis"}

// tlsConfig follows PyMySQL (and SQLAlchemy's ssl_* translation): any of
// ssl_ca, ssl_capath, ssl_cert, ssl_key turns TLS on; with a CA the
// server's certificate and, unless ssl_check_hostname=false, its name are
// verified; without one the connection is encrypted but the server is not
// verified.
func tlsConfig(opt map[string]string, cfg *mysql.Config, readFile func(string) ([]byte, error)) (*tls.Config, error) {
	boolParam := func(name string) (val, set bool, err error) {
		s, ok := opt[name]
		if !ok {
			return false, false, nil
		}
		switch strings.ToLower(s) {
		case "1", "true", "yes", "on":
			return true, true, nil
		case "0", "false", "no", "off":
			return false, true, nil
		}
		return false, true, fmt.Errorf("parameter %q: want true or false", name)
	}
	checkHost, checkHostSet, err := boolParam("ssl_check_hostname")
	if err != nil {
		return nil, err
	}
	ca, capath, cert, key := opt["ssl_ca"], opt["ssl_capath"], opt["ssl_cert"], opt["ssl_key"]
	if ca == "" && capath == "" && cert == "" && key == "" {
		if checkHostSet {
			return nil, errors.New("parameter \"ssl_check_hostname\" without ssl_ca has no effect; remove it")
		}
		return nil, nil
	}
	t := &tls.Config{MinVersion: tls.VersionTLS12}
	hasCA := ca != "" || capath != ""
	if hasCA {
		pool := x509.NewCertPool()
		var files []string
		if ca != "" {
			files = append(files, ca)
		}
		if capath != "" {
			entries, err := os.ReadDir(capath)
			if err != nil {
				return nil, fmt.Errorf("parameter \"ssl_capath\": %v", err)
			}
			for _, e := range entries {
				if !e.IsDir() {
					files = append(files, filepath.Join(capath, e.Name()))
				}
			}
		}
		added := false
		for _, f := range files {
			pem, err := readFile(f)
			if err != nil {
				return nil, fmt.Errorf("CA certificates: %v", err)
			}
			if pool.AppendCertsFromPEM(pem) {
				added = true
			}
		}
		if !added {
			return nil, errors.New("ssl_ca/ssl_capath: no PEM certificate found")
		}
		t.RootCAs = pool
	}
	if (cert == "") != (key == "") && cert == "" {
		return nil, errors.New("parameter \"ssl_key\" needs ssl_cert")
	}
	if cert != "" {
		certPEM, err := readFile(cert)
		if err != nil {
			return nil, fmt.Errorf("parameter \"ssl_cert\": %v", err)
		}
		keyPEM := certPEM
		if key != "" {
			if keyPEM, err = readFile(key); err != nil {
				return nil, fmt.Errorf("parameter \"ssl_key\": %v", err)
			}
		}
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("ssl_cert/ssl_key: %v", err)
		}
		t.Certificates = []tls.Certificate{pair}
	}

	// PyMySQL verifies the chain when a CA is given, and then the host
	// name unless ssl_check_hostname is false.
	if !hasCA {
		t.InsecureSkipVerify = true
		return t, nil
	}
	checkName := !checkHostSet || checkHost
	host := "localhost" // PyMySQL's name for a socket connection
	if cfg.Net == "tcp" {
		host, _, _ = net.SplitHostPort(cfg.Addr)
	}
	if checkName {
		t.ServerName = host
		return t, nil
	}
	// Chain without name: the standard verifier with the name check
	// left out.
	roots := t.RootCAs
	t.InsecureSkipVerify = true
	t.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
		if len(raw) == 0 {
			return errors.New("server sent no certificate")
		}
		certs := make([]*x509.Certificate, len(raw))
		for i, r := range raw {
			c, err := x509.ParseCertificate(r)
			if err != nil {
				return err
			}
			certs[i] = c
		}
		inter := x509.NewCertPool()
		for _, c := range certs[1:] {
			inter.AddCert(c)
		}
		_, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter})
		return err
	}
	return t, nil
}
