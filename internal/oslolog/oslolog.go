// Package oslolog sets up both programs' logging from oslo.log's options
// ([DEFAULT] debug, log_file, log_dir, use_stderr, use_json, use_journal,
// use_syslog, syslog_log_facility and their command-line flags), so that
// an operator's logging settings work as they do for every other
// OpenStack service (docs/configuration.md#logging).
//
// Where the lines go follows oslo.log: to the file log_dir/log_file when
// either is set; to the journal when use_journal is set; to standard
// error when neither (oslo uses standard output there) or when
// use_stderr is set; and to syslog as well when use_syslog is set. Level
// names are oslo's: DEBUG, INFO, WARNING, ERROR, CRITICAL.
package oslolog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/octavia-vpp/health/internal/octaviaconf"
)

// LevelCritical is oslo's CRITICAL, above ERROR (the journal's and
// syslog's "crit").
const LevelCritical = slog.LevelError + 1

// DefaultJournalSocket is where journald takes native messages.
const DefaultJournalSocket = "/run/systemd/journal/socket"

// Options are the oslo.log settings, after the command-line flags have
// overridden the config file's.
type Options struct {
	// Program names the default log file (log_dir without log_file) and
	// the syslog tag.
	Program string
	// Debug is [DEFAULT] debug or --debug.
	Debug bool
	octaviaconf.Logging
	// Format is --log-format: "text" (or empty) or "json"; "json" is the
	// same as use_json.
	Format string
	// Stderr is where standard-error lines go; nil means os.Stderr.
	Stderr io.Writer

	// syslogNetwork and syslogAddr point the syslog output somewhere
	// other than the local daemon (tests).
	syslogNetwork, syslogAddr string
}

// Logger is a configured slog.Logger with the means to reopen its file.
type Logger struct {
	*slog.Logger
	// Level is the level of every output; change it to change them all.
	Level *slog.LevelVar
	// Path is the log file, empty when there is none.
	Path string
	// Journal reports whether lines go to the journal.
	Journal bool

	file    *reopener
	closers []io.Closer
}

// New builds the logger opts describe. Any error is a configuration the
// operator must fix: a log file that cannot be opened, an unknown syslog
// facility, a syslog daemon that cannot be reached.
func New(opts Options) (*Logger, error) {
	switch opts.Format {
	case "", "text":
	case "json":
		opts.UseJSON = true
	default:
		return nil, fmt.Errorf("--log-format must be text or json, not %q", opts.Format)
	}
	l := &Logger{Level: new(slog.LevelVar)}
	if opts.Debug {
		l.Level.Set(slog.LevelDebug)
	}
	stderr := opts.Stderr
	if stderr == nil {
		stderr = os.Stderr
	}
	facility, err := ParseFacility(opts.SyslogLogFacility)
	if err != nil {
		return nil, err
	}
	// format is the text or JSON handler; syslog stamps its own time.
	format := func(w io.Writer, withTime bool) slog.Handler {
		ho := &slog.HandlerOptions{Level: l.Level, ReplaceAttr: ReplaceLevel}
		if !withTime {
			ho.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
				if len(groups) == 0 && a.Key == slog.TimeKey {
					return slog.Attr{}
				}
				return ReplaceLevel(groups, a)
			}
		}
		if opts.UseJSON {
			return slog.NewJSONHandler(w, ho)
		}
		return slog.NewTextHandler(w, ho)
	}

	var handlers []slog.Handler
	var notes []string // said once the logger exists
	l.Path = FilePath(opts.LogFile, opts.LogDir, opts.Program)
	if l.Path != "" {
		f, err := openReopener(l.Path)
		if err != nil {
			return nil, err
		}
		l.file = f
		l.closers = append(l.closers, f)
		handlers = append(handlers, format(f, true))
	}
	useStderr := opts.UseStderr
	if opts.UseJournal {
		h, err := newJournalHandler(l.Level, facility)
		switch {
		case err == nil:
			l.Journal = true
			handlers = append(handlers, h)
		case l.Path == "":
			// Lines must go somewhere: standard error, which systemd
			// sends to the journal anyway.
			useStderr = true
			notes = append(notes, fmt.Sprintf("use_journal: %v; logging to standard error", err))
		default:
			notes = append(notes, fmt.Sprintf("use_journal: %v; logging to %s only", err, l.Path))
		}
	}
	if useStderr || (l.Path == "" && !opts.UseJournal) {
		handlers = append(handlers, format(stderr, true))
	}
	if opts.UseSyslog {
		w, err := dialSyslog(opts.syslogNetwork, opts.syslogAddr, facility, opts.Program)
		if err != nil {
			l.Close()
			return nil, err
		}
		l.closers = append(l.closers, w)
		handlers = append(handlers, newLineHandler(func(w io.Writer) slog.Handler { return format(w, false) }, w.write))
	}
	if len(handlers) == 1 {
		l.Logger = slog.New(handlers[0])
	} else {
		l.Logger = slog.New(slog.NewMultiHandler(handlers...))
	}
	for _, n := range notes {
		l.Warn(n)
	}
	return l, nil
}

