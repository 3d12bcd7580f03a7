//go:build interop

package interop

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/octavia-vpp/health/heartbeat"
)

// The differential fuzzer (README.md, "Differential fuzzer"): mutated
// heartbeats, sealed with the right key, go through Octavia's own
// update_health and update_stats and through our replay, on identical
// topologies, and the rows must be identical.

var fuzzFixedSeeds = []uint64{1, 2, 3, 4, 5}

const (
	defaultFuzzMessages = 400
	defaultFuzzBatch    = 1100
	// fuzzMinMessages is what a default run must cover (issue 17).
	fuzzMinMessages = 2000
	regressionsFile = "testdata/difffuzz/regressions.jsonl"
)

// fuzzSeeds are INTEROP_FUZZ_SEEDS (comma-separated) when set, else the
// fixed seeds; INTEROP_FUZZ_RANDOM=N adds N random ones (make interop-fuzz
// SEEDS=N).
func fuzzSeeds(t *testing.T) (seeds []uint64, fixed bool) {
	if v := os.Getenv("INTEROP_FUZZ_SEEDS"); v != "" {
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.ParseUint(strings.TrimSpace(f), 10, 64)
			if err != nil {
				t.Fatalf("INTEROP_FUZZ_SEEDS: %v", err)
			}
			seeds = append(seeds, n)
		}
		return seeds, false
	}
	seeds = append(seeds, fuzzFixedSeeds...)
	if n := envUint("INTEROP_FUZZ_RANDOM"); n != nil {
		for range *n {
			s := rand.Uint64()
			t.Logf("random fuzz seed %d", s)
			seeds = append(seeds, s)
		}
	}
	return seeds, true
}

// fuzzTally counts, per mutation class, the messages it was applied to and
// those whose rows differed.
type fuzzTally struct {
	mu                 sync.Mutex
	applied, differing map[string]int
	messages, differ   int
	octaviaChanged     int
}

func (ft *fuzzTally) add(u *fuzzUnit, differs bool) {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	ft.messages++
	if differs {
		ft.differ++
	}
	for _, c := range uniq(u.Classes) {
		ft.applied[c]++
		if differs {
			ft.differing[c]++
		}
	}
}

func uniq(xs []string) []string {
	out := append([]string(nil), xs...)
	sort.Strings(out)
	return compactStrings(out)
}

func compactStrings(xs []string) []string {
	var out []string
	for i, x := range xs {
		if i == 0 || x != xs[i-1] {
			out = append(out, x)
		}
	}
	return out
}

