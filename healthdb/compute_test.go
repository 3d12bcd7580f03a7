package healthdb

import (
	"context"
	"strings"
	"testing"

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

func TestNovaDeleter(t *testing.T) {
	fake := failovertest.New(t)
	d, err := NewComputeDeleterFor(ComputeConfig{Driver: "compute_nova_driver", Session: fakeSession(t, fake),
		Region: failovertest.Region, Interface: "publicURL", Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := d.DeleteCompute(ctx, "vm-1"); err != nil {
		t.Fatal(err)
	}
	// A server Nova does not know counts as deleted, as in Octavia.
	if err := d.DeleteCompute(ctx, "gone-vm"); err != nil {
		t.Errorf("delete of a server Nova does not know: %v; want success", err)
	}
	if got := fake.Deletes(); got["vm-1"] != 1 || got["gone-vm"] != 1 {
		t.Errorf("deletes %v; want one each", got)
	}
	fake.Server.Close()
	if err := d.DeleteCompute(ctx, "vm-3"); err == nil {
		t.Fatal("delete with Nova down succeeded")
	}
}

func fakeSession(t *testing.T, fake *failovertest.Fake) *failover.Session {
	t.Helper()
	session, err := failover.NewSession(failover.AuthConfig{
		AuthURL: fake.AuthURL(), Username: failovertest.Username, Password: failovertest.Password,
		ProjectName: failovertest.Project, UserDomainName: failovertest.Domain, ProjectDomainName: failovertest.Domain,
	})
	if err != nil {
		t.Fatal(err)
	}
	return session
}
