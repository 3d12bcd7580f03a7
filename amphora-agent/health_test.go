package agent

import (
	"strings"
	"testing"
	"time"
)

// results turns "ppf.." into probe results (p = pass, f = fail).
func results(s string) []bool {
	out := make([]bool, len(s))
	for i, c := range s {
		out[i] = c == 'p'
	}
	return out
}

func TestHealthMachine(t *testing.T) {
	iv := Intervals{Delay: 10 * time.Second, Fast: 5 * time.Second, Down: 20 * time.Second}
	for _, c := range []struct {
		name       string
		rise, fall int
		probes     string
		// after each probe: status string, whether up/down changed, next interval
		want []string
	}{
		{"new member, one pass resolves up", 2, 3, "p", []string{"UP change 10s"}},
		{"new member, one failure resolves down", 2, 3, "f", []string{"DOWN change 20s"}},
		{"up then failing down step by step", 2, 3, "pfff", []string{
			"UP change 10s", "UP 2/3 - 5s", "UP 1/3 - 5s", "DOWN change 20s"}},
		{"a pass while failing restores the full margin", 2, 3, "pffp", []string{
			"UP change 10s", "UP 2/3 - 5s", "UP 1/3 - 5s", "UP - 10s"}},
		{"down then recovering needs rise passes", 3, 2, "fppp", []string{
			"DOWN change 20s", "DOWN 1/3 - 5s", "DOWN 2/3 - 5s", "UP change 10s"}},
		{"a failure while recovering resets to fully down", 3, 2, "fppf", []string{
			"DOWN change 20s", "DOWN 1/3 - 5s", "DOWN 2/3 - 5s", "DOWN - 20s"}},
		{"rise 1 fall 1 flips on every result", 1, 1, "pfpf", []string{
			"UP change 10s", "DOWN change 20s", "UP change 10s", "DOWN change 20s"}},
		{"failures while down stay down", 2, 2, "fff", []string{
			"DOWN change 20s", "DOWN - 20s", "DOWN - 20s"}},
		{"passes while up stay up", 1, 3, "ppp", []string{"UP change 10s", "UP - 10s", "UP - 10s"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := NewHealth(c.rise, c.fall)
			if h.Counter != c.rise-1 || h.Probed {
				t.Fatalf("new machine %+v, want counter rise-1 and not probed", h)
			}
			if iv.Next(h) != 0 {
				t.Errorf("a new member waits %v before its first probe", iv.Next(h))
			}
			for i, ok := range results(c.probes) {
				var changed bool
				h, changed = h.Observe(ok)
				if h.Counter < 0 || h.Counter > c.rise+c.fall-1 {
					t.Fatalf("counter %d outside [0, %d]", h.Counter, c.rise+c.fall-1)
				}
				ch := "-"
				if changed {
					ch = "change"
				}
				got := h.Status() + " " + ch + " " + iv.Next(h).String()
				if got != c.want[i] {
					t.Errorf("after probe %d (%s): %q, want %q", i+1, c.probes[:i+1], got, c.want[i])
				}
			}
		})
	}
}

func TestHealthStatusStringsReadByOctavia(t *testing.T) {
	// Octavia maps any "UP..." to ONLINE and any "DOWN..." to ERROR.
	h := NewHealth(2, 2)
	for _, ok := range results("pfpffppfp") {
		h, _ = h.Observe(ok)
		s := h.Status()
		if h.Up() != strings.HasPrefix(s, "UP") || h.Up() == strings.HasPrefix(s, "DOWN") {
			t.Errorf("status %q does not match up=%v", s, h.Up())
		}
	}
	if got := NewHealth(0, 0); got.Rise != 1 || got.Fall != 1 {
		t.Errorf("rise/fall below 1 not clamped: %+v", got)
	}
}

func TestDefaultIntervalsAndJitter(t *testing.T) {
	iv := DefaultIntervals(10 * time.Second)
	if iv != (Intervals{Delay: 10 * time.Second, Fast: 5 * time.Second, Down: 20 * time.Second}) {
		t.Errorf("defaults %+v", iv)
	}
	for _, c := range []struct {
		frac, r float64
		want    time.Duration
	}{
		{0.1, 0.5, 10 * time.Second},
		{0.1, 0, 9 * time.Second},
		{0.1, 1, 11 * time.Second},
		{0, 0.9, 10 * time.Second},
		{2, 0, 0}, // clamped to 100%
	} {
		if got := Jitter(10*time.Second, c.frac, c.r); got != c.want {
			t.Errorf("Jitter(10s, %v, %v) = %v, want %v", c.frac, c.r, got, c.want)
		}
	}
}