func TestDiffFuzz(t *testing.T) {
	tally := &fuzzTally{applied: map[string]int{}, differing: map[string]int{}}
	if err := os.RemoveAll(filepath.Join("out", "difffuzz")); err != nil {
		t.Fatal(err)
	}
	cases := separateIDs(loadRegressions(t))
	seeds, fixed := fuzzSeeds(t)
	n := defaultFuzzMessages
	if v := envUint("INTEROP_FUZZ_MESSAGES"); v != nil {
		n = int(*v)
	}
	all := append([]*fuzzUnit(nil), cases...)
	for _, seed := range seeds {
		g := fuzzRand(seed)
		for i := range n {
			all = append(all, newFuzzUnit(g, fmt.Sprintf("seed %d #%d", seed, i)))
		}
	}
	isCase := map[*fuzzUnit]bool{}
	for _, c := range cases {
		isCase[c] = true
	}
	// Every message is a unit of its own, so many go through one Octavia
	// process (its start-up is the slow part); batches run in parallel.
	maxBatch := defaultFuzzBatch
	if v := envUint("INTEROP_FUZZ_BATCH"); v != nil {
		maxBatch = int(*v)
	}
	batches := batchUnits(all, maxBatch)
	var mu sync.Mutex
	var results []unitResult
	t.Run("batches", func(t *testing.T) {
		for i, batch := range batches {
			name := fmt.Sprintf("batch-%d", i)
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				res := runFuzzBatch(t, postgresBackend, name, fmt.Sprintf("fuzz-key-%d-ß", i), batch, tally)
				mu.Lock()
				results = append(results, res...)
				mu.Unlock()
				var failing []unitResult
				for _, r := range res {
					if r.unit.Open == "" {
						failing = append(failing, r)
					}
				}
				reportMismatches(t, name, failing)
			})
		}
	})

	// A new mismatch is kept as a regression case unless, for each of its
	// mutation classes, a kept case (or one kept now) of the same class
	// still gives the same kind of differing rows.
	covered := map[string]bool{}
	openDiffers := map[*fuzzUnit]bool{}
	for _, r := range results {
		if isCase[r.unit] {
			for _, k := range coverageKeys(r) {
				covered[k] = true
			}
			openDiffers[r.unit] = true
		}
	}
	open := 0
	for _, c := range cases {
		switch {
		case c.Open == "":
		case openDiffers[c]:
			open++
			t.Logf("open (known, not fixed) difference: %s [%s]: %s", c.Origin, strings.Join(c.Classes, ","), c.Open)
		default:
			t.Errorf("kept case %s [%s] now agrees with Octavia: remove its \"open\" mark in %s", c.Origin, strings.Join(c.Classes, ","), regressionsFile)
		}
	}
	known := map[string]bool{}
	for _, c := range cases {
		known[unitKey(c)] = true
	}
	var recorded []*fuzzUnit
	sort.Slice(results, func(i, j int) bool { return results[i].unit.Origin < results[j].unit.Origin })
	for _, r := range results {
		if isCase[r.unit] || known[unitKey(r.unit)] {
			continue
		}
		fresh := false
		for _, k := range coverageKeys(r) {
			if !covered[k] {
				fresh, covered[k] = true, true
			}
		}
		if fresh {
			recorded = append(recorded, r.unit)
		}
	}
	if len(recorded) > 0 {
		recorded = separateIDs(append(append([]*fuzzUnit(nil), cases...), recorded...))[len(cases):]
		appendRegressions(t, recorded)
		t.Errorf("%d new kinds of mismatch recorded as regression cases in test/interop/%s: commit them", len(recorded), regressionsFile)
	}

	var b strings.Builder
	fmt.Fprintf(&b, "differential fuzzer: %d messages (%d seeds x %d, %d regression cases) in %d batches, %d with rows different from Octavia's; Octavia changed %d rows\n",
		tally.messages, len(seeds), n, len(cases), len(batches), tally.differ, tally.octaviaChanged)
	fmt.Fprintf(&b, "  %d kept cases marked open (known differences, not counted as failures)\n", open)
	fmt.Fprintf(&b, "  %-36s %8s %8s\n", "mutation class", "messages", "differ")
	for _, m := range mutations {
		fmt.Fprintf(&b, "  %-36s %8d %8d\n", m.name, tally.applied[m.name], tally.differing[m.name])
	}
	t.Log(b.String())
	if generated := len(seeds) * n; fixed && generated < fuzzMinMessages {
		t.Errorf("only %d mutated messages from seeds; a default run must cover at least %d", generated, fuzzMinMessages)
	}
	for _, m := range mutations {
		if fixed && tally.applied[m.name] == 0 {
			t.Errorf("mutation class %s was never applied", m.name)
		}
	}
}

// TestFuzzDeterministic: a seed gives the same messages and topologies
// every time, each a JSON text, and the classes a unit lists are known.
func TestFuzzDeterministic(t *testing.T) {
	render := func() []byte {
		g := fuzzRand(7)
		var b bytes.Buffer
		for i := range 300 {
			u := newFuzzUnit(g, fmt.Sprint(i))
			if !json.Valid([]byte(nonFinite.Replace(u.Message))) {
				t.Fatalf("unit %d: not JSON: %s", i, u.Message)
			}
			for _, c := range u.Classes {
				if mutationByName(c) == nil {
					t.Fatalf("unit %d: unknown class %s", i, c)
				}
			}
			line, err := json.Marshal(u)
			if err != nil {
				t.Fatal(err)
			}
			b.Write(append(line, '\n'))
		}
		return b.Bytes()
	}
	if a, b := render(), render(); !bytes.Equal(a, b) {
		t.Fatal("the same seed gave different units")
	}
}

// coverageKeys are a mismatch's kinds: each of its classes with each
// table that differs.
func coverageKeys(r unitResult) []string {
	_, shapes, _ := strings.Cut(r.unit.Signature, " | ")
	var out []string
	for _, c := range uniq(r.unit.Classes) {
		for _, shape := range strings.Fields(shapes) {
			out = append(out, c+" "+shape)
		}
	}
	return out
}

// A unitResult is one message whose rows differ.
type unitResult struct {
	unit *fuzzUnit
	rows []string // "<side>: - row" lines
}

