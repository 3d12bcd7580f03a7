package healthdb

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/octavia-vpp/health/healthdb/failover"
	"github.com/octavia-vpp/health/healthdb/failover/failovertest"
)

func TestComputeDrivers(t *testing.T) {
	if d, err := NewComputeDeleter("compute_noop_driver", quietLog()); err != nil || d.DeleteCompute(context.Background(), "vm") != nil {
		t.Errorf("noop driver: %v", err)
	}
	if _, err := NewComputeDeleter("compute_nova_driver", quietLog()); err == nil || !strings.Contains(err.Error(), "[service_auth]") {
		t.Errorf("nova driver without a session: err = %v; want one naming [service_auth]", err)
	}
	if _, err := NewComputeDeleter("compute_vmware_driver", quietLog()); err == nil {
		t.Error("an unknown driver was accepted")
	}
}

func TestNovaDeleterRateLimitsRepeats(t *testing.T) {
	fake := failovertest.New(t)
	session, err := failover.NewSession(failover.AuthConfig{
		AuthURL: fake.AuthURL(), Username: failovertest.Username, Password: failovertest.Password,
		ProjectName: failovertest.Project, UserDomainName: failovertest.Domain, ProjectDomainName: failovertest.Domain,
	})
	if err != nil {
		t.Fatal(err)
	}
	clk := newClock()
	d, err := NewComputeDeleterFor(ComputeConfig{Driver: "compute_nova_driver", Session: session, Region: failovertest.Region,
		Interface: "publicURL", RepeatInterval: time.Minute, Now: clk.Now, Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	steps := []struct {
		advance time.Duration
		id      string
		deletes int // Nova calls for id so far
	}{
		{0, "vm-1", 1},
		{10 * time.Second, "vm-1", 1}, // the zombie's next heartbeat: not deleted again
		{0, "vm-2", 1},                // another id is not held back
		{49 * time.Second, "vm-1", 1},
		{2 * time.Second, "vm-1", 2}, // a minute after the first delete
	}
	for i, s := range steps {
		clk.Advance(s.advance)
		if err := d.DeleteCompute(ctx, s.id); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if got := fake.Deletes()[s.id]; got != s.deletes {
			t.Errorf("step %d: %s deleted %d times; want %d", i, s.id, got, s.deletes)
		}
	}

	// A server Nova does not know counts as deleted, as in Octavia.
	if err := d.DeleteCompute(ctx, "gone-vm"); err != nil {
		t.Errorf("delete of a server Nova does not know: %v; want success", err)
	}

	// A failure is repeated to callers within the interval, without a call.
	fake.Server.Close()
	clk.Advance(time.Hour)
	if err := d.DeleteCompute(ctx, "vm-3"); err == nil {
		t.Fatal("delete with Nova down succeeded")
	}
	if err := d.DeleteCompute(ctx, "vm-3"); err == nil || !strings.Contains(err.Error(), "not retried before") {
		t.Errorf("repeat within the interval: %v; want the remembered failure", err)
	}
}
