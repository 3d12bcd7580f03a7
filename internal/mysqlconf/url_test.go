package mysqlconf

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io/fs"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// testFiles stands for the file system: option files and PEM files by
// path.
type testFiles map[string]string

func (f testFiles) read(name string) ([]byte, error) {
	s, ok := f[name]
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return []byte(s), nil
}

func selfSigned(t testing.TB) (certPEM, keyPEM string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "db.example"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"db.example"}, IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}))
}

// want is what a parsed URL must give; TLS: "" none, "verify" (chain and
// name), "chain" (chain only), "encrypt" (no verification).
type want struct {
	net, addr, user, passwd, db string
	charset                     string
	interpolate                 bool
	tls                         string
	serverName                  string
	clientCert                  bool
	timeout, read, write        time.Duration
}

func charsetOf(cfg *mysql.Config) string {
	c := cfg.Clone()
	c.Passwd = ""
	dsn := c.FormatDSN()
	_, q, _ := strings.Cut(dsn, "?")
	for _, kv := range strings.Split(q, "&") {
		if v, ok := strings.CutPrefix(kv, "charset="); ok {
			return v
		}
	}
	return ""
}

func tlsKind(cfg *mysql.Config) string {
	switch t := cfg.TLS; {
	case t == nil:
		return ""
	case !t.InsecureSkipVerify:
		return "verify"
	case t.VerifyPeerCertificate != nil:
		return "chain"
	default:
		return "encrypt"
	}
}