// runFuzzBatch applies units, each its own load balancer, in one Octavia
// run and one replay per schema of ours, and returns the units whose rows
// differ, with their signatures set.
func runFuzzBatch(t *testing.T, b backend, name, key string, units []*fuzzUnit, tally *fuzzTally) []unitResult {
	ctx := context.Background()
	start := time.Now()
	s := &scenario{key: key}
	owner := map[string]int{}
	for i, u := range units {
		for _, lb := range []*caseLB{u.LB, u.Neighbour} {
			if lb != nil {
				s.lbs = append(s.lbs, fromCase(lb))
			}
		}
		if u.Spare != "" {
			s.spares = append(s.spares, u.Spare)
		}
		for _, h := range u.Health {
			s.health = append(s.health, healthSeed{h.Amphora, h.Busy})
		}
		for _, st := range u.Stats {
			s.stats = append(s.stats, statsSeed{st.Listener, st.Amphora, st.V})
		}
		for _, id := range u.ids() {
			owner[id] = i
		}
	}
	kr, err := heartbeat.NewKeyring(heartbeat.KeyringConfig{Keys: []string{key}})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range units {
		s.datagrams = append(s.datagrams, kr.Seal([]byte(u.Message)))
	}
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
	setup := time.Since(start)
	applyArgs := []string{"apply", octavia, key, input}
	if os.Getenv("INTEROP_TRACE") != "" {
		tdir := filepath.Join("out", "difffuzz")
		_ = os.MkdirAll(tdir, 0o755)
		abs, _ := filepath.Abs(filepath.Join(tdir, name+"-octavia-trace.jsonl"))
		applyArgs = append(applyArgs, abs)
	}
	glue(t, nil, applyArgs...)
	octTime := time.Since(start) - setup
	for _, side := range sides {
		oursTolerant(t, dir, side.url, "replay", "--key", key, input)
	}
	ourTime := time.Since(start) - setup - octTime
	want := snapshot(t, octavia)
	changed := len(diff(before, want))

	perUnit := map[int][]string{}
	for _, side := range sides {
		for _, line := range diff(want, snapshot(t, side.url)) {
			i := rowOwner(line[2:], owner)
			perUnit[i] = append(perUnit[i], side.short+": "+line)
		}
	}
	var out []unitResult
	for i, u := range units {
		rows, differs := perUnit[i]
		if differs {
			u.Signature = signature(u, rows)
			out = append(out, unitResult{u, rows})
		}
		tally.add(u, differs)
	}
	if rows, ok := perUnit[-1]; ok {
		t.Errorf("%s: %d differing rows belong to no message:\n%s", name, len(rows), strings.Join(rows, "\n"))
	}
	tally.mu.Lock()
	tally.octaviaChanged += changed
	tally.mu.Unlock()
	t.Logf("%s: %d messages, %d rows changed by Octavia, %d messages differ; setup %s, Octavia %s, ours twice %s, total %s",
		name, len(units), changed, len(out), setup.Round(time.Millisecond), octTime.Round(time.Millisecond),
		ourTime.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	if len(units) >= 100 && changed < len(units)/2 {
		t.Errorf("%s: only %d rows changed by Octavia: the messages exercise too little", name, changed)
	}
	return out
}

// rowOwner names the unit a snapshot row belongs to, -1 for none.
func rowOwner(row string, owner map[string]int) int {
	f := strings.Fields(row)
	if len(f) < 2 {
		return -1
	}
	ids := []string{f[1]}
	if f[0] == "listener_statistics" {
		// listener/amphora; the amphora id decides when known.
		if i := strings.LastIndexByte(f[1], '/'); i >= 0 {
			ids = []string{f[1][i+1:], f[1][:i]}
		}
	}
	for _, id := range ids {
		if i, ok := owner[id]; ok {
			return i
		}
	}
	return -1
}

// signature is a mismatch's kind: its mutation classes and which tables
// differ, each with its sign (- a row only Octavia has, + one only ours
// has), without ids or values.
func signature(u *fuzzUnit, rows []string) string {
	var shapes []string
	for _, r := range rows {
		_, line, _ := strings.Cut(r, ": ")
		f := strings.Fields(line)
		shapes = append(shapes, f[0]+f[1])
	}
	return strings.Join(uniq(u.Classes), "+") + " | " + strings.Join(uniq(shapes), " ")
}

func unitKey(u *fuzzUnit) string {
	h := sha256.New()
	b, _ := json.Marshal(u.LB)
	h.Write(b)
	h.Write([]byte(u.Message))
	return hex.EncodeToString(h.Sum(nil))
}

// reportMismatches fails the test with the first differing messages and
// writes all of them to out/difffuzz/<name>.txt.
func reportMismatches(t *testing.T, name string, res []unitResult) {
	if len(res) == 0 {
		return
	}
	var b strings.Builder
	for _, r := range res {
		fmt.Fprintf(&b, "%s  classes=%s\n  message: %s\n", r.unit.Origin, strings.Join(r.unit.Classes, ","), r.unit.Message)
		for _, row := range r.rows {
			fmt.Fprintf(&b, "  %s\n", row)
		}
	}
	dir := filepath.Join("out", "difffuzz")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name+".txt")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	text := b.String()
	if len(text) > 6000 {
		text = text[:6000] + "\n..."
	}
	t.Errorf("%s: %d messages give rows different from Octavia's (- Octavia only, + ours only); all in %s:\n%s", name, len(res), path, text)
}

