package mysqlconf

import (
	"strings"
	"testing"
)

func TestCheckServerVersion(t *testing.T) {
	tests := []struct {
		version string
		want    string // "" accepted, else a piece of the refusal
	}{
		{"10.11.6-MariaDB-0+deb12u1-log", ""},
		{"10.6.0-MariaDB", ""},
		{"10.6.16-MariaDB-log", ""},
		{"11.4.2-MariaDB", ""},
		{"5.5.5-10.11.6-MariaDB", ""},
		{"8.0.36", ""},
		{"8.0.36-28", ""},
		{"8.4.0", ""},
		{"9.1.0", ""},
		{"10.5.21-MariaDB", "MariaDB 10.5.21"},
		{"10.3.39-MariaDB-0+deb10u1", "needs MariaDB 10.6 or later, or MySQL 8.0 or later"},
		{"5.5.5-10.5.21-MariaDB", "MariaDB 10.5.21"},
		{"5.7.44-log", "MySQL 5.7.44"},
		{"5.6.51", "refusing to start"},
		{"", "not a MySQL or MariaDB version"},
		{"garbage", "not a MySQL or MariaDB version"},
		{"99999999999999999999.1", "not a MySQL or MariaDB version"},
	}
	for _, tt := range tests {
		err := CheckServerVersion(tt.version)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("CheckServerVersion(%q) = %v; want accepted", tt.version, err)
		case tt.want != "" && err == nil:
			t.Errorf("CheckServerVersion(%q) accepted; want a refusal with %q", tt.version, tt.want)
		case tt.want != "" && !strings.Contains(err.Error(), tt.want):
			t.Errorf("CheckServerVersion(%q) = %v; want %q in it", tt.version, err, tt.want)
		}
	}
}

func TestParseServerVersion(t *testing.T) {
	v, err := ParseServerVersion("10.11.6-MariaDB-0+deb12u1-log")
	if err != nil || !v.MariaDB || v.Major != 10 || v.Minor != 11 || v.Patch != 6 {
		t.Fatalf("got %+v, %v", v, err)
	}
	v, err = ParseServerVersion("8.0")
	if err != nil || v.MariaDB || v.Major != 8 || v.Minor != 0 || v.String() != "MySQL 8.0.0" {
		t.Fatalf("got %+v, %v", v, err)
	}
}