func TestParseURL(t *testing.T) {
	cert, key := selfSigned(t)
	files := testFiles{
		"/etc/ssl/ca.pem": cert, "/etc/ssl/client.pem": cert, "/etc/ssl/client.key": key,
		"/etc/octavia/my.cnf": "# comment\n[mysqld]\nport = 1\n[client]\nuser = fromfile\npassword = \"se cr#et\"\nhost = db.example\nport = 3307\ndatabase = octavia_f\nssl_ca = /etc/ssl/ca.pem\nskip-ssl-verify-server-cert\n[other]\nuser=other\nsocket=/run/other.sock\n",
	}
	base := want{net: "tcp", addr: "db:3306", user: "octavia", passwd: "pw", db: "octavia", charset: "utf8", interpolate: true}
	with := func(f func(*want)) want { w := base; f(&w); return w }
	tests := []struct {
		name, url string
		want      want
	}{
		{"pymysql", "mysql+pymysql://octavia:pw@db/octavia", base},
		{"mysqldb", "mysql+mysqldb://octavia:pw@db/octavia", base},
		{"plain mysql", "mysql://octavia:pw@db/octavia", base},
		{"upper-case scheme", "MySQL+PyMySQL://octavia:pw@db/octavia", base},
		{"mariadb dialect", "mariadb+pymysql://octavia:pw@db/octavia", base},
		{"port", "mysql+pymysql://octavia:pw@db:3307/octavia", with(func(w *want) { w.addr = "db:3307" })},
		{"ipv6", "mysql+pymysql://octavia:pw@[fd00::5]:3307/octavia", with(func(w *want) { w.addr = "[fd00::5]:3307" })},
		{"no password", "mysql+pymysql://octavia@db/octavia", with(func(w *want) { w.passwd = "" })},
		{"empty password", "mysql+pymysql://octavia:@db/octavia", with(func(w *want) { w.passwd = "" })},
		{"encoded password", "mysql+pymysql://octavia:p%40ss%3Aw%2Fd%25@db/octavia", with(func(w *want) { w.passwd = "p@ss:w/d%" })},
		{"raw slash and colon in password", "mysql+pymysql://octavia:p/a:ss@db/octavia", with(func(w *want) { w.passwd = "p/a:ss" })},
		{"plus stays in password", "mysql+pymysql://octavia:a+b@db/octavia", with(func(w *want) { w.passwd = "a+b" })},
		{"encoded user", "mysql+pymysql://oct%40via:pw@db/octavia", with(func(w *want) { w.user = "oct@via" })},
		{"charset", "mysql+pymysql://octavia:pw@db/octavia?charset=utf8mb4", with(func(w *want) { w.charset = "utf8mb4" })},
		{"unsafe charset disables interpolation", "mysql+pymysql://octavia:pw@db/octavia?charset=gbk", with(func(w *want) { w.charset = "gbk"; w.interpolate = false })},
		{"devstack", "mysql+pymysql://octavia:pw@db/octavia?charset=utf8&plugin=dbcounter", base},
		{"pymysql without host is TCP localhost", "mysql+pymysql://octavia:pw@/octavia", with(func(w *want) { w.addr = "localhost:3306" })},
		{"mysqldb localhost is the socket", "mysql+mysqldb://octavia:pw@localhost:3307/octavia", with(func(w *want) { w.net, w.addr = "unix", DefaultSocket })},
		{"mysqldb without host is the socket", "mysql://octavia:pw@/octavia", with(func(w *want) { w.net, w.addr = "unix", DefaultSocket })},
		{"unix socket", "mysql+pymysql://octavia:pw@/octavia?unix_socket=/var/run/mysqld/mysqld.sock", with(func(w *want) { w.net, w.addr = "unix", "/var/run/mysqld/mysqld.sock" })},
		{"unix socket wins over host", "mysql+pymysql://octavia:pw@localhost/octavia?unix_socket=/run/m.sock", with(func(w *want) { w.net, w.addr = "unix", "/run/m.sock" })},
		{"timeouts", "mysql+pymysql://octavia:pw@db/octavia?connect_timeout=5&read_timeout=30&write_timeout=31", with(func(w *want) {
			w.timeout, w.read, w.write = 5*time.Second, 30*time.Second, 31*time.Second
		})},
		{"ssl_ca verifies chain and name", "mysql+pymysql://octavia:pw@db.example/octavia?ssl_ca=/etc/ssl/ca.pem", with(func(w *want) {
			w.addr, w.tls, w.serverName = "db.example:3306", "verify", "db.example"
		})},
		{"ssl_check_hostname=false verifies the chain only", "mysql+pymysql://octavia:pw@10.0.0.5/octavia?ssl_ca=/etc/ssl/ca.pem&ssl_check_hostname=false", with(func(w *want) {
			w.addr, w.tls = "10.0.0.5:3306", "chain"
		})},
		{"client certificate with CA", "mysql+pymysql://octavia:pw@db/octavia?ssl_ca=/etc/ssl/ca.pem&ssl_cert=/etc/ssl/client.pem&ssl_key=/etc/ssl/client.key", with(func(w *want) {
			w.tls, w.serverName, w.clientCert = "verify", "db", true
		})},
		{"client certificate alone encrypts without verifying", "mysql+pymysql://octavia:pw@db/octavia?ssl_cert=/etc/ssl/client.pem&ssl_key=/etc/ssl/client.key", with(func(w *want) {
			w.tls, w.clientCert = "encrypt", true
		})},
		{"option file fills what the URL leaves out", "mysql+pymysql://@/?read_default_file=/etc/octavia/my.cnf", with(func(w *want) {
			w.user, w.passwd, w.db, w.addr, w.tls, w.serverName = "fromfile", "se cr#et", "octavia_f", "db.example:3307", "verify", "db.example"
		})},
		{"the URL wins over the option file", "mysql+pymysql://octavia:pw@db/octavia?read_default_file=/etc/octavia/my.cnf", with(func(w *want) {
			w.addr, w.tls, w.serverName = "db:3307", "verify", "db"
		})},
		{"option file group", "mysql+pymysql://octavia:pw@db/octavia?read_default_file=/etc/octavia/my.cnf&read_default_group=other", with(func(w *want) {
			w.net, w.addr = "unix", "/run/other.sock"
		})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseURL(tt.url, files.read)
			if err != nil {
				t.Fatalf("parseURL(%q): %v", tt.url, err)
			}
			w := tt.want
			got := want{net: cfg.Net, addr: cfg.Addr, user: cfg.User, passwd: cfg.Passwd, db: cfg.DBName,
				charset: charsetOf(cfg), interpolate: cfg.InterpolateParams, tls: tlsKind(cfg),
				timeout: cfg.Timeout, read: cfg.ReadTimeout, write: cfg.WriteTimeout}
			if cfg.TLS != nil {
				got.serverName = cfg.TLS.ServerName
				got.clientCert = len(cfg.TLS.Certificates) == 1
			}
			if got != w {
				t.Errorf("parseURL(%q)\n got %+v\nwant %+v", tt.url, got, w)
			}
			if !cfg.ParseTime || cfg.Loc != time.UTC || cfg.Params["sql_mode"] != "'TRADITIONAL'" {
				t.Errorf("ParseTime %v, Loc %v, sql_mode %q; want true, UTC, 'TRADITIONAL'", cfg.ParseTime, cfg.Loc, cfg.Params["sql_mode"])
			}
		})
	}
}

