//go:build interop

package interop

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// fixedSeeds run on every run, next to randomSeeds fresh ones.
var fixedSeeds = []uint64{1, 2, 3, 5, 8, 13, 21}

const (
	defaultRandomSeeds = 3
	defaultLBs         = 100
)

// seeds are INTEROP_SEEDS (comma-separated) when set, else the fixed list
// plus INTEROP_RANDOM (default 3) random seeds.
func seeds(t *testing.T) []uint64 {
	if v := os.Getenv("INTEROP_SEEDS"); v != "" {
		var out []uint64
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.ParseUint(strings.TrimSpace(f), 10, 64)
			if err != nil {
				t.Fatalf("INTEROP_SEEDS: %v", err)
			}
			out = append(out, n)
		}
		return out
	}
	n := uint64(defaultRandomSeeds)
	if v := envUint("INTEROP_RANDOM"); v != nil {
		n = *v
	}
	out := append([]uint64(nil), fixedSeeds...)
	for range n {
		s := rand.Uint64()
		t.Logf("random seed %d", s)
		out = append(out, s)
	}
	return out
}

// snapshot reads every row the comparison covers, rendered as
// octavia_glue.py's snapshot renders them.
func snapshot(t testing.TB, url string) map[string]bool {
	t.Helper()
	if isMySQL(url) {
		return snapshotMySQL(t, url)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	out := map[string]bool{}
	collect := func(sql string, render func(pgx.Rows) (string, error)) {
		rows, err := conn.Query(ctx, sql)
		if err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		defer rows.Close()
		for rows.Next() {
			s, err := render(rows)
			if err != nil {
				t.Fatal(err)
			}
			out[s] = true
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	}
	for _, table := range []string{"load_balancer", "listener", "pool", "member"} {
		collect("SELECT id, operating_status FROM "+table, func(r pgx.Rows) (string, error) {
			var id, st string
			err := r.Scan(&id, &st)
			return fmt.Sprintf("%s %s %s", table, id, st), err
		})
	}
	collect("SELECT amphora_id, busy FROM amphora_health", func(r pgx.Rows) (string, error) {
		var id string
		var busy bool
		err := r.Scan(&id, &busy)
		return fmt.Sprintf("amphora_health %s busy=%t", id, busy), err
	})
	collect(`SELECT listener_id, amphora_id, bytes_in, bytes_out, active_connections, total_connections, request_errors
		FROM listener_statistics`, func(r pgx.Rows) (string, error) {
		var l, a string
		var v [5]int64
		err := r.Scan(&l, &a, &v[0], &v[1], &v[2], &v[3], &v[4])
		return fmt.Sprintf("listener_statistics %s/%s %d %d %d %d %d", l, a, v[0], v[1], v[2], v[3], v[4]), err
	})
	return out
}

// diff lists rows only in a ("-") and only in b ("+"), sorted by row.
func diff(a, b map[string]bool) []string {
	var out []string
	for k := range a {
		if !b[k] {
			out = append(out, "- "+k)
		}
	}
	for k := range b {
		if !a[k] {
			out = append(out, "+ "+k)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i][2:] < out[j][2:] || (out[i][2:] == out[j][2:] && out[i] < out[j]) })
	return out
}

// TestDatabase feeds each scenario's heartbeats through Octavia's
// update_health and update_stats on a database of Octavia's schema, and
// through our replay on a second database of Octavia's schema and on a
// third built by our migrate, then requires identical rows.
func TestDatabase(t *testing.T) {
	nLB := defaultLBs
	if v := envUint("INTEROP_LBS"); v != nil {
		nLB = int(*v)
	}
	trace := os.Getenv("INTEROP_TRACE") != ""
	for _, seed := range seeds(t) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Parallel() // go test's -parallel (GOMAXPROCS) bounds it
			runScenario(t, postgresBackend, newScenario(seed, nLB), trace)
		})
	}
}

