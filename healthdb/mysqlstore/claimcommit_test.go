package mysqlstore_test

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/octavia-vpp/health/healthdb"
	"github.com/octavia-vpp/health/healthdb/mysqlstore"
)

// A claim whose COMMIT got no answer is reported as such, and TxStatus
// tells, from the claim key written in the same transaction, whether it
// committed.
func TestAmbiguousClaimCommit(t *testing.T) {
	for _, c := range []struct {
		name      string
		committed bool
	}{{"committed", true}, {"rolled back", false}} {
		t.Run(c.name, func(t *testing.T) {
			s, db := openStore(t)
			b := &myBackend{t: t, db: db, s: s}
			seed(t, b)
			b.AddHealth("amp-1", time.Hour, false)
			lost := io.ErrUnexpectedEOF
			if c.committed {
				mysqlstore.SetAfterCommit(s, func(err error) error {
					if err != nil {
						t.Errorf("COMMIT: %v", err)
					}
					return lost
				})
			} else {
				mysqlstore.SetBeforeCommit(s, func() error { return lost })
			}
			_, err := s.ClaimStale(context.Background(), healthdb.ClaimRequest{HeartbeatTimeout: time.Minute, Limit: 5})
			var unknown *healthdb.ClaimCommitUnknownError
			if !errors.As(err, &unknown) || len(unknown.AmphoraIDs) != 1 || unknown.AmphoraIDs[0] != "amp-1" {
				t.Fatalf("ClaimStale = %v, want a ClaimCommitUnknownError for amp-1", err)
			}
			status, err := s.TxStatus(context.Background(), unknown.TxID)
			want := healthdb.TxAborted
			if c.committed {
				want = healthdb.TxCommitted
			}
			if err != nil || status != want {
				t.Fatalf("TxStatus(%d) = %q, %v; want %q", unknown.TxID, status, err, want)
			}
			if _, busy, _ := b.Health("amp-1"); busy != c.committed {
				t.Errorf("amp-1 busy = %v, want %v", busy, c.committed)
			}
		})
	}
}