func TestParseURLRefusals(t *testing.T) {
	cert, _ := selfSigned(t)
	files := testFiles{
		"/etc/ssl/ca.pem":      cert,
		"/etc/my-include.cnf":  "[client]\nuser = u\n!includedir /etc/mysql/conf.d/\n",
		"/etc/my-cipher.cnf":   "[client]\nssl-cipher = AES128-SHA\n",
		"/etc/my-noclient.cnf": "[mysql]\nuser = u\n",
		"/etc/my-port.cnf":     "[client]\nport = many\n",
	}
	tests := []struct{ name, url, want string }{
		{"not mysql", "postgresql://u:pw@h/db", "not a MySQL URL"},
		{"other driver", "mysql+aiomysql://u:pw@h/db", `"mysql+aiomysql" names an SQLAlchemy driver that is not supported`},
		{"unknown parameter", "mysql+pymysql://u:pw@h/db?charset=utf8&sslmode=require&foo=1", `unknown parameter(s) "sslmode", "foo"`},
		{"ssl_cipher", "mysql+pymysql://u:pw@h/db?ssl_cipher=AES128", `parameter "ssl_cipher": cipher lists are not configurable`},
		{"ssl_verify_cert", "mysql+pymysql://u:pw@h/db?ssl_verify_cert=true", `parameter "ssl_verify_cert": not supported`},
		{"ssl_mode", "mysql+mysqldb://u:pw@h/db?ssl_mode=REQUIRED", `parameter "ssl_mode"`},
		{"duplicate", "mysql+pymysql://u:pw@h/db?charset=utf8&charset=latin1", `parameter "charset" is given twice`},
		{"bad port", "mysql+pymysql://u:pw@h:99999/db", "malformed port"},
		{"no database", "mysql+pymysql://u:pw@h", "no database name"},
		{"no user", "mysql+pymysql://h/db", "no user name"},
		{"bad charset", "mysql+pymysql://u:pw@h/db?charset=utf8;DROP", "not a character set name"},
		{"relative socket", "mysql+pymysql://u:pw@/db?unix_socket=mysql.sock", "absolute path"},
		{"bad timeout", "mysql+pymysql://u:pw@h/db?read_timeout=soon", `"read_timeout": want whole seconds`},
		{"bad boolean", "mysql+pymysql://u:pw@h/db?ssl_ca=/etc/ssl/ca.pem&ssl_check_hostname=maybe", `"ssl_check_hostname": want true or false`},
		{"check_hostname alone", "mysql+pymysql://u:pw@h/db?ssl_check_hostname=true", "without ssl_ca has no effect"},
		{"missing CA file", "mysql+pymysql://u:pw@h/db?ssl_ca=/nowhere/ca.pem", "CA certificates"},
		{"key without cert", "mysql+pymysql://u:pw@h/db?ssl_key=/etc/ssl/ca.pem", `"ssl_key" needs ssl_cert`},
		{"CA file without PEM", "mysql+pymysql://u:pw@h/db?ssl_ca=/etc/my-port.cnf", "no PEM certificate"},
		{"missing option file", "mysql+pymysql://u:pw@h/db?read_default_file=/etc/none.cnf", "read_default_file /etc/none.cnf: file does not exist"},
		{"relative option file", "mysql+pymysql://u:pw@h/db?read_default_file=my.cnf", "want an absolute path"},
		{"option file include", "mysql+pymysql://u:pw@h/db?read_default_file=/etc/my-include.cnf", "!include and !includedir are not followed"},
		{"option file cipher", "mysql+pymysql://u:pw@h/db?read_default_file=/etc/my-cipher.cnf", "ssl-cipher"},
		{"option file without the group", "mysql+pymysql://u:pw@h/db?read_default_file=/etc/my-noclient.cnf", "no [client] group"},
		{"option file bad port", "mysql+pymysql://u:pw@h/db?read_default_file=/etc/my-port.cnf", "port is not a port number"},
		{"group without file", "mysql+pymysql://u:pw@h/db?read_default_group=client", "needs read_default_file"},
		{"unencoded at sign", "mysql+pymysql://u:p@ss@h/db", `percent-encode "@"`},
		{"bad percent in password", "mysql+pymysql://u:p%zz@h/db", "malformed percent-encoding in the password"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseURL(tt.url, files.read)
			if err == nil {
				t.Fatalf("parseURL(%q) accepted", tt.url)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("parseURL(%q) = %v; want %q in it", tt.url, err, tt.want)
			}
		})
	}
}

// TestErrorsHidePassword: no refusal shows the password, or a piece of
// one written without percent-encoding.
func TestErrorsHidePassword(t *testing.T) {
	const secret = "Tr0ub4dor"
	files := testFiles{"/etc/bad.cnf": "[client]\npassword = " + secret + "\n[" + secret + "\n", "/etc/bad.pem": secret}
	for _, u := range []string{
		"mysql+pymysql://u:" + secret + "@h/db?sslmode=1",
		"mysql+pymysql://u:x@" + secret + "@h/db",
		"mysql+pymysql://u:" + secret + "@h:0/db",
		"mysql+pymysql://u:" + secret + "%zz@h/db",
		"mysql+pymysql://u:" + secret + "@h/db?" + secret + "@x=1",
		"mysql+pymysql://u:" + secret + "@h/db?read_default_file=/etc/bad.cnf",
		"mysql+pymysql://u:" + secret + "@h/db?ssl_ca=/etc/bad.pem",
		"mysql+pymysql://u:" + secret + "@h/db?ssl_cert=/etc/bad.pem",
	} {
		_, err := parseURL(u, files.read)
		if err == nil {
			t.Errorf("parseURL(%q) accepted", u)
			continue
		}
		if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "Tr0ub") {
			t.Errorf("parseURL(%q) error shows the password: %v", u, err)
		}
	}
}

func TestIsMySQLURL(t *testing.T) {
	for v, want := range map[string]bool{
		"mysql://u@h/db": true, "mysql+pymysql://x": true, "MARIADB+mysqldb://": true,
		"postgresql://u@h/db": false, "mysql": false, "sqlite://": false, "mysqlx://h": false,
	} {
		if got := IsMySQLURL(v); got != want {
			t.Errorf("IsMySQLURL(%q) = %v; want %v", v, got, want)
		}
	}
}