func runScenario(t *testing.T, b backend, s *scenario, trace bool) {
	ctx := context.Background()
	start := time.Now()
	dir := t.TempDir()
	input := filepath.Join(dir, "heartbeats.jsonl")
	if err := os.WriteFile(input, replayLines(s.datagrams), 0o600); err != nil {
		t.Fatal(err)
	}
	octavia, sides := b.databases(t)
	for _, url := range append([]string{octavia}, sides.urls()...) {
		if err := s.insert(ctx, url); err != nil {
			t.Fatalf("insert topology: %v", err)
		}
	}
	before := snapshot(t, octavia)

	args := []string{"apply", octavia, s.key, input}
	octTrace := filepath.Join(dir, "octavia-trace.jsonl")
	if trace {
		args = append(args, octTrace)
	}
	octStart := time.Now()
	glue(t, nil, args...)
	octTime := time.Since(octStart)
	ourStart := time.Now()
	for i, side := range sides {
		if trace && i == 0 {
			traceOurs(t, s, dir, side.url)
		} else {
			ours(t, dir, side.url, "replay", "--key", s.key, input)
		}
	}
	ourTime := time.Since(ourStart)

	want := snapshot(t, octavia)
	changed := len(diff(before, want))
	failed := false
	for _, side := range sides {
		d := diff(want, snapshot(t, side.url))
		if len(d) == 0 {
			continue
		}
		failed = true
		shown := d
		if len(shown) > 40 {
			shown = shown[:40]
		}
		t.Errorf("%s: %d rows differ from Octavia's (- Octavia only, + ours only):\n%s", side.name, len(d), strings.Join(shown, "\n"))
	}
	if failed || trace {
		keep(t, s, dir, trace)
	}
	t.Logf("%s seed %d: %d load balancers, %d datagrams, %d rows changed by Octavia (%d statistics rows); Octavia %s, ours x%d %s, total %s",
		b.name, s.seed, len(s.lbs), len(s.datagrams), changed, countPrefix(want, "listener_statistics "),
		octTime.Round(time.Millisecond), len(sides), ourTime.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	if changed < 100 {
		t.Errorf("only %d rows changed: the scenario exercises too little", changed)
	}
}

// traceOurs replays one datagram at a time and records, after each, which
// rows changed: the per-packet trace of our side, in the format of
// octavia_glue.py's.
func traceOurs(t *testing.T, s *scenario, dir, url string) {
	out, err := os.Create(filepath.Join(dir, "ours-trace.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	prev := snapshot(t, url)
	one := filepath.Join(dir, "one.jsonl")
	for i, d := range s.datagrams {
		if err := os.WriteFile(one, replayLines([][]byte{d}), 0o600); err != nil {
			t.Fatal(err)
		}
		ours(t, dir, url, "replay", "--key", s.key, one)
		cur := snapshot(t, url)
		var removed, added []string
		for _, line := range diff(prev, cur) {
			if line[0] == '-' {
				removed = append(removed, line[2:])
			} else {
				added = append(added, line[2:])
			}
		}
		b, _ := json.Marshal(map[string]any{"packet": i, "removed": removed, "added": added})
		fmt.Fprintf(out, "%s\n", b)
		prev = cur
	}
}

type traceLine struct {
	Packet  int      `json:"packet"`
	Removed []string `json:"removed"`
	Added   []string `json:"added"`
}

func readTrace(t *testing.T, path string) []traceLine {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []traceLine
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		var l traceLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatal(err)
		}
		sort.Strings(l.Removed)
		sort.Strings(l.Added)
		out = append(out, l)
	}
	return out
}

// keep copies a scenario's input to out/seed-N/ next to this file, and in
// trace mode writes trace.txt: every packet's JSON text and the rows each
// side changed, marking the first packet where they differ.
func keep(t *testing.T, s *scenario, dir string, trace bool) {
	outDir := filepath.Join("out", fmt.Sprintf("seed-%d", s.seed))
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outDir, "heartbeats.jsonl"), replayLines(s.datagrams), 0o644); err != nil {
		t.Fatal(err)
	}
	var msgs bytes.Buffer
	for i, text := range s.texts {
		if text == "" {
			text = "(sealed with the wrong key)"
		}
		fmt.Fprintf(&msgs, "#%d %s\n", i, text)
	}
	if err := os.WriteFile(filepath.Join(outDir, "messages.txt"), msgs.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if !trace {
		t.Logf("scenario kept in %s; rerun with INTEROP_SEEDS=%d INTEROP_TRACE=1 make interop for the per-packet trace", outDir, s.seed)
		return
	}
	oct := readTrace(t, filepath.Join(dir, "octavia-trace.jsonl"))
	our := readTrace(t, filepath.Join(dir, "ours-trace.jsonl"))
	var b bytes.Buffer
	first := -1
	for i := range s.datagrams {
		var o, u traceLine
		if i < len(oct) {
			o = oct[i]
		}
		if i < len(our) {
			u = our[i]
		}
		same := strings.Join(o.Removed, "\n") == strings.Join(u.Removed, "\n") && strings.Join(o.Added, "\n") == strings.Join(u.Added, "\n")
		mark := ""
		if !same {
			mark = "  <<< DIFFERENT"
			if first < 0 {
				first = i
			}
		}
		text := s.texts[i]
		if text == "" {
			text = "(sealed with the wrong key)"
		}
		fmt.Fprintf(&b, "#%d%s\n  message: %s\n", i, mark, text)
		for _, side := range []struct {
			name string
			l    traceLine
		}{{"octavia", o}, {"ours", u}} {
			for _, r := range side.l.Removed {
				fmt.Fprintf(&b, "  %-7s - %s\n", side.name, r)
			}
			for _, r := range side.l.Added {
				fmt.Fprintf(&b, "  %-7s + %s\n", side.name, r)
			}
		}
	}
	if err := os.WriteFile(filepath.Join(outDir, "trace.txt"), b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if first >= 0 {
		t.Errorf("first packet where the two sides differ: #%d; see %s", first, filepath.Join(outDir, "trace.txt"))
	} else {
		t.Logf("per-packet trace in %s: every packet changed the same rows", filepath.Join(outDir, "trace.txt"))
	}
}

func countPrefix(rows map[string]bool, prefix string) int {
	n := 0
	for r := range rows {
		if strings.HasPrefix(r, prefix) {
			n++
		}
	}
	return n
}
