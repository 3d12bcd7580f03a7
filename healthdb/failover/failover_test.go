package failover_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"

	"github.com/octavia-vpp/health/healthdb/failover"
	"github.com/octavia-vpp/health/healthdb/failover/failovertest"
)

func session(t *testing.T, authURL, password string) *failover.Session {
	t.Helper()
	s, err := failover.NewSession(failover.AuthConfig{
		AuthURL: authURL, Username: failovertest.Username, Password: password,
		ProjectName: failovertest.Project, UserDomainName: failovertest.Domain, ProjectDomainName: failovertest.Domain,
		RequestTimeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestOctaviaAPIResults(t *testing.T) {
	fake := failovertest.New(t)
	codes := map[string]int{"ok": 202, "pending-lb": 409, "gone": 404, "broken": 500, "unavailable": 503}
	fake.Respond(func(id string, _ int) int { return codes[id] })
	api := &failover.OctaviaAPI{Session: session(t, fake.AuthURL(), failovertest.Password), Region: failovertest.Region, Interface: "public"}
	tests := []struct {
		amphora   string
		sentinel  error // nil: success, or a transient error when transient
		transient bool
	}{
		{"ok", nil, false},
		{"pending-lb", failover.ErrImmutable, false},
		{"gone", failover.ErrNotFound, false},
		{"broken", nil, true},
		{"unavailable", nil, true},
	}
	for _, tt := range tests {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := api.Failover(ctx, tt.amphora)
		cancel()
		switch {
		case tt.transient:
			if err == nil || errors.Is(err, failover.ErrImmutable) || errors.Is(err, failover.ErrNotFound) {
				t.Errorf("%s: err = %v; want a transient error", tt.amphora, err)
			}
		case !errors.Is(err, tt.sentinel) || (tt.sentinel == nil && err != nil):
			t.Errorf("%s: err = %v; want %v", tt.amphora, err, tt.sentinel)
		}
		if err != nil && !strings.Contains(err.Error(), tt.amphora) {
			t.Errorf("%s: error %q does not name the amphora", tt.amphora, err)
		}
	}
	if got := fake.Failovers(); len(got) != len(tests) {
		t.Errorf("failover calls %v; want one per amphora", got)
	}
}

// One token serves every request; when Keystone expires it, the next
// request gets 401, authenticates again and is retried once.
func TestTokenReusedAndRenewed(t *testing.T) {
	fake := failovertest.New(t)
	api := &failover.OctaviaAPI{Session: session(t, fake.AuthURL(), failovertest.Password)}
	ctx := context.Background()
	for _, id := range []string{"a", "b", "c"} {
		if err := api.Failover(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if n := fake.TokensIssued(); n != 1 {
		t.Errorf("%d tokens issued for three calls; want 1 (re-used)", n)
	}
	fake.ExpireTokens()
	if err := api.Failover(ctx, "d"); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	if n := fake.TokensIssued(); n != 2 {
		t.Errorf("%d tokens issued after expiry; want 2 (renewed once)", n)
	}
	if got := fake.Failovers(); got["d"] != 1 {
		t.Errorf("calls %v; want d exactly once (the 401 is not counted as a call)", got)
	}
}

func TestAuthenticationFailures(t *testing.T) {
	fake := failovertest.New(t)
	bad := &failover.OctaviaAPI{Session: session(t, fake.AuthURL(), "wrong-password")}
	err := bad.Failover(context.Background(), "a")
	if err == nil {
		t.Fatal("failover with a wrong password succeeded")
	}
	if errors.Is(err, failover.ErrImmutable) || errors.Is(err, failover.ErrNotFound) {
		t.Errorf("auth failure %v must be transient", err)
	}
	if strings.Contains(err.Error(), "wrong-password") {
		t.Errorf("error %q shows the password", err)
	}

	// Keystone down at start: the session is built anyway and the first
	// use after it comes back authenticates.
	down := failovertest.New(t)
	url := down.AuthURL()
	down.Server.Close()
	s := session(t, url, failovertest.Password)
	if err := (&failover.OctaviaAPI{Session: s}).Failover(context.Background(), "a"); err == nil {
		t.Error("failover with Keystone down succeeded")
	}
	up := &failover.OctaviaAPI{Session: session(t, fake.AuthURL(), failovertest.Password)}
	if err := up.Failover(context.Background(), "a"); err != nil {
		t.Errorf("failover with Keystone up: %v", err)
	}
}

func TestNewSessionNeedsCredentials(t *testing.T) {
	for _, cfg := range []failover.AuthConfig{
		{Username: "u", Password: "p"},
		{AuthURL: "http://k/v3", Password: "p"},
		{AuthURL: "http://k/v3", Username: "u"},
		{AuthURL: "http://k/v3", Username: "u", Password: "p", CAFile: "/nonexistent/ca.pem"},
	} {
		if _, err := failover.NewSession(cfg); err == nil {
			t.Errorf("NewSession(%+v) succeeded", cfg)
		}
	}
}

func TestAvailability(t *testing.T) {
	tests := []struct {
		in   string
		want gophercloud.Availability
		ok   bool
	}{
		{"", gophercloud.AvailabilityPublic, true},
		{"public", gophercloud.AvailabilityPublic, true},
		{"publicURL", gophercloud.AvailabilityPublic, true},
		{"internalURL", gophercloud.AvailabilityInternal, true},
		{"internal", gophercloud.AvailabilityInternal, true},
		{"adminURL", gophercloud.AvailabilityAdmin, true},
		{"private", "", false},
	}
	for _, tt := range tests {
		got, err := failover.Availability(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("Availability(%q) = %q, %v; want %q (ok %v)", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestDrivers(t *testing.T) {
	for name, ok := range map[string]bool{"octavia_api": true, "noop": true, "amphora": false, "": false} {
		if err := failover.CheckDriverName(name); (err == nil) != ok {
			t.Errorf("CheckDriverName(%q) = %v", name, err)
		}
	}
	if err := (failover.Noop{Log: slog.New(slog.DiscardHandler)}).Failover(context.Background(), "a"); !errors.Is(err, failover.ErrDryRun) {
		t.Errorf("noop failover = %v; want ErrDryRun", err)
	}
}

func TestOctaviaAPILoadBalancerFailover(t *testing.T) {
	fake := failovertest.New(t)
	codes := map[string]int{"lb-ok": 202, "lb-pending": 409, "lb-gone": 404, "lb-broken": 500}
	fake.RespondLoadBalancer(func(id string, _ int) int { return codes[id] })
	api := &failover.OctaviaAPI{Session: session(t, fake.AuthURL(), failovertest.Password), Region: failovertest.Region}
	for id, want := range map[string]error{"lb-ok": nil, "lb-pending": failover.ErrImmutable, "lb-gone": failover.ErrNotFound} {
		if err := api.FailoverLoadBalancer(context.Background(), id); !errors.Is(err, want) || (want == nil && err != nil) {
			t.Errorf("%s: err = %v; want %v", id, err, want)
		}
	}
	err := api.FailoverLoadBalancer(context.Background(), "lb-broken")
	if err == nil || errors.Is(err, failover.ErrImmutable) || !strings.Contains(err.Error(), "lb-broken") {
		t.Errorf("lb-broken: err = %v; want a transient error naming it", err)
	}
	if got := fake.LoadBalancerFailovers(); len(got) != 4 || len(fake.Failovers()) != 0 {
		t.Errorf("load balancer calls %v, amphora calls %v; want one each for the load balancers only", got, fake.Failovers())
	}
	if err := (failover.Noop{Log: slog.New(slog.DiscardHandler)}).FailoverLoadBalancer(context.Background(), "lb"); !errors.Is(err, failover.ErrDryRun) {
		t.Errorf("noop load balancer failover = %v; want ErrDryRun", err)
	}
}
