package manager

import (
	"errors"
	"fmt"
	"testing"

	"github.com/octavia-vpp/health/statsdriver"
)

func TestIsOnlyRefusal(t *testing.T) {
	refused := fmt.Errorf("stats_db: %w", statsdriver.ErrNotRecorded)
	down := errors.New("stats_db: connection refused")
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"one refusal", refused, true},
		{"joined refusals", errors.Join(refused, refused), true},
		{"a database failure", down, false},
		{"a refusal and a failure", errors.Join(refused, down), false},
	}
	for _, tc := range tests {
		if got := isOnlyRefusal(tc.err); got != tc.want {
			t.Errorf("%s: isOnlyRefusal = %v, want %v", tc.name, got, tc.want)
		}
	}
}
