// Package errwalk lists the errors an errors.Join (or any error with
// Unwrap() []error) holds. It is the one walker of joined errors: the
// config checks print each problem on its own line, and replay tells a
// statistics refusal from a database failure by looking at every leaf.
package errwalk

import "errors"

// Leaves returns the errors err joins, recursively, in order. An error
// that joins nothing is its own only leaf; nil has none. Single-error
// wrappers (fmt.Errorf with one %w) are leaves: their message already
// carries what they wrap.
func Leaves(err error) []error {
	if err == nil {
		return nil
	}
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return []error{err}
	}
	var out []error
	for _, e := range joined.Unwrap() {
		out = append(out, Leaves(e)...)
	}
	return out
}

// All reports whether err has at least one leaf and every leaf matches
// target (errors.Is).
func All(err, target error) bool {
	leaves := Leaves(err)
	for _, e := range leaves {
		if !errors.Is(e, target) {
			return false
		}
	}
	return len(leaves) > 0
}
