package mysqlstore_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/octavia-vpp/health/healthdb"
	"github.com/octavia-vpp/health/healthdb/mysqlstore"
)

// certificationFailure is what Galera answers a COMMIT that lost
// certification against a write on another node.
var certificationFailure = &mysql.MySQLError{Number: 1213, SQLState: [5]byte{'4', '0', '0', '0', '1'},
	Message: "Deadlock found when trying to get lock; try restarting transaction"}

// failCommits makes the first n COMMITs of s fail with a certification
// failure, and counts every COMMIT.
func failCommits(s *mysqlstore.Store, n int32) *atomic.Int32 {
	var commits atomic.Int32
	mysqlstore.SetBeforeCommit(s, func() error {
		if commits.Add(1) <= n {
			return certificationFailure
		}
		return nil
	})
	return &commits
}

func seed(t *testing.T, b *myBackend) {
	b.AddLoadBalancer("lb-1", "ACTIVE", "ONLINE", true)
	b.AddAmphora("amp-1", "lb-1", "ALLOCATED", "c-1")
	b.AddAmphora("amp-2", "lb-1", "ALLOCATED", "c-2")
}

func TestCertificationFailureAtCommitIsRetried(t *testing.T) {
	s, db := openStore(t)
	b := &myBackend{t: t, db: db, s: s}
	seed(t, b)
	commits := failCommits(s, 1)
	err := s.Apply(context.Background(), &healthdb.Writes{Health: []string{"amp-1"},
		LoadBalancers: map[string]string{"lb-1": "DEGRADED"}})
	if err != nil {
		t.Fatalf("Apply after one certification failure: %v", err)
	}
	if got := commits.Load(); got != 2 {
		t.Errorf("%d COMMITs, want 2 (one failed, one retried)", got)
	}
	if _, _, ok := b.Health("amp-1"); !ok {
		t.Error("the retried batch wrote no health row")
	}
	if st, _ := b.OperatingStatus("load_balancer", "lb-1"); st != "DEGRADED" {
		t.Errorf("load balancer %s, want DEGRADED", st)
	}
}

func TestPersistentCertificationFailureIsAFailedWrite(t *testing.T) {
	s, db := openStore(t)
	b := &myBackend{t: t, db: db, s: s}
	seed(t, b)
	commits := failCommits(s, 1000)
	err := s.Apply(context.Background(), &healthdb.Writes{Health: []string{"amp-1"},
		LoadBalancers: map[string]string{"lb-1": "DEGRADED"}})
	var my *mysql.MySQLError
	if !errors.As(err, &my) || my.Number != 1213 {
		t.Fatalf("Apply = %v, want the certification failure", err)
	}
	if got := commits.Load(); got != 3 {
		t.Errorf("%d COMMITs, want 3 attempts", got)
	}
	if _, _, ok := b.Health("amp-1"); ok {
		t.Error("a failed batch left a health row")
	}
	if st, _ := b.OperatingStatus("load_balancer", "lb-1"); st != "ONLINE" {
		t.Errorf("load balancer %s after a failed batch, want ONLINE", st)
	}
}

// A claim that lost certification committed nothing: the retry claims the
// amphora once, and no ambiguous outcome is reported (the server answered).
func TestClaimCertificationFailureIsRetried(t *testing.T) {
	s, db := openStore(t)
	b := &myBackend{t: t, db: db, s: s}
	seed(t, b)
	b.AddHealth("amp-1", time.Hour, false)
	commits := failCommits(s, 1)
	res, err := s.ClaimStale(context.Background(), healthdb.ClaimRequest{HeartbeatTimeout: time.Minute, Limit: 5})
	if err != nil {
		t.Fatalf("ClaimStale after one certification failure: %v", err)
	}
	if len(res.Claimed) != 1 || res.Claimed[0].AmphoraID != "amp-1" || res.Stale != 1 {
		t.Fatalf("ClaimStale = %+v, want amp-1 claimed", res)
	}
	if commits.Load() != 2 {
		t.Errorf("%d COMMITs, want 2", commits.Load())
	}
	if _, busy, _ := b.Health("amp-1"); !busy {
		t.Error("amp-1 not busy after the retried claim")
	}
}

// An amphora id matches its row as Octavia's lookups on MySQL match it,
// by the column's case-insensitive collation; the topology is filed under
// the id the heartbeat carried, and its health row is the amphora's own.
func TestIDsMatchByTheCollationAsInOctavia(t *testing.T) {
	s, db := openStore(t)
	b := &myBackend{t: t, db: db, s: s}
	seed(t, b)
	topos, err := s.LoadTopologies(context.Background(), []string{"AMP-1", "amp-2"})
	if err != nil {
		t.Fatal(err)
	}
	if len(topos) != 2 || topos["AMP-1"] == nil || topos["AMP-1"].LB == nil || topos["AMP-1"].LB.ID != "lb-1" {
		t.Fatalf("topologies %v, want AMP-1 and amp-2 on lb-1", topos)
	}
	if err := s.Apply(context.Background(), &healthdb.Writes{Health: []string{"AMP-1"}}); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM amphora_health WHERE amphora_id = 'amp-1'`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d health rows for amp-1 (%v)", n, err)
	}
}
