// Command demo is the helper behind `make run` (test/demo/run.sh). It
// plans the demo fleet, serves the member servers, and draws the live
// summary; run.sh starts and stops the processes.
//
//	demo plan    --dir DIR --db URL [--lbs 20]   write configs, LB descriptions, seed.sql
//	demo members --topology FILE                 serve every member's local HTTP server
//	demo wait    --url URL [--pid PID]           wait until a URL answers
//	demo watch   --topology FILE ...             run the story, draw the summary
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: demo plan|members|wait|watch [flags]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	cmds := map[string]func(context.Context, []string) (int, error){
		"plan": planCmd, "members": membersCmd, "wait": waitCmd, "watch": watchCmd,
	}
	cmd, ok := cmds[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "demo: unknown command %q\n", os.Args[1])
		os.Exit(2)
	}
	code, err := cmd(ctx, os.Args[2:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo "+os.Args[1]+":", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// freePort asks the kernel for a free loopback port of a network.
func freePort(network string) (int, error) {
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port, nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func planCmd(_ context.Context, args []string) (int, error) {
	fs := flag.NewFlagSet("plan", flag.ContinueOnError)
	dir := fs.String("dir", "", "directory to write the fleet into (emptied first)")
	db := fs.String("db", "", "PostgreSQL URL of the demo database")
	lbs := fs.Int("lbs", 20, "number of load balancers")
	if err := fs.Parse(args); err != nil {
		return 2, nil
	}
	if *dir == "" || *db == "" || *lbs < 17 {
		return 2, errors.New("want --dir, --db and --lbs of at least 17 (the story uses lb-17)")
	}
	// Ports are picked now and bound later; a kernel-chosen ephemeral port
	// is not handed out again soon, so the window is harmless here.
	var portErr error
	taken := map[int]bool{}
	ports := func() int {
		for {
			p, err := freePort("tcp")
			if err != nil {
				portErr = err
				return 0
			}
			if !taken[p] {
				taken[p] = true
				return p
			}
		}
	}
	t := Plan(*lbs, ports)
	t.DB = *db
	metricsPort := ports()
	udp, err := freePort("udp")
	if err != nil {
		return 1, err
	}
	t.HMUDPPort = udp
	if portErr != nil {
		return 1, portErr
	}
	if err := os.RemoveAll(*dir); err != nil {
		return 1, err
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return 1, err
	}
	return 0, WriteFleet(*dir, &t, metricsPort)
}

func loadTopology(path string) (*Topology, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var t Topology
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &t, nil
}

func membersCmd(ctx context.Context, args []string) (int, error) {
	fs := flag.NewFlagSet("members", flag.ContinueOnError)
	topo := fs.String("topology", "", "topology.json written by plan")
	if err := fs.Parse(args); err != nil {
		return 2, nil
	}
	t, err := loadTopology(*topo)
	if err != nil {
		return 1, err
	}
	return 0, serveMembers(ctx, t.Members(), slog.New(slog.NewTextHandler(os.Stderr, nil)))
}

func waitCmd(ctx context.Context, args []string) (int, error) {
	fs := flag.NewFlagSet("wait", flag.ContinueOnError)
	url := fs.String("url", "", "URL that must answer")
	timeout := fs.Duration("timeout", time.Minute, "give up after this long")
	pid := fs.Int("pid", 0, "give up as soon as this process (the server) has exited")
	if err := fs.Parse(args); err != nil {
		return 2, nil
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
		if err != nil {
			return 2, err
		}
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return 0, nil
		}
		if *pid > 0 && syscall.Kill(*pid, 0) != nil {
			return 1, fmt.Errorf("process %d exited before %s answered", *pid, *url)
		}
		select {
		case <-ctx.Done():
			return 1, fmt.Errorf("%s did not answer within %s", *url, *timeout)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func watchCmd(ctx context.Context, args []string) (int, error) {
	fs := flag.NewFlagSet("watch", flag.ContinueOnError)
	topo := fs.String("topology", "", "topology.json written by plan")
	var o watchOptions
	fs.DurationVar(&o.Interval, "interval", 2*time.Second, "redraw period")
	fs.DurationVar(&o.LineEvery, "line-every", 10*time.Second, "period of the plain summary line when stdout is not a terminal")
	fs.DurationVar(&o.Duration, "duration", 0, "stop after this long and check the story (0: run until interrupted)")
	fs.DurationVar(&o.DrainAfter, "drain-after", 20*time.Second, "when to drain the drained member")
	fs.DurationVar(&o.SilenceAfter, "silence-after", 30*time.Second, "when to stop the silent amphora's agent")
	fs.IntVar(&o.SilentPID, "silent-pid", 0, "pid of the silent amphora's agent")
	fs.IntVar(&o.HMPID, "hm-pid", 0, "pid of the health manager")
	fs.StringVar(&o.AgentBin, "agent-bin", "amphora-agent", "amphora-agent binary")
	if err := fs.Parse(args); err != nil {
		return 2, nil
	}
	t, err := loadTopology(*topo)
	if err != nil {
		return 1, err
	}
	db, err := pgxpool.New(ctx, t.DB)
	if err != nil {
		return 1, err
	}
	defer db.Close()
	o.TTY = isTerminal(os.Stdout)
	w := &watcher{
		topo: t, db: db, out: os.Stdout, opt: o, story: NewStory(t),
		http: &http.Client{Timeout: 3 * time.Second},
	}
	return w.run(ctx), nil
}
