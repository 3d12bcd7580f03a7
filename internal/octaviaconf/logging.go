package octaviaconf

import (
	"fmt"
	"strings"
)

// syslogFacilities are the facility numbers of the names oslo.log
// accepts for syslog_log_facility (RFC 5424's, LOG_USER is 1).
var syslogFacilities = map[string]int{
	"LOG_KERN": 0, "LOG_USER": 1, "LOG_MAIL": 2, "LOG_DAEMON": 3, "LOG_AUTH": 4, "LOG_SYSLOG": 5,
	"LOG_LPR": 6, "LOG_NEWS": 7, "LOG_UUCP": 8, "LOG_CRON": 9, "LOG_AUTHPRIV": 10, "LOG_FTP": 11,
	"LOG_LOCAL0": 16, "LOG_LOCAL1": 17, "LOG_LOCAL2": 18, "LOG_LOCAL3": 19,
	"LOG_LOCAL4": 20, "LOG_LOCAL5": 21, "LOG_LOCAL6": 22, "LOG_LOCAL7": 23,
}

// SyslogFacility reads syslog_log_facility as oslo.log does: a name such
// as LOG_LOCAL0, in any case, the LOG_ prefix optional; empty is
// LOG_USER, oslo's default. It returns the facility's number.
func SyslogFacility(name string) (int, error) {
	if name == "" {
		return syslogFacilities["LOG_USER"], nil
	}
	n := strings.ToUpper(name)
	if !strings.HasPrefix(n, "LOG_") {
		n = "LOG_" + n
	}
	f, ok := syslogFacilities[n]
	if !ok {
		return 0, fmt.Errorf("syslog_log_facility = %q: not a syslog facility (LOG_USER, LOG_DAEMON, LOG_LOCAL0 to LOG_LOCAL7, ...)", name)
	}
	return f, nil
}

// facility reads a syslog facility name (SyslogFacility).
func (r *reader) facility(section, option string, dst *string) bool {
	v, e, ok := r.raw(section, option, false)
	if !ok {
		return false
	}
	if _, err := SyslogFacility(v); err != nil {
		r.fail(e, section, option, v, "not a syslog facility (LOG_USER, LOG_DAEMON, LOG_LOCAL0 to LOG_LOCAL7, ...)")
		return false
	}
	*dst = v
	return true
}
