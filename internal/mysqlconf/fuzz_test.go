package mysqlconf

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzParseURL: any URL either parses or is refused, never a panic; a
// refusal never shows the password; an accepted URL yields the password
// and user it holds, decoded.
func FuzzParseURL(f *testing.F) {
	cert, key := selfSigned(f)
	files := testFiles{
		"/ca.pem": cert, "/key.pem": key,
		"/my.cnf": "[client]\nuser = u\npassword = 'pw'\nport = 3307\nsocket = /run/s.sock\n",
	}
	for _, s := range []struct{ user, password, rest string }{
		{"octavia", "secret", "@db/octavia"},
		{"octavia", "p@ss/w:rd", "@db:3306/octavia?charset=utf8"},
		{"o", "x", "@[::1]:3306/octavia?unix_socket=/run/mysqld/mysqld.sock"},
		{"o", "pw", "@h/db?ssl_ca=/ca.pem&ssl_cert=/ca.pem&ssl_key=/key.pem&ssl_check_hostname=false"},
		{"", "", "@/?read_default_file=/my.cnf"},
		{"o", "pw", "@h/db?charset=utf8&plugin=dbcounter&connect_timeout=3"},
		{"o", "pw", "@h/db?foo=bar&ssl_cipher=x"},
	} {
		f.Add("mysql+pymysql", s.user, s.password, s.rest)
	}
	f.Fuzz(func(t *testing.T, scheme, user, password, rest string) {
		raw := scheme + "://" + user + ":" + password + rest
		cfg, err := parseURL(raw, files.read)
		if err != nil {
			if len(password) >= 6 && strings.Contains(err.Error(), password) {
				t.Fatalf("parseURL(%q) error shows the password: %v", raw, err)
			}
			return
		}
		if !IsMySQLURL(raw) {
			t.Fatalf("parseURL(%q) accepted a URL that is not MySQL's", raw)
		}
		// Where the URL is a plain one, the parts must come back.
		if !strings.ContainsAny(user, ":/@%") && !strings.ContainsAny(password, "@%") && user != "" && password != "" &&
			strings.HasPrefix(rest, "@") {
			if cfg.User != user || cfg.Passwd != password {
				t.Fatalf("parseURL(%q): user %q password %q; want %q %q", raw, cfg.User, cfg.Passwd, user, password)
			}
		}
		// Percent-encoding round trip.
		enc := scheme + "://" + url.PathEscape(cfg.User) + ":" + url.PathEscape(cfg.Passwd) + "@h/db"
		if strings.Contains(cfg.User, ":") || strings.Contains(cfg.User, "/") {
			return
		}
		cfg2, err := parseURL(enc, files.read)
		if err == nil && (cfg2.User != cfg.User || cfg2.Passwd != cfg.Passwd) {
			t.Fatalf("re-encoded %q: user %q password %q; want %q %q", enc, cfg2.User, cfg2.Passwd, cfg.User, cfg.Passwd)
		}
	})
}
