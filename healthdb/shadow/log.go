package shadow

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// MaxKept is how many disagreements the file keeps.
const MaxKept = 1000

// Log keeps the last disagreements in memory and in a file of JSON lines
// (one Disagreement each), which replay reads as a heartbeat capture: each
// line's "b64" is the datagram behind the disagreement. Lines are
// appended; when the file holds twice max, it is rewritten with the last
// max.
type Log struct {
	path string
	max  int

	mu     sync.Mutex
	recent []Disagreement
	counts map[Kind]int
	onFile int
}

// OpenLog loads the kept disagreements of path, if it exists; an empty
// path keeps them in memory only.
func OpenLog(path string, max int) (*Log, error) {
	l := &Log{path: path, max: max, counts: map[Kind]int{}}
	if path == "" {
		return l, nil
	}
	kept, err := ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("shadow_disagreement_file: %w", err)
	}
	if len(kept) > max {
		kept = kept[len(kept)-max:]
	}
	l.recent, l.onFile = kept, len(kept)
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("shadow_disagreement_file: %w", err)
	}
	return l, nil
}

// ReadFile reads a disagreement file.
func ReadFile(path string) ([]Disagreement, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Disagreement
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		if len(sc.Bytes()) == 0 {
			continue
		}
		var d Disagreement
		if err := json.Unmarshal(sc.Bytes(), &d); err != nil {
			return out, fmt.Errorf("%s line %d: %w", path, line, err)
		}
		out = append(out, d)
	}
	return out, sc.Err()
}

// Add keeps d and appends it to the file.
func (l *Log) Add(d Disagreement) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.counts[d.Kind]++
	l.recent = append(l.recent, d)
	if len(l.recent) > l.max {
		l.recent = append(l.recent[:0:0], l.recent[len(l.recent)-l.max:]...)
	}
	if l.path == "" {
		return nil
	}
	if l.onFile >= 2*l.max {
		return l.rewrite()
	}
	line, err := json.Marshal(d)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		f.Close()
		return err
	}
	l.onFile++
	return f.Close()
}

// rewrite replaces the file with the kept disagreements; l.mu is held.
func (l *Log) rewrite() error {
	tmp := l.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	for _, d := range l.recent {
		if err := enc.Encode(d); err != nil {
			f.Close()
			return err
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, l.path); err != nil {
		return err
	}
	l.onFile = len(l.recent)
	return nil
}

// Recent returns the kept disagreements, oldest first.
func (l *Log) Recent() []Disagreement {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Disagreement(nil), l.recent...)
}

// Counts returns the disagreements added since OpenLog, by kind.
func (l *Log) Counts() map[Kind]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[Kind]int, len(l.counts))
	for k, v := range l.counts {
		out[k] = v
	}
	return out
}
