package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

// TargetAll is the mark target that covers every member.
const TargetAll = "all"

// Mark is one operator mark: a spool file named after its target.
type Mark struct {
	// Target is a member id, a listener id (every member of its default
	// pool) or "all".
	Target  string    `json:"target"`
	Kind    string    `json:"kind"` // "drain" or "maint"
	Reason  string    `json:"reason"`
	Created time.Time `json:"created"`
	// Expires is when the mark stops applying; zero means never.
	Expires time.Time `json:"expires,omitzero"`
}

// KindOf returns the mark's kind.
func (m Mark) KindOf() MarkKind {
	switch m.Kind {
	case "drain":
		return MarkDrain
	case "maint":
		return MarkMaint
	}
	return MarkNone
}

// Expired reports whether the mark no longer applies at now.
func (m Mark) Expired(now time.Time) bool { return !m.Expires.IsZero() && !now.Before(m.Expires) }

var targetRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// ValidTarget checks that a target can name a spool file.
func ValidTarget(t string) error {
	if !targetRE.MatchString(t) {
		return fmt.Errorf("mark target %q: want a member id, a listener id or %q", t, TargetAll)
	}
	return nil
}

// EffectiveMark returns the strongest unexpired mark that applies to a
// member of a listener's default pool: maintenance wins over drain.
func EffectiveMark(marks []Mark, memberID, listenerID string, now time.Time) MarkKind {
	k := MarkNone
	for _, m := range marks {
		if m.Expired(now) {
			continue
		}
		if m.Target == memberID || m.Target == TargetAll || (listenerID != "" && m.Target == listenerID) {
			k = max(k, m.KindOf())
		}
	}
	return k
}

// Spool stores marks as one JSON file per target under Dir. Files survive
// restarts; writes are atomic.
type Spool struct {
	Dir string
}

func (s Spool) path(target string) string { return filepath.Join(s.Dir, target+".json") }

// Put writes (or replaces) the mark of m.Target.
func (s Spool) Put(m Mark) error {
	if err := ValidTarget(m.Target); err != nil {
		return err
	}
	if m.KindOf() == MarkNone {
		return fmt.Errorf("mark kind %q: want drain or maint", m.Kind)
	}
	if err := os.MkdirAll(s.Dir, 0o750); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(s.path(m.Target), append(b, '\n'), 0o640)
}

// Remove deletes the mark of a target ("up"); a missing mark is not an
// error.
func (s Spool) Remove(target string) error {
	if err := ValidTarget(target); err != nil {
		return err
	}
	if err := os.Remove(s.path(target)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("spool: %w", err)
	}
	return nil
}

// List reads every mark, sorted by target. Marks expired at now are
// deleted from the spool and not returned. Unreadable files are skipped
// and reported in the error.
func (s Spool) List(now time.Time) ([]Mark, error) {
	ents, err := os.ReadDir(s.Dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	var marks []Mark
	var errs []error
	for _, e := range ents {
		name := e.Name()
		if e.IsDir() || strings.HasPrefix(name, ".") || !strings.HasSuffix(name, ".json") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(s.Dir, name))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var m Mark
		if err := json.Unmarshal(b, &m); err != nil || m.Target+".json" != name || m.KindOf() == MarkNone {
			errs = append(errs, fmt.Errorf("spool file %s is not a valid mark", name))
			continue
		}
		if m.Expired(now) {
			_ = os.Remove(filepath.Join(s.Dir, name))
			continue
		}
		marks = append(marks, m)
	}
	sort.Slice(marks, func(i, j int) bool { return marks[i].Target < marks[j].Target })
	return marks, errors.Join(errs...)
}
