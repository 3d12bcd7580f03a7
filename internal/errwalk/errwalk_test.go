package errwalk

import (
	"errors"
	"fmt"
	"testing"
)

func TestLeaves(t *testing.T) {
	a, b, c := errors.New("a"), errors.New("b"), errors.New("c")
	tests := []struct {
		name string
		err  error
		want []error
	}{
		{"nil", nil, nil},
		{"plain", a, []error{a}},
		{"joined", errors.Join(a, b), []error{a, b}},
		{"nested in order", errors.Join(a, errors.Join(b, c)), []error{a, b, c}},
		{"multi-%w wrapper", fmt.Errorf("x: %w, %w", a, b), []error{a, b}},
	}
	for _, tc := range tests {
		got := Leaves(tc.err)
		if len(got) != len(tc.want) {
			t.Errorf("%s: Leaves = %v, want %v", tc.name, got, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%s: leaf %d = %v, want %v", tc.name, i, got[i], tc.want[i])
			}
		}
	}
	wrapped := fmt.Errorf("ctx: %w", a)
	if got := Leaves(errors.Join(wrapped)); len(got) != 1 || got[0] != wrapped {
		t.Errorf("a single-%%w wrapper is a leaf; got %v", got)
	}
}

func TestAll(t *testing.T) {
	refused := errors.New("refused")
	down := errors.New("down")
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"one match", fmt.Errorf("d: %w", refused), true},
		{"joined matches", errors.Join(refused, fmt.Errorf("d: %w", refused)), true},
		{"one other", down, false},
		{"a match and another", errors.Join(refused, down), false},
	}
	for _, tc := range tests {
		if got := All(tc.err, refused); got != tc.want {
			t.Errorf("%s: All = %v, want %v", tc.name, got, tc.want)
		}
	}
}
