package octaviaconf

import "log/slog"

// warnUnknown logs every option of section that is not in known, with the
// closest known name when one is near enough to be the intended spelling.
func warnUnknown(log *slog.Logger, src *sources, section string, known []string) {
	for _, name := range src.keys(section) {
		if contains(known, name) {
			continue
		}
		attrs := []any{"file", src.fileOf(section, name), "section", section, "option", name}
		if s := closest(name, known); s != "" {
			attrs = append(attrs, "did_you_mean", s)
		}
		log.Warn("unknown config option ignored; misspelled?", attrs...)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// closest returns the known name within a small edit distance of name, or
// "" when none is close enough to be a plausible typo.
func closest(name string, known []string) string {
	best, bestDist := "", 4
	for _, k := range known {
		if d := editDistance(name, k); d < bestDist {
			best, bestDist = k, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
