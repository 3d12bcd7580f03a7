package agent

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// CounterFileName is the counter file under [haproxy_amphora] base_path,
// as Octavia's agent names it.
const CounterFileName = "stats_counters.json"

// Sample is one listener's absolute counters in the counter file's format
// ({"bin": N, "bout": N, "ereq": N, "stot": N}).
type Sample struct {
	Bin  int64 `json:"bin"`
	Bout int64 `json:"bout"`
	EReq int64 `json:"ereq"`
	Stot int64 `json:"stot"`
}

// delta is Octavia's rule for one metric: current minus last, or current
// itself when that is negative (the counters were reset).
func delta(cur, last int64) int64 {
	d := cur - last
	if d < 0 {
		return cur
	}
	return d
}

// Delta computes the V3 increments of cur against last (the zero Sample
// when the listener has no stored entry) with Octavia's reset rule, applied
// to each metric on its own.
func Delta(cur, last Sample) Sample {
	return Sample{
		Bin:  delta(cur.Bin, last.Bin),
		Bout: delta(cur.Bout, last.Bout),
		EReq: delta(cur.EReq, last.EReq),
		Stot: delta(cur.Stot, last.Stot),
	}
}

// Counters is the content of the counter file: the last absolute values
// reported per listener id. As in Octavia, entries of deleted listeners
// are kept.
type Counters map[string]Sample

// Advance computes the deltas of every listener in cur and stores cur as
// the new last values.
func (c Counters) Advance(cur map[string]Sample) map[string]Sample {
	out := make(map[string]Sample, len(cur))
	for id, s := range cur {
		out[id] = Delta(s, c[id])
		c[id] = s
	}
	return out
}

// LoadCounters reads a counter file. A missing file is an empty set; an
// unreadable or unparsable one is returned as empty together with the
// error, so the caller can warn and carry on as Octavia does.
func LoadCounters(path string) (Counters, error) {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return Counters{}, nil
	}
	if err != nil {
		return Counters{}, fmt.Errorf("read counter file: %w", err)
	}
	c := Counters{}
	if err := json.Unmarshal(b, &c); err != nil {
		return Counters{}, fmt.Errorf("parse counter file %s: %w", path, err)
	}
	if c == nil {
		c = Counters{}
	}
	return c, nil
}

// SaveCounters writes the counter file atomically (a temporary file in the
// same directory, synced, then renamed over it) with mode 0640.
func SaveCounters(path string, c Counters) error {
	b, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("encode counters: %w", err)
	}
	return writeFileAtomic(path, b, 0o640)
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