// FilePath is oslo.log's log file: log_file inside log_dir (unless
// log_file is absolute, as Python's os.path.join has it), log_file alone,
// <program>.log inside log_dir alone, or nothing.
func FilePath(logFile, logDir, program string) string {
	switch {
	case logFile != "" && logDir != "" && !filepath.IsAbs(logFile):
		return filepath.Join(logDir, logFile)
	case logFile != "":
		return logFile
	case logDir != "":
		return filepath.Join(logDir, program+".log")
	}
	return ""
}

// Reopen opens the log file again by its name, so that after logrotate
// has renamed it the next lines go to a new file (SIGHUP). Without a log
// file it does nothing.
func (l *Logger) Reopen() error {
	if l.file == nil {
		return nil
	}
	return l.file.reopen()
}

// Close closes the log file and the syslog connection.
func (l *Logger) Close() error {
	var errs []error
	for _, c := range l.closers {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

// LevelName is oslo's name of a level.
func LevelName(l slog.Level) string {
	switch {
	case l < slog.LevelInfo:
		return "DEBUG"
	case l < slog.LevelWarn:
		return "INFO"
	case l < slog.LevelError:
		return "WARNING"
	case l < LevelCritical:
		return "ERROR"
	}
	return "CRITICAL"
}

// ReplaceLevel is a slog.HandlerOptions.ReplaceAttr that writes levels
// by oslo's names, for a handler made elsewhere.
func ReplaceLevel(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.LevelKey {
		if l, ok := a.Value.Any().(slog.Level); ok {
			return slog.String(slog.LevelKey, LevelName(l))
		}
	}
	return a
}

// reopener is a log file that can be opened again under its name.
type reopener struct {
	path string
	mu   sync.Mutex
	f    *os.File
}

func openReopener(path string) (*reopener, error) {
	r := &reopener{path: path}
	if err := r.reopen(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *reopener) reopen() error {
	f, err := os.OpenFile(r.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("log file: %w", err)
	}
	r.mu.Lock()
	old := r.f
	r.f = f
	r.mu.Unlock()
	if old != nil {
		return old.Close()
	}
	return nil
}

func (r *reopener) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.f.Write(p)
}

func (r *reopener) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.f.Close()
}

// lineHandler formats each record with a text or JSON handler and hands
// the line, with its level, to emit (syslog takes a priority per line).
type lineHandler struct {
	inner slog.Handler
	buf   *lineBuffer
	emit  func(slog.Level, string) error
}

type lineBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *lineBuffer) Write(p []byte) (int, error) { return b.b.Write(p) }

func newLineHandler(format func(io.Writer) slog.Handler, emit func(slog.Level, string) error) *lineHandler {
	buf := &lineBuffer{}
	return &lineHandler{inner: format(buf), buf: buf, emit: emit}
}

func (h *lineHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.inner.Enabled(ctx, l) }

func (h *lineHandler) Handle(ctx context.Context, r slog.Record) error {
	h.buf.mu.Lock()
	defer h.buf.mu.Unlock()
	h.buf.b.Reset()
	if err := h.inner.Handle(ctx, r); err != nil {
		return err
	}
	return h.emit(r.Level, strings.TrimSuffix(h.buf.b.String(), "\n"))
}

func (h *lineHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &lineHandler{inner: h.inner.WithAttrs(attrs), buf: h.buf, emit: h.emit}
}

func (h *lineHandler) WithGroup(name string) slog.Handler {
	return &lineHandler{inner: h.inner.WithGroup(name), buf: h.buf, emit: h.emit}
}
