package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// memberServer is one member's local HTTP server. While its behaviour says
// "down" it answers 503 (Answer503) or stops listening altogether
// (Refuse), so TCP and HTTP health checks both see it fail.
type memberServer struct {
	m    Member
	log  *slog.Logger
	down atomic.Bool

	mu  sync.Mutex
	srv *http.Server // nil while refusing
}

func (s *memberServer) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	if s.down.Load() {
		http.Error(w, s.m.ID+" is failing on purpose\n", http.StatusServiceUnavailable)
		return
	}
	io.WriteString(w, "ok "+s.m.ID+"\n")
}

func (s *memberServer) listen() error {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(s.m.LocalPort)))
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second}
	// A fresh connection per probe, so refusing takes effect at once.
	srv.SetKeepAlivesEnabled(false)
	s.mu.Lock()
	s.srv = srv
	s.mu.Unlock()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("member server stopped", "member", s.m.ID, "reason", err.Error())
		}
	}()
	return nil
}

func (s *memberServer) close() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// set applies the behaviour at elapsed time t.
func (s *memberServer) set(t time.Duration) {
	down := s.m.Behaviour.DownAt(t)
	if s.down.Swap(down) == down {
		return
	}
	s.log.Info("member server", "member", s.m.ID, "port", s.m.LocalPort, "failing", down, "how", s.m.Behaviour.Kind)
	if s.m.Behaviour.Kind != Refuse {
		return
	}
	if down {
		s.close()
		return
	}
	if err := s.listen(); err != nil {
		s.log.Error("member server cannot listen again", "member", s.m.ID, "reason", err.Error())
		s.down.Store(true) // try again at the next tick
	}
}

// serveMembers runs every member's server until ctx ends.
func serveMembers(ctx context.Context, members []Member, log *slog.Logger) error {
	servers := make([]*memberServer, 0, len(members))
	defer func() {
		for _, s := range servers {
			s.close()
		}
	}()
	for _, m := range members {
		s := &memberServer{m: m, log: log}
		if err := s.listen(); err != nil {
			return fmt.Errorf("member %s: %w", m.ID, err)
		}
		servers = append(servers, s)
	}
	log.Info("member servers listening", "count", len(servers))
	start := time.Now()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			t := time.Since(start)
			for _, s := range servers {
				s.set(t)
			}
		}
	}
}
