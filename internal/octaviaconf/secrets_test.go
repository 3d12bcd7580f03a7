package octaviaconf

import (
	"log/slog"
	"strings"
	"testing"
)

// TestErrorsHideSecrets holds the leaks FuzzLoad found: a bad value must
// not show a secret, whether it is the secret option itself, a database
// URL whose password holds "/" or "@", or another option that pulls a
// secret in through "$" substitution.
func TestErrorsHideSecrets(t *testing.T) {
	const secret = "Tr0ub4dor-and-3"
	tests := []struct {
		name, conf, option string
	}{
		{"key substituted into an address", "[health_manager]\nheartbeat_key = " + secret + "\nbind_ip = $heartbeat_key\n", "bind_ip"},
		{"password substituted into a port", "[service_auth]\npassword = " + secret + "\n[health_manager]\nbind_port = ${service_auth.password}\n", "bind_port"},
		{"URL substituted into a boolean", "[database]\nconnection = postgresql://u:" + secret + "@h/db\n[DEFAULT]\ndebug = ${database.connection}\n", "debug"},
		{"through a [DEFAULT] option", "[DEFAULT]\nhop = ${service_auth.password}\n[service_auth]\npassword = " + secret + "\n[health_manager]\nqueue_size = $hop\n", "queue_size"},
		{"previous keys substituted into a list", "[health_manager]\nheartbeat_key_previous = " + secret + "\ncontroller_ip_port_list = \"$heartbeat_key_previous\n", "controller_ip_port_list"},
		{"URL password with a slash", "[database]\nconnection = mysql://u:" + secret + "/x@h/db?bogus=1\n", "connection"},
		{"MySQL password with an unencoded at sign", "[database]\nconnection = mysql+pymysql://u:" + secret + "@x@h/db\n", "connection"},
		{"MySQL unknown parameter", "[database]\nconnection = mysql+pymysql://u:" + secret + "@h/db?sslmode=require\n", "connection"},
		{"MySQL bad port", "[database]\nconnection = mysql+pymysql://u:" + secret + "@h:0/db\n", "connection"},
		{"MySQL bad percent-encoding", "[database]\nconnection = mysql+pymysql://u:" + secret + "%zz@h/db\n", "connection"},
		{"MySQL missing option file", "[database]\nconnection = mysql+pymysql://u:" + secret + "@h/db?read_default_file=/nonexistent/my.cnf\n", "connection"},
		{"MySQL missing CA", "[database]\nconnection = mysql+pymysql://u:" + secret + "@h/db?ssl_ca=/nonexistent/ca.pem\n", "connection"},
		{"URL password with an at sign", "[database]\nconnection = sqlite://u:" + secret + "@x@h/db\n", "connection"},
		{"reference inside a key", "[health_manager]\nheartbeat_key = x$" + strings.ReplaceAll(secret, "-", "_") + "\n", "heartbeat_key"},
		{"reference inside a URL", "[database]\nconnection = postgresql://u:x$" + strings.ReplaceAll(secret, "-", "_") + "@h/db\n", "connection"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(slog.New(slog.DiscardHandler), writeConf(t, "octavia.conf", tt.conf))
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), "] "+tt.option+" = ") {
				t.Errorf("error does not name %s: %v", tt.option, err)
			}
			for _, piece := range []string{secret, "Tr0ub4dor", "and_3"} {
				if strings.Contains(err.Error(), piece) {
					t.Errorf("error shows %q: %v", piece, err)
				}
			}
		})
	}
}

func TestRedactURLPasswordSpecials(t *testing.T) {
	tests := []struct{ in, want string }{
		{"mysql://u:pa/ss@h/db", "mysql://u:***@h/db"},
		{"postgresql://u:p@ss@h/db", "postgresql://u:***@h/db"},
		{"postgresql://u:p:ss@h:5432/db", "postgresql://u:***@h:5432/db"},
		{"postgresql://h:5432/db", "postgresql://h:5432/db"},
	}
	for _, tt := range tests {
		if got := RedactURL(tt.in); got != tt.want {
			t.Errorf("RedactURL(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}

// TestMySQLConnectionKeepsPassword: an accepted MySQL URL yields the
// driver configuration with the password, and its redacted form hides it.
func TestMySQLConnectionKeepsPassword(t *testing.T) {
	const secret = "Tr0ub4dor-and-3"
	cfg, err := load(slog.New(slog.DiscardHandler), writeConf(t, "octavia.conf",
		"[database]\nconnection = mysql+pymysql://octavia:"+secret+"@db.example:3306/octavia?charset=utf8\n"))
	if err != nil {
		t.Fatal(err)
	}
	db := &cfg.Database
	if !db.IsMySQL() || db.MySQL.Passwd != secret || db.MySQL.Addr != "db.example:3306" || db.MySQL.DBName != "octavia" {
		t.Fatalf("MySQL config %+v", db.MySQL)
	}
	if r := RedactURL(db.Connection); strings.Contains(r, "Tr0ub") {
		t.Errorf("RedactURL shows the password: %s", r)
	}
}
