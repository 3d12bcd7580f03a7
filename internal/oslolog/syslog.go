package oslolog

import (
	"fmt"
	"log/slog"
	"log/syslog"

	"github.com/octavia-vpp/health/internal/octaviaconf"
)

// Facility is a syslog facility number (LOG_USER is 1).
type Facility int

// ParseFacility reads syslog_log_facility as oslo.log does
// (octaviaconf.SyslogFacility).
func ParseFacility(name string) (Facility, error) {
	f, err := octaviaconf.SyslogFacility(name)
	return Facility(f), err
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
