package agent

import (
	"strconv"
	"time"
)

// Health is HAProxy's single-counter rise/fall machine for one member.
//
// The counter lives in [0, Rise+Fall-1]. The member is up while the counter
// is at least Rise. A pass while down increments it; reaching Rise makes
// the member up and jumps the counter to the top, so it then takes Fall
// consecutive failures to go down. A failure while up decrements it;
// dropping below Rise makes the member down and resets the counter to 0,
// so it then takes Rise consecutive passes to come up. A new or re-enabled
// member starts at Rise-1 ("unknown"): one pass makes it up, one failure
// makes it down.
//
// Health is a value: the zero value is not usable, create one with
// NewHealth.
type Health struct {
	Rise, Fall int
	Counter    int
	// Probed is false until the first probe result arrives.
	Probed bool
}

// NewHealth returns the machine of a new member. rise and fall below 1
// are taken as 1.
func NewHealth(rise, fall int) Health {
	rise, fall = max(rise, 1), max(fall, 1)
	return Health{Rise: rise, Fall: fall, Counter: rise - 1}
}

func (h Health) top() int { return h.Rise + h.Fall - 1 }

// Up reports whether the member is up.
func (h Health) Up() bool { return h.Counter >= h.Rise }

// Observe applies one probe result and returns the new machine and whether
// the member changed between up and down (the first result of a new member
// always counts as a change).
func (h Health) Observe(ok bool) (Health, bool) {
	wasUp, first := h.Up(), !h.Probed
	h.Probed = true
	switch {
	case ok && h.Up():
		// already at the top: a pass while up restores the full margin
		h.Counter = h.top()
	case ok:
		h.Counter++
		if h.Counter >= h.Rise {
			h.Counter = h.top()
		}
	case h.Up():
		h.Counter--
		if h.Counter < h.Rise {
			h.Counter = 0
		}
	default:
		h.Counter = 0
	}
	return h, first || wasUp != h.Up()
}

// Status is the member string HAProxy shows and Octavia reads: "UP" when
// fully up, "UP i/n" while failing but not yet down (i more failures of
// n=Fall take it down), "DOWN" when fully down, "DOWN i/n" while
// recovering (i passes of n=Rise so far).
func (h Health) Status() string {
	switch {
	case h.Counter == h.top() && h.Up():
		return "UP"
	case h.Up():
		return "UP " + strconv.Itoa(h.Counter-h.Rise+1) + "/" + strconv.Itoa(h.Fall)
	case h.Counter == 0:
		return "DOWN"
	default:
		return "DOWN " + strconv.Itoa(h.Counter) + "/" + strconv.Itoa(h.Rise)
	}
}

// Intervals are a monitor's probe periods.
type Intervals struct {
	// Delay is used while the member is fully up (Octavia's delay).
	Delay time.Duration
	// Fast is used while transitional (failing or recovering), and for
	// the first probe of a new member.
	Fast time.Duration
	// Down is used while the member is fully down.
	Down time.Duration
}

// DefaultIntervals derives Fast (delay/2) and Down (2*delay) from delay.
func DefaultIntervals(delay time.Duration) Intervals {
	return Intervals{Delay: delay, Fast: delay / 2, Down: 2 * delay}
}

// Next returns the wait before the next probe of a member in state h. A
// member that was never probed is probed at once.
func (iv Intervals) Next(h Health) time.Duration {
	switch {
	case !h.Probed:
		return 0
	case h.Up() && h.Counter == h.top():
		return iv.Delay
	case !h.Up() && h.Counter == 0:
		return iv.Down
	default:
		return iv.Fast
	}
}

// Jitter spreads d by up to ±frac: r in [0, 1) picks the point, 0.5 gives
// d itself. frac is clamped to [0, 1].
func Jitter(d time.Duration, frac, r float64) time.Duration {
	frac = min(max(frac, 0), 1)
	return time.Duration(float64(d) * (1 + frac*(2*r-1)))
}
