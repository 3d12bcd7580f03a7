package statuspage

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/octavia-vpp/health/healthdb/failover"
)

func TestRingKeepsTheNewest(t *testing.T) {
	r := newRing[int](3)
	for _, c := range []struct {
		add   []int
		want  string
		total int64
	}{
		{nil, "[]", 0},
		{[]int{1, 2}, "[2 1]", 2},
		{[]int{3}, "[3 2 1]", 3},
		{[]int{4, 5}, "[5 4 3]", 5},
	} {
		for _, v := range c.add {
			r.add(v)
		}
		got, total := r.newestFirst()
		if fmt.Sprint(got) != c.want || total != c.total {
			t.Errorf("after %v: %v (%d), want %s (%d)", c.add, got, total, c.want, c.total)
		}
	}
}

func TestFailoverResult(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, c := range []struct {
		ctx  context.Context
		err  error
		want string
	}{
		{context.Background(), nil, FailoverAccepted},
		{context.Background(), fmt.Errorf("x: %w", failover.ErrDryRun), FailoverDryRun},
		{context.Background(), fmt.Errorf("x: %w", failover.ErrImmutable), FailoverImmutable},
		{context.Background(), failover.ErrNotFound, FailoverNotFound},
		{cancelled, errors.New("context canceled"), FailoverCancelled},
		{context.Background(), errors.New("503"), FailoverError},
	} {
		if got := failoverResult(c.ctx, c.err); got != c.want {
			t.Errorf("%v: %s, want %s", c.err, got, c.want)
		}
	}
}

func TestHistogramLayout(t *testing.T) {
	counts := make([]bucketCount, 4+2) // 4 buckets over [0, 2 min)
	counts[0].total = 2                // clock skew: counted as age 0
	counts[1].total = 1000
	counts[3].total = 3
	counts[5].total = 1 // older than 2 min
	h := histogram(counts, time.Minute)
	want := []struct {
		label string
		count int
		stale bool
	}{{"0s–30s", 1002, false}, {"30s–60s", 0, false}, {"60s–90s", 3, true}, {"90s–120s", 0, true}, {"≥ 120s", 1, true}}
	if len(h.Bars) != len(want) {
		t.Fatalf("bars %+v", h.Bars)
	}
	for i, w := range want {
		b := h.Bars[i]
		if b.Label != w.label || b.Count != w.count || b.Stale != w.stale {
			t.Errorf("bar %d: %+v, want %+v", i, b, w)
		}
		if (b.Count > 0) != (b.H > 0) || b.Y+b.H != plotHeight {
			t.Errorf("bar %d geometry %+v", i, b)
		}
	}
	if h.Bars[0].H != plotHeight || h.Bars[2].H <= 2 || h.Bars[2].H >= plotHeight/2 {
		t.Errorf("log heights: %v %v", h.Bars[0].H, h.Bars[2].H)
	}
	if h.StaleX != 2*float64(plotWidth)/5 {
		t.Errorf("stale line at %v", h.StaleX)
	}
}

func TestRates(t *testing.T) {
	var r rates
	for _, c := range []struct {
		at                 time.Duration
		accepted, rejected float64
		wantA, wantR       float64
		wantOK             bool
	}{
		{0, 100, 0, 0, 0, false},
		{500 * time.Millisecond, 150, 0, 0, 0, false}, // under a second apart
		{2 * time.Second, 300, 4, 100, 2, true},
		{12 * time.Second, 1300, 4, 100, 0, true}, // base moves to the 2 s reading
		{time.Minute, 1300, 4, 0, 0, true},
	} {
		a, rj, ok := r.observe(t0.Add(c.at), Counters{Accepted: c.accepted, Rejected: c.rejected})
		if a != c.wantA || rj != c.wantR || ok != c.wantOK {
			t.Errorf("at %v: %v %v %v, want %v %v %v", c.at, a, rj, ok, c.wantA, c.wantR, c.wantOK)
		}
	}
}

func TestFormats(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{formatCount(100000), "100\u202f000"},
		{formatCount(999), "999"},
		{formatCount(float64(1234)), "1\u202f234"},
		{formatAge(3200 * time.Millisecond), "3.2s"},
		{formatAge(5 * time.Minute), "5m00s"},
		{formatAge(26 * time.Hour), "26h00m"},
		{shortID("0b1c2d3e-aaaa-bbbb-cccc-dddddddddddd"), "0b1c2d3e"},
		{shortID("lb-web"), "lb-web"},
		{failoverLabel(FailoverDryRun), "would fail over (dry run)"},
	} {
		if c.got != c.want {
			t.Errorf("%q, want %q", c.got, c.want)
		}
	}
}

func TestSlowReadsAreReusedLonger(t *testing.T) {
	for _, c := range []struct{ query, want time.Duration }{
		{2 * time.Millisecond, time.Second},
		{20 * time.Millisecond, time.Second},
		{40 * time.Millisecond, 2 * time.Second},
		{300 * time.Millisecond, 15 * time.Second},
	} {
		if got := keepFor(time.Second, c.query); got != c.want {
			t.Errorf("read took %v: kept %v, want %v", c.query, got, c.want)
		}
	}
}

func TestAgeBuckets(t *testing.T) {
	th := ageOffsets(time.Minute, 4) // 30 s buckets over 2 min
	if len(th) != 5 || th[0] != 2*time.Minute || th[3] != 30*time.Second || th[4] != 0 {
		t.Fatalf("thresholds %v", th)
	}
	for _, c := range []struct{ widthBucket, want int }{
		{0, 5}, // older than 2 min
		{1, 4}, // 90-120 s
		{4, 1}, // 0-30 s
		{5, 0}, // in the future
	} {
		if got := ageBucket(c.widthBucket, 4); got != c.want {
			t.Errorf("width_bucket %d -> %d, want %d", c.widthBucket, got, c.want)
		}
	}
}
