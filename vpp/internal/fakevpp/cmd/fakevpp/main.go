// Command fakevpp runs the project's fake VPP (package fakevpp) on a real
// unix api.sock as a process of its own, for end-to-end tests that run the
// amphora-agent binary against it. It is a test tool: it is not installed.
//
// It prints "ready" once the socket listens, then reads one command per
// line on stdin and answers "ok <command>" (or "error <command>: <why>"):
//
//	stop    close every connection and remove the socket (VPP exits)
//	start   listen again as a fresh VPP (the lb state is gone)
//	resume  listen again with the lb state kept
//	hung    accept the socket handshake but answer nothing else
//	unhung  answer again
//	reboot  wipe the lb state behind the open socket
//
// It exits at the end of stdin or on SIGTERM.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/octavia-vpp/health/vpp/internal/fakevpp"
)

func main() {
	socket := flag.String("socket", "", "unix socket `PATH` to listen on (required)")
	flavor := flag.String("flavor", "master", "VPP version to pose as: master (weighted lb API) or released")
	flag.Parse()
	if *socket == "" {
		fmt.Fprintln(os.Stderr, "fakevpp: -socket is required")
		os.Exit(2)
	}
	fl := fakevpp.Master
	switch *flavor {
	case "master":
	case "released":
		fl = fakevpp.Released
	default:
		fmt.Fprintf(os.Stderr, "fakevpp: flavor %q: want master or released\n", *flavor)
		os.Exit(2)
	}
	srv, err := fakevpp.New(*socket, fl) // listens at once
	if err != nil {
		fmt.Fprintln(os.Stderr, "fakevpp:", err)
		os.Exit(1)
	}
	fmt.Println("ready")

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			lines <- strings.TrimSpace(sc.Text())
		}
	}()
	for {
		select {
		case <-sig:
			srv.Stop()
			return
		case cmd, ok := <-lines:
			if !ok {
				srv.Stop()
				return
			}
			if err := run(srv, cmd); err != nil {
				fmt.Printf("error %s: %v\n", cmd, err)
			} else {
				fmt.Printf("ok %s\n", cmd)
			}
		}
	}
}

func run(srv *fakevpp.Server, cmd string) error {
	switch cmd {
	case "stop":
		srv.Stop()
	case "start":
		return srv.Start()
	case "resume":
		return srv.Resume()
	case "hung":
		srv.SetHung(true)
	case "unhung":
		srv.SetHung(false)
	case "reboot":
		srv.Reboot()
	default:
		return fmt.Errorf("unknown command")
	}
	return nil
}
