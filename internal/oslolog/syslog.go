package oslolog

import (
	"fmt"
	"log/slog"
	"log/syslog"
	"strings"
)

// Facility is a syslog facility number (LOG_USER is 1).
type Facility int

var facilities = map[string]syslog.Priority{
	"LOG_KERN": syslog.LOG_KERN, "LOG_USER": syslog.LOG_USER, "LOG_MAIL": syslog.LOG_MAIL,
	"LOG_DAEMON": syslog.LOG_DAEMON, "LOG_AUTH": syslog.LOG_AUTH, "LOG_SYSLOG": syslog.LOG_SYSLOG,
	"LOG_LPR": syslog.LOG_LPR, "LOG_NEWS": syslog.LOG_NEWS, "LOG_UUCP": syslog.LOG_UUCP,
	"LOG_CRON": syslog.LOG_CRON, "LOG_AUTHPRIV": syslog.LOG_AUTHPRIV, "LOG_FTP": syslog.LOG_FTP,
	"LOG_LOCAL0": syslog.LOG_LOCAL0, "LOG_LOCAL1": syslog.LOG_LOCAL1, "LOG_LOCAL2": syslog.LOG_LOCAL2,
	"LOG_LOCAL3": syslog.LOG_LOCAL3, "LOG_LOCAL4": syslog.LOG_LOCAL4, "LOG_LOCAL5": syslog.LOG_LOCAL5,
	"LOG_LOCAL6": syslog.LOG_LOCAL6, "LOG_LOCAL7": syslog.LOG_LOCAL7,
}

// ParseFacility reads syslog_log_facility as oslo.log does: a name such
// as LOG_LOCAL0, case-insensitive, the LOG_ prefix optional. Empty is
// LOG_USER, oslo's default.
func ParseFacility(name string) (Facility, error) {
	if name == "" {
		return Facility(syslog.LOG_USER >> 3), nil
	}
	n := strings.ToUpper(name)
	if !strings.HasPrefix(n, "LOG_") {
		n = "LOG_" + n
	}
	p, ok := facilities[n]
	if !ok {
		return 0, fmt.Errorf("syslog_log_facility = %q: not a syslog facility (LOG_USER, LOG_DAEMON, LOG_LOCAL0 to LOG_LOCAL7, ...)", name)
	}
	return Facility(p >> 3), nil
}

type syslogWriter struct{ w *syslog.Writer }

// dialSyslog connects to the local syslog daemon (network and addr
// empty) or to addr.
func dialSyslog(network, addr string, facility Facility, tag string) (*syslogWriter, error) {
	w, err := syslog.Dial(network, addr, syslog.Priority(facility<<3)|syslog.LOG_INFO, tag)
	if err != nil {
		return nil, fmt.Errorf("use_syslog: %w", err)
	}
	return &syslogWriter{w}, nil
}

func (s *syslogWriter) write(l slog.Level, line string) error {
	switch {
	case l < slog.LevelInfo:
		return s.w.Debug(line)
	case l < slog.LevelWarn:
		return s.w.Info(line)
	case l < slog.LevelError:
		return s.w.Warning(line)
	case l < LevelCritical:
		return s.w.Err(line)
	}
	return s.w.Crit(line)
}

func (s *syslogWriter) Close() error { return s.w.Close() }