func loadRegressions(t *testing.T) []*fuzzUnit {
	f, err := os.Open(regressionsFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []*fuzzUnit
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var u fuzzUnit
		if err := json.Unmarshal(line, &u); err != nil {
			t.Fatalf("%s: %v", regressionsFile, err)
		}
		out = append(out, &u)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func appendRegressions(t *testing.T, units []*fuzzUnit) {
	sort.Slice(units, func(i, j int) bool { return units[i].Signature < units[j].Signature })
	if err := os.MkdirAll(filepath.Dir(regressionsFile), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(regressionsFile, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, u := range units {
		b, err := json.Marshal(u)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(append(b, '\n')); err != nil {
			t.Fatal(err)
		}
	}
}

// separateIDs gives each case that shares an id with an earlier one fresh
// ids (the same unit can be found again by a later run with another
// message), so that all cases fit in one database and one batch.
func separateIDs(cases []*fuzzUnit) []*fuzzUnit {
	used := map[string]bool{}
	out := make([]*fuzzUnit, 0, len(cases))
	for i, c := range cases {
		ids := c.ids()
		clash := false
		for _, id := range ids {
			clash = clash || used[id]
		}
		if clash {
			c = renameIDs(c, fmt.Sprint(i))
			ids = c.ids()
		}
		for _, id := range ids {
			used[id] = true
		}
		out = append(out, c)
	}
	return out
}

// renameIDs replaces every UUID-shaped id of a unit, in its topology and
// its message text, by one derived from salt and the old id.
func renameIDs(u *fuzzUnit, salt string) *fuzzUnit {
	var pairs []string
	for _, id := range u.ids() {
		if len(id) != 36 || strings.Count(id, "-") != 4 {
			continue
		}
		sum := sha256.Sum256([]byte(salt + "/" + id))
		h := hex.EncodeToString(sum[:])
		pairs = append(pairs, id, h[:8]+"-"+h[8:12]+"-"+h[12:16]+"-"+h[16:20]+"-"+h[20:32])
	}
	b, err := json.Marshal(u)
	if err != nil {
		panic(err)
	}
	var out fuzzUnit
	if err := json.Unmarshal([]byte(strings.NewReplacer(pairs...).Replace(string(b))), &out); err != nil {
		panic(err)
	}
	return &out
}

// batchUnits splits units into batches of at most max, so that no two in
// a batch share an id (a kept case and the same unit generated again would
// collide in the database).
func batchUnits(cases []*fuzzUnit, max int) [][]*fuzzUnit {
	var batches [][]*fuzzUnit
	var used []map[string]bool
next:
	for _, c := range cases {
		ids := c.ids()
		for i := range batches {
			if len(batches[i]) >= max {
				continue
			}
			clash := false
			for _, id := range ids {
				if used[i][id] {
					clash = true
					break
				}
			}
			if !clash {
				batches[i] = append(batches[i], c)
				for _, id := range ids {
					used[i][id] = true
				}
				continue next
			}
		}
		m := map[string]bool{}
		for _, id := range ids {
			m[id] = true
		}
		batches = append(batches, []*fuzzUnit{c})
		used = append(used, m)
	}
	return batches
}

// oursTolerant runs our binary like ours, but accepts exit status 1:
// replay exits 1 when a heartbeat could not be applied in full, which
// mutated input is meant to provoke; the rows are what is compared.
func oursTolerant(t testing.TB, dir, url string, args ...string) {
	t.Helper()
	conf := filepath.Join(dir, "octavia.conf")
	text := fmt.Sprintf("[database]\nconnection = %s\n"+
		"[controller_worker]\ncompute_driver = compute_noop_driver\nstatistics_drivers = stats_db\n", url)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary(t), append([]string{"--config-file", conf}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 1) {
		t.Fatalf("octavia-health-manager %s: %v\n%s\n%s", strings.Join(args, " "), err, stdout.String(), tail(stderr.String(), 4000))
	}
}
