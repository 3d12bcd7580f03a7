package statuspage

import (
	"github.com/octavia-vpp/health/healthdb/shadow"
)

// shownDisagreements bounds the shadow section's list.
const shownDisagreements = 50

// ShadowSource is the shadow of a manager in shadow mode.
type ShadowSource interface {
	Recent() []shadow.Disagreement
	Counts() map[shadow.Kind]int
}

// ShadowView is the status page's "shadow" section: the disagreements
// with Octavia's health manager (docs/shadow.md).
type ShadowView struct {
	// Counts are the disagreements since start, by kind (every kind).
	Counts []ShadowCount `json:"counts"`
	// Recent are the newest kept disagreements, newest first.
	Recent []shadow.Disagreement `json:"recent"`
}

// ShadowCount is one kind's count.
type ShadowCount struct {
	Kind  shadow.Kind `json:"kind"`
	Count int         `json:"count"`
}

// SetShadow adds the shadow section, fed by src.
func (p *Page) SetShadow(src ShadowSource) {
	p.mu.Lock()
	p.shadow = src
	p.mu.Unlock()
}

func (p *Page) shadowView() *ShadowView {
	p.mu.Lock()
	src := p.shadow
	p.mu.Unlock()
	if src == nil {
		return nil
	}
	v := &ShadowView{}
	counts := src.Counts()
	for _, k := range shadow.Kinds {
		v.Counts = append(v.Counts, ShadowCount{Kind: k, Count: counts[k]})
	}
	recent := src.Recent()
	for i := len(recent) - 1; i >= 0 && len(v.Recent) < shownDisagreements; i-- {
		v.Recent = append(v.Recent, recent[i])
	}
	return v
}
