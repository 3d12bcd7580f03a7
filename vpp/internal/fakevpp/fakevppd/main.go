//go:build linux

// Command fakevppd runs the fake VPP as a process of its own: the binary
// API socket, the stats socket (VPP's shared-memory segment) and, on
// 127.0.0.1, a small HTTP control API for tests that run the agent as a
// separate process:
//
//	POST /traffic?flows=N&packets=P&bytes=B   N new flows to every VIP; replies what VPP counted
//	POST /stop      VPP exits (both sockets gone)
//	POST /start     a fresh VPP (empty lb state, new boot time, new stats segment)
//	POST /api-down  the API socket goes away while VPP keeps forwarding
//	POST /api-up    the API socket is back, same state
//
// It prints "fakevppd control=<addr>" on stderr once listening.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"

	"github.com/octavia-vpp/health/vpp/internal/fakevpp"
)

// counted is what one /traffic call made VPP count.
type counted struct {
	Flows      int    `json:"flows"`
	First      uint64 `json:"first"`
	NoServer   uint64 `json:"no_server"`
	RouteBytes uint64 `json:"route_bytes"`
	VIPs       int    `json:"vips"`
}

func main() {
	api := flag.String("api", "/run/vpp/api.sock", "binary API socket")
	stats := flag.String("stats", "/run/vpp/stats.sock", "stats socket")
	control := flag.String("control", "127.0.0.1:0", "control HTTP address")
	master := flag.Bool("master", true, "VPP master (weighted lb API) rather than a release")
	flag.Parse()
	flavor := fakevpp.Released
	if *master {
		flavor = fakevpp.Master
	}
	srv, err := fakevpp.New(*api, flavor)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fakevppd:", err)
		os.Exit(1)
	}
	ss := fakevpp.NewStatsSocket(srv, *stats)
	if err := ss.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "fakevppd: stats:", err)
		os.Exit(1)
	}
	var mu sync.Mutex // one control action at a time
	up, apiUp := true, true
	do := func(w http.ResponseWriter, f func() error) {
		mu.Lock()
		defer mu.Unlock()
		if err := f(); err != nil {
			http.Error(w, err.Error(), http.StatusConflict)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /traffic", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		n, _ := strconv.Atoi(q.Get("flows"))
		pkts, _ := strconv.ParseUint(q.Get("packets"), 10, 64)
		bytes, _ := strconv.ParseUint(q.Get("bytes"), 10, 64)
		mu.Lock()
		defer mu.Unlock()
		if !up {
			http.Error(w, "vpp is down", http.StatusConflict)
			return
		}
		m := srv.Model()
		f0, n0, b0 := m.Totals()
		keys := m.Keys()
		for _, k := range keys {
			if err := m.SendFlows(k, n, pkts, bytes); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
		}
		f1, n1, b1 := m.Totals()
		_ = ss.Refresh()
		_ = json.NewEncoder(w).Encode(counted{Flows: n * len(keys), First: f1 - f0, NoServer: n1 - n0, RouteBytes: b1 - b0, VIPs: len(keys)})
	})
	mux.HandleFunc("POST /stop", func(w http.ResponseWriter, r *http.Request) {
		do(w, func() error {
			srv.Stop()
			ss.Stop()
			up, apiUp = false, false
			return nil
		})
	})
	mux.HandleFunc("POST /start", func(w http.ResponseWriter, r *http.Request) {
		do(w, func() error {
			if up {
				return fmt.Errorf("vpp is up")
			}
			if err := srv.Start(); err != nil {
				return err
			}
			up, apiUp = true, true
			return ss.Start()
		})
	})
	mux.HandleFunc("POST /api-down", func(w http.ResponseWriter, r *http.Request) {
		do(w, func() error {
			srv.Stop()
			apiUp = false
			return nil
		})
	})
	mux.HandleFunc("POST /api-up", func(w http.ResponseWriter, r *http.Request) {
		do(w, func() error {
			if !up || apiUp {
				return fmt.Errorf("vpp down or api socket up")
			}
			apiUp = true
			return srv.Resume()
		})
	})
	ln, err := net.Listen("tcp", *control)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fakevppd: control:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "fakevppd control=%s\n", ln.Addr())
	go func() { _ = http.Serve(ln, mux) }()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	srv.Stop()
	ss.Stop()
}
