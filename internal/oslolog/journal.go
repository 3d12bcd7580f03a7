package oslolog

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"

	slogjournal "github.com/systemd/slog-journal"
)

// journalUsable tells whether a journald socket is at path.
func journalUsable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("no journal: %w", err)
	}
	if fi.Mode().Type() != os.ModeSocket {
		return fmt.Errorf("no journal: %s is not a socket", path)
	}
	return nil
}

// newJournalHandler sends records to journald in its native protocol:
// MESSAGE, PRIORITY, SYSLOG_IDENTIFIER, CODE_FILE/LINE/FUNC, and every
// attribute as a field of its name upper-cased (journald takes only
// [A-Z0-9_] names), as oslo.log's journal handler does, with its
// LOGGER_LEVEL and SYSLOG_FACILITY.
func newJournalHandler(level slog.Leveler, facility Facility) (slog.Handler, error) {
	if err := journalUsable(DefaultJournalSocket); err != nil {
		return nil, err
	}
	h, err := slogjournal.NewHandler(&slogjournal.Options{
		Level: level,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			a.Key = journalField(a.Key)
			return a
		},
		ReplaceGroup: journalField,
	})
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	return &journalLevel{h.WithAttrs([]slog.Attr{slog.Int("SYSLOG_FACILITY", int(facility))})}, nil
}

// journalField makes a journal field name of an attribute key: upper
// case, [A-Z0-9_] only, never starting with "_" (journald keeps those
// for itself) or a digit.
func journalField(key string) string {
	b := []byte(strings.ToUpper(key))
	for i, c := range b {
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			b[i] = '_'
		}
	}
	if len(b) == 0 || b[0] == '_' || b[0] >= '0' && b[0] <= '9' {
		return "F_" + string(b)
	}
	return string(b)
}

// journalLevel adds oslo's LOGGER_LEVEL field, the level's name.
type journalLevel struct{ slog.Handler }

func (h *journalLevel) Handle(ctx context.Context, r slog.Record) error {
	r = r.Clone()
	r.AddAttrs(slog.String("LOGGER_LEVEL", LevelName(r.Level)))
	// The journal's priorities are syslog's: map ours onto the levels
	// the library knows.
	switch {
	case r.Level < slog.LevelInfo:
		r.Level = slog.LevelDebug
	case r.Level < slog.LevelWarn:
		r.Level = slog.LevelInfo
	case r.Level < slog.LevelError:
		r.Level = slog.LevelWarn
	case r.Level < LevelCritical:
		r.Level = slog.LevelError
	default:
		r.Level = slogjournal.LevelCritical
	}
	return h.Handler.Handle(ctx, r)
}

func (h *journalLevel) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &journalLevel{h.Handler.WithAttrs(attrs)}
}

func (h *journalLevel) WithGroup(name string) slog.Handler {
	return &journalLevel{h.Handler.WithGroup(name)}
}
