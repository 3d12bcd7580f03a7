package statsdriver

import (
	"context"
	"log/slog"
)

// Logger is stats_logger: one INFO line per listener, nothing stored.
type Logger struct{ log *slog.Logger }

// NewLogger logs to log, or to slog.Default when nil.
func NewLogger(log *slog.Logger) *Logger {
	if log == nil {
		log = slog.Default()
	}
	return &Logger{log: log}
}

// Update logs each listener's statistics. Octavia's message starts
// "Logging listener stats", with " deltas" appended in delta mode.
func (l *Logger) Update(ctx context.Context, stats []ListenerStats, deltas bool) error {
	msg := "Logging listener stats"
	if deltas {
		msg += " deltas"
	}
	for i := range stats {
		s := &stats[i]
		l.log.InfoContext(ctx, msg,
			"listener_id", s.ListenerID, "amphora_id", s.AmphoraID,
			"bytes_in", s.BytesIn, "bytes_out", s.BytesOut,
			"active_connections", s.ActiveConnections, "total_connections", s.TotalConnections,
			"request_errors", s.RequestErrors)
	}
	return nil
}
