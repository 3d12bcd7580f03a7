package manager

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/octavia-vpp/health/internal/mysqlconf"
)

// startAttemptTimeout bounds one attempt to reach the database at start,
// so that an address that drops packets counts as a failed attempt too.
const startAttemptTimeout = 10 * time.Second

// ErrDatabaseUnreachable is WaitForDatabase's error (and so Run's) when
// the database did not answer within [database] max_retries attempts.
var ErrDatabaseUnreachable = errors.New("database not reachable at start")

// DatabaseWait says how WaitForDatabase tries: [database] max_retries and
// retry_interval, as oslo.db reads them.
type DatabaseWait struct {
	// Ping asks the database for an answer; nil: there is none to wait for.
	Ping func(context.Context) error
	// Where is [database] connection, redacted (octaviaconf.RedactURL).
	Where string
	// MaxRetries is how many attempts are made at most; -1 (or 0, which
	// callers handle before, as oslo.db makes no attempt then) is no
	// limit.
	MaxRetries    int
	RetryInterval time.Duration
	Logger        *slog.Logger
	// quiet logs failures at DEBUG instead of WARNING (serve's READY wait
	// with max_retries 0, where oslo.db would not try at all).
	quiet bool
}

// WaitForDatabase pings until the database answers, as oslo.db's engine
// tests its connection at start: attempts retry_interval apart (each
// bounded by startAttemptTimeout), a WARNING naming the redacted URL and
// the attempts left after each failure, and ErrDatabaseUnreachable after
// the last. Every failure is retried, except a server refused for good
// (mysqlconf.ErrServerTooOld). It returns nil when ctx ends first.
func WaitForDatabase(ctx context.Context, w DatabaseWait) error {
	if w.Ping == nil {
		return nil
	}
	log := w.Logger
	if log == nil {
		log = slog.Default()
	}
	for attempt := 1; ; attempt++ {
		start := time.Now()
		attemptCtx, cancel := context.WithTimeout(ctx, startAttemptTimeout)
		err := w.Ping(attemptCtx)
		cancel()
		if err == nil {
			if attempt > 1 {
				log.Info("database reachable", "database", w.Where, "attempts", attempt)
			}
			return nil
		}
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, mysqlconf.ErrServerTooOld) {
			return fmt.Errorf("[database] connection %s: %w", w.Where, err)
		}
		if w.MaxRetries > 0 && attempt >= w.MaxRetries {
			return fmt.Errorf("%w: %s did not answer %d attempt(s) %s apart ([database] max_retries, retry_interval): %v",
				ErrDatabaseUnreachable, w.Where, attempt, w.RetryInterval, err)
		}
		left := "unlimited"
		if w.MaxRetries > 0 {
			left = strconv.Itoa(w.MaxRetries - attempt)
		}
		level := slog.LevelWarn
		if w.quiet {
			level = slog.LevelDebug
		}
		log.Log(ctx, level, "database not reachable at start; retrying", "database", w.Where,
			"attempt", attempt, "attempts_left", left, "retry_interval", w.RetryInterval, "err", err)
		// Attempts start retry_interval apart: a slow failure has already
		// waited part of the pause.
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(max(w.RetryInterval-time.Since(start), 0)):
		}
	}
}
