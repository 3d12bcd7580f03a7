package manager

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"time"
)

// errPprofNotLoopback refuses a pprof_bind that could be reached from
// another host: profiles show the process's memory and command line.
var errPprofNotLoopback = errors.New("must be a loopback address such as 127.0.0.1:6060 or [::1]:6060: profiles expose the process's memory and command line")

// checkPprofBind accepts an empty address (off) or a literal loopback
// IP with a port. Host names are refused, as what they resolve to can
// change after the check.
func checkPprofBind(addr string) error {
	if addr == "" {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("[health_manager] pprof_bind %q: %w", addr, err)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.Unmap().IsLoopback() {
		return fmt.Errorf("[health_manager] pprof_bind %q: %w", addr, errPprofNotLoopback)
	}
	return nil
}

// listenPprof serves net/http/pprof under /debug/pprof/ on pprof_bind,
// which checkPprofBind has accepted; an empty address turns it off.
func (m *Manager) listenPprof(addr string) error {
	if addr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("[health_manager] pprof_bind %s: %v", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	// No write timeout: a CPU profile or trace streams for its ?seconds=.
	m.pprof = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	m.pprofAddr = ln.Addr()
	go func() {
		if err := m.pprof.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.log.Error("pprof server stopped", "err", err)
		}
	}()
	m.log.Info("serving profiles", "addr", m.pprofAddr.String()+"/debug/pprof/")
	return nil
}

// PprofAddr is pprof_bind's bound address, nil when it is off.
func (m *Manager) PprofAddr() net.Addr { return m.pprofAddr }
