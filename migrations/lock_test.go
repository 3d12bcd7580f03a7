package migrations_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/octavia-vpp/health/migrations"
	"github.com/octavia-vpp/health/test/pgtest"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestMigrateWaitsForLockAndNamesHolder: while another session holds the
// migration lock, Migrate waits, logging at every interval (5 s in
// production, shortened by export_test.go) the holder's PID; once the lock
// is released it migrates.
func TestMigrateWaitsForLockAndNamesHolder(t *testing.T) {
	t.Parallel()
	url := pgtest.NewEmptyDB(t)
	holderDB := open(t, url)
	holder, err := holderDB.Conn(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	var pid int64
	if err := holder.QueryRowContext(ctx(t), `SELECT pg_backend_pid(), pg_advisory_lock($1)`, migrations.LockID).Scan(&pid, new(any)); err != nil {
		t.Fatal(err)
	}

	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	type outcome struct {
		res *migrations.Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := migrations.Migrate(context.Background(), open(t, url), logger)
		done <- outcome{res, err}
	}()

	wantLine := fmt.Sprintf("holder_pid=%d", pid)
	deadline := time.After(time.Minute)
	for strings.Count(logs.String(), wantLine) < 3 {
		select {
		case o := <-done:
			t.Fatalf("Migrate returned while the lock was held: %+v, %v\n%s", o.res, o.err, logs.String())
		case <-deadline:
			t.Fatalf("no three wait lines naming %s:\n%s", wantLine, logs.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if strings.Contains(line, "waiting for the migration lock") && !strings.Contains(line, wantLine) {
			t.Errorf("wait line without the holder: %s", line)
		}
	}
	if _, err := holder.ExecContext(ctx(t), `SELECT pg_advisory_unlock($1)`, migrations.LockID); err != nil {
		t.Fatal(err)
	}
	o := <-done
	if o.err != nil || len(o.res.Applied) == 0 {
		t.Fatalf("Migrate after release = %+v, %v\n%s", o.res, o.err, logs.String())
	}
	if !strings.Contains(logs.String(), "took the migration lock") {
		t.Errorf("no line saying the lock was taken:\n%s", logs.String())
	}
	t.Logf("log:\n%s", logs.String())

	// Released afterwards: the holder's session can take it again at once.
	var got bool
	if err := holder.QueryRowContext(ctx(t), `SELECT pg_try_advisory_lock($1)`, migrations.LockID).Scan(&got); err != nil || !got {
		t.Errorf("migration lock still held after Migrate returned (err %v)", err)
	}
}
