package statuspage

import (
	"fmt"
	"strings"
	"time"
)

func toLower(s string) string { return strings.ToLower(s) }

// formatAge is a heartbeat age as people read it: "3.2s", "4m10s", "2h5m".
func formatAge(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

func formatRate(f float64) string {
	if f >= 100 {
		return fmt.Sprintf("%.0f", f)
	}
	return fmt.Sprintf("%.1f", f)
}

// formatCount groups thousands: 100000 -> "100 000" (a thin space).
func formatCount(v any) string {
	var n int64
	switch x := v.(type) {
	case int:
		n = int64(x)
	case int64:
		n = x
	case float64:
		n = int64(x)
	default:
		return fmt.Sprint(v)
	}
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteString("\u202f")
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func formatMillis(d time.Duration) string {
	return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000)
}

// shortID keeps the first block of a UUID, enough to tell rows apart on
// screen; the full id is in the title attribute.
func shortID(id string) string {
	if i := strings.IndexByte(id, '-'); i >= 8 {
		return id[:i]
	}
	return id
}

func entityLabel(e string) string { return strings.ReplaceAll(e, "_", " ") }

func failoverLabel(result string) string {
	switch result {
	case FailoverDryRun:
		return "would fail over (dry run)"
	case FailoverAccepted:
		return "failover accepted"
	case FailoverImmutable:
		return "refused: load balancer immutable"
	case FailoverNotFound:
		return "refused: amphora not found"
	case FailoverCancelled:
		return "cancelled by shutdown"
	}
	return "failed"
}
