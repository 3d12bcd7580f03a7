package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// watchOptions drive the story and the summary.
type watchOptions struct {
	Interval     time.Duration // redraw period
	LineEvery    time.Duration // one plain line this often when stdout is not a terminal
	Duration     time.Duration // 0: until interrupted; else stop and judge
	DrainAfter   time.Duration
	SilenceAfter time.Duration
	SilentPID    int    // the silent amphora's agent
	HMPID        int    // the health manager; the demo stops if it dies
	AgentBin     string // amphora-agent, for the drain command
	TTY          bool
}

type watcher struct {
	topo  *Topology
	db    *pgxpool.Pool
	http  *http.Client
	out   io.Writer
	opt   watchOptions
	story *Story
}

// sample looks at the database and the health manager's metrics.
func (w *watcher) sample(ctx context.Context, at time.Duration) Sample {
	s := Sample{At: at, LBs: map[string]string{}, Members: map[string]string{}}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := w.readDB(ctx, &s); err != nil {
		s.DBErr = err.Error()
	}
	if text, code, err := w.get(ctx, w.topo.MetricsURL); err == nil && code == http.StatusOK {
		s.Metrics = true
		s.HeartbeatsAccepted = metricSum(text, "octavia_hm_heartbeats_accepted_total", "")
		s.HeartbeatsRejected = metricSum(text, "octavia_hm_heartbeats_rejected_total", "")
		s.DryRunFailovers = metricSum(text, "octavia_hm_failovers_total", `result="dry_run"`)
	}
	if _, code, err := w.get(ctx, w.topo.StatusURL); err == nil {
		s.StatusPage = code
	}
	return s
}

func (w *watcher) readDB(ctx context.Context, s *Sample) error {
	pairs := func(sql string, into map[string]string) error {
		rows, err := w.db.Query(ctx, sql)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id, st string
			if err := rows.Scan(&id, &st); err != nil {
				return err
			}
			into[id] = st
		}
		return rows.Err()
	}
	if err := pairs(`SELECT id, operating_status FROM load_balancer`, s.LBs); err != nil {
		return err
	}
	if err := pairs(`SELECT id, operating_status FROM member`, s.Members); err != nil {
		return err
	}
	// last_update is naive UTC, as Octavia writes it.
	rows, err := w.db.Query(ctx, `
		SELECT a.id, h.last_update IS NULL,
		       COALESCE(h.last_update < (now() AT TIME ZONE 'UTC') - make_interval(secs => $1), false)
		FROM amphora a LEFT JOIN amphora_health h ON h.amphora_id = a.id
		ORDER BY a.id`, w.topo.HeartbeatTimeout.Seconds())
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var unheard, stale bool
		if err := rows.Scan(&id, &unheard, &stale); err != nil {
			return err
		}
		switch {
		case unheard:
			s.Unheard = append(s.Unheard, id)
		case stale:
			s.Stale = append(s.Stale, id)
		}
	}
	return rows.Err()
}

func (w *watcher) get(ctx context.Context, url string) (string, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", 0, err
	}
	resp, err := w.http.Do(req)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	return string(b), resp.StatusCode, err
}

// metricSum adds up every series of a Prometheus text-format family whose
// labels contain filter.
func metricSum(text, name, filter string) float64 {
	sum := 0.0
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name)
		if !ok || rest == "" || (rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		labels := ""
		if rest[0] == '{' {
			end := strings.LastIndexByte(rest, '}')
			if end < 0 {
				continue
			}
			labels, rest = rest[:end+1], rest[end+1:]
		}
		if filter != "" && !strings.Contains(labels, filter) {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		if v, err := strconv.ParseFloat(fields[0], 64); err == nil {
			sum += v
		}
	}
	return sum
}

// drain marks the drained member with the agent's own CLI, as an operator
// would.
func (w *watcher) drain(ctx context.Context, at time.Duration) {
	cmd := exec.CommandContext(ctx, w.opt.AgentBin, "--config-file", w.topo.DrainConfig,
		"drain", w.topo.DrainedMember, "--reason", "demo: drained by make run")
	if out, err := cmd.CombinedOutput(); err != nil {
		w.story.Note(at, fmt.Sprintf("amphora-agent drain %s failed: %v: %s", w.topo.DrainedMember, err, strings.TrimSpace(string(out))))
		return
	}
	w.story.Note(at, fmt.Sprintf("amphora-agent drain %s (operator mark)", w.topo.DrainedMember))
}

// run redraws the summary until ctx ends or the duration is over; it
// returns the exit status: 0, or 1 when a timed run missed part of the
// story, 3 when the health manager died.
func (w *watcher) run(ctx context.Context) int {
	start := time.Now()
	tick := time.NewTicker(w.opt.Interval)
	defer tick.Stop()
	var prev *Sample
	var lastLine time.Time
	drained, silenced := false, false
	for {
		at := time.Since(start)
		if !drained && at >= w.opt.DrainAfter {
			drained = true
			w.drain(ctx, at)
		}
		if !silenced && at >= w.opt.SilenceAfter && w.opt.SilentPID > 0 {
			silenced = true
			if err := syscall.Kill(w.opt.SilentPID, syscall.SIGSTOP); err != nil {
				w.story.Note(at, fmt.Sprintf("could not stop %s: %v", w.topo.SilentAmphora, err))
			} else {
				w.story.Silenced(at)
			}
		}
		cur := w.sample(ctx, at)
		if ctx.Err() != nil {
			return 0
		}
		w.story.Observe(cur)
		rate := 0.0
		if prev != nil && cur.Metrics && prev.Metrics && cur.At > prev.At {
			rate = (cur.HeartbeatsAccepted - prev.HeartbeatsAccepted) / (cur.At - prev.At).Seconds()
		}
		prev = &cur
		if w.opt.TTY {
			fmt.Fprint(w.out, "\033[H\033[2J"+Screen(w.topo, cur, rate, w.story.Events, w.opt.Duration, true))
		} else {
			for _, e := range w.story.Events[w.story.printed:] {
				fmt.Fprintf(w.out, "%s  %s\n", clock(e.At), e.Text)
			}
			w.story.printed = len(w.story.Events)
			if time.Since(lastLine) >= w.opt.LineEvery {
				lastLine = time.Now()
				fmt.Fprintln(w.out, Line(cur, rate))
			}
		}
		if w.opt.HMPID > 0 && syscall.Kill(w.opt.HMPID, 0) != nil {
			fmt.Fprintln(w.out, "the health manager exited; see logs/health-manager.log in the run directory")
			return 3
		}
		if w.opt.Duration > 0 && at >= w.opt.Duration {
			return w.judge()
		}
		select {
		case <-ctx.Done():
			return 0
		case <-tick.C:
		}
	}
}

// judge prints the verdict of a timed run.
func (w *watcher) judge() int {
	fmt.Fprintln(w.out, "\nwhat the demo showed:")
	status := 0
	for _, c := range w.story.Verdict() {
		mark := "ok  "
		if !c.OK {
			mark = "MISS"
			status = 1
		}
		fmt.Fprintf(w.out, "  %s %s\n", mark, c.What)
	}
	return status
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
