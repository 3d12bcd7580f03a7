package shadow

import (
	"bufio"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is shadow-report's summary: the counters of a running shadow
// (its /metrics) and the disagreements kept in its file.
type Report struct {
	// MetricsSource is where the counters were read; MetricsError why
	// they were not (both empty: not asked for).
	MetricsSource, MetricsError string
	Compared, ReadErrors        float64
	ByKind                      map[Kind]float64

	// File is the disagreement file; FileError why it was not read.
	File, FileError string
	// FileMissing says the file does not exist: the shadow creates it at
	// its first disagreement.
	FileMissing bool
	Kept        []Disagreement
}

// ParseMetrics reads the shadow's counters from a Prometheus text
// exposition.
func (r *Report) ParseMetrics(source string, body io.Reader) error {
	r.MetricsSource = source
	r.ByKind = map[Kind]float64{}
	found := false
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "octavia_hm_shadow_") {
			continue
		}
		series, value, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.Fields(value)[0], 64)
		if err != nil {
			continue
		}
		found = true
		switch {
		case series == "octavia_hm_shadow_heartbeats_compared_total":
			r.Compared = v
		case series == "octavia_hm_shadow_read_errors_total":
			r.ReadErrors = v
		case strings.HasPrefix(series, `octavia_hm_shadow_disagreements_total{kind="`):
			kind := strings.TrimSuffix(strings.TrimPrefix(series, `octavia_hm_shadow_disagreements_total{kind="`), `"}`)
			r.ByKind[Kind(kind)] = v
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("%s has no octavia_hm_shadow_ metrics", source)
	}
	return nil
}

// EntityCount is how many kept disagreements name one entity.
type EntityCount struct {
	Kind   Kind
	Entity string
	ID     string
	Count  int
	Last   Disagreement
}

// TopEntities returns the entities with the most kept disagreements,
// most first, at most n.
func (r *Report) TopEntities(n int) []EntityCount {
	by := map[string]*EntityCount{}
	for _, d := range r.Kept {
		k := string(d.Kind) + "\x00" + d.Entity + "\x00" + d.ID
		e := by[k]
		if e == nil {
			e = &EntityCount{Kind: d.Kind, Entity: d.Entity, ID: d.ID}
			by[k] = e
		}
		e.Count++
		e.Last = d
	}
	out := make([]EntityCount, 0, len(by))
	for _, e := range by {
		out = append(out, *e)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Kind+Kind(out[i].Entity+out[i].ID) < out[j].Kind+Kind(out[j].Entity+out[j].ID)
	})
	return out[:min(n, len(out))]
}

// Print writes the summary an operator takes to a change-approval
// meeting.
func (r *Report) Print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "Shadow mode report (octavia-health-manager beside Octavia's health manager)")
	switch {
	case r.MetricsError != "":
		fmt.Fprintf(tw, "Metrics:\tnot read: %s\n", r.MetricsError)
	case r.MetricsSource != "":
		fmt.Fprintf(tw, "Metrics:\t%s\n", r.MetricsSource)
		fmt.Fprintf(tw, "Heartbeats compared:\t%.0f\n", r.Compared)
		fmt.Fprintf(tw, "Database reads failed:\t%.0f\n", r.ReadErrors)
		var total float64
		for _, k := range Kinds {
			total += r.ByKind[k]
		}
		fmt.Fprintf(tw, "Disagreements since start:\t%.0f\n", total)
		for _, k := range Kinds {
			fmt.Fprintf(tw, "  %s\t%.0f\n", k, r.ByKind[k])
		}
	}
	switch {
	case r.FileError != "":
		fmt.Fprintf(tw, "Disagreement file:\t%s not read: %s\n", r.File, r.FileError)
	case r.File != "":
		if r.FileMissing {
			fmt.Fprintf(tw, "Disagreement file:\t%s (not created: no disagreement recorded)\n", r.File)
		} else {
			fmt.Fprintf(tw, "Disagreement file:\t%s\n", r.File)
		}
		counts := map[Kind]int{}
		for _, d := range r.Kept {
			counts[d.Kind]++
		}
		fmt.Fprintf(tw, "Disagreements kept:\t%d", len(r.Kept))
		if len(r.Kept) > 0 {
			fmt.Fprintf(tw, " (%s to %s)", r.Kept[0].Time.UTC().Format(time.RFC3339), r.Kept[len(r.Kept)-1].Time.UTC().Format(time.RFC3339))
		}
		fmt.Fprintln(tw)
		for _, k := range Kinds {
			fmt.Fprintf(tw, "  %s\t%d\n", k, counts[k])
		}
	}
	tw.Flush()
	top := r.TopEntities(10)
	if r.File == "" || r.FileError != "" {
		return
	}
	if len(top) == 0 {
		fmt.Fprintln(w, "Top entities: none")
		return
	}
	fmt.Fprintln(w, "Top entities:")
	tw = tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  count\tkind\tentity\tid\tlast: ours / Octavia's")
	for _, e := range top {
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%s / %s\n", e.Count, e.Kind, e.Entity, e.ID, e.Last.Ours, e.Last.Octavia)
	}
	tw.Flush()
}
