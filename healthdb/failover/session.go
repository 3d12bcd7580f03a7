package failover

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
)

// AuthConfig is what [service_auth] says about reaching Keystone.
type AuthConfig struct {
	AuthURL           string
	Username          string
	Password          string // secret: never logged
	ProjectName       string
	ProjectID         string
	UserDomainName    string
	UserDomainID      string
	ProjectDomainName string
	ProjectDomainID   string
	// CAFile is a PEM bundle to verify TLS with; empty means the system
	// roots. Insecure skips verification.
	CAFile   string
	Insecure bool
	// RequestTimeout bounds every HTTP request made with the session,
	// Keystone's included (default 30 s).
	RequestTimeout time.Duration
}

// Session is a Keystone session shared by the Octavia and Nova clients.
// It authenticates on first use, not at construction, so that a health
// manager starts while Keystone is unreachable; a failed authentication is
// retried by the next use. The token is re-used by every request and
// renewed when a service answers 401 (gophercloud's re-authentication).
type Session struct {
	cfg  AuthConfig
	http *http.Client

	mu       sync.Mutex
	provider *gophercloud.ProviderClient
	clients  map[clientKey]*gophercloud.ServiceClient
}

type clientKey struct {
	service       string
	region, iface string
}

// NewSession checks the configuration and prepares the HTTP client; it
// does not contact Keystone.
func NewSession(cfg AuthConfig) (*Session, error) {
	if cfg.AuthURL == "" || cfg.Username == "" || cfg.Password == "" {
		return nil, errors.New("service_auth: auth_url, username and password are required")
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 30 * time.Second
	}
	tlsCfg := &tls.Config{InsecureSkipVerify: cfg.Insecure} //nolint:gosec // [service_auth] insecure, the operator's choice
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read [service_auth] cafile: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("[service_auth] cafile %s holds no PEM certificate", cfg.CAFile)
		}
		tlsCfg.RootCAs = pool
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = tlsCfg
	return &Session{
		cfg:     cfg,
		http:    &http.Client{Transport: transport, Timeout: cfg.RequestTimeout},
		clients: map[clientKey]*gophercloud.ServiceClient{},
	}, nil
}

func (s *Session) authOptions() gophercloud.AuthOptions {
	opts := gophercloud.AuthOptions{
		IdentityEndpoint: s.cfg.AuthURL,
		Username:         s.cfg.Username,
		Password:         s.cfg.Password,
		DomainID:         s.cfg.UserDomainID,
		DomainName:       s.cfg.UserDomainName,
		AllowReauth:      true,
	}
	if s.cfg.ProjectID != "" || s.cfg.ProjectName != "" {
		opts.Scope = &gophercloud.AuthScope{ProjectID: s.cfg.ProjectID}
		if s.cfg.ProjectID == "" {
			opts.Scope.ProjectName = s.cfg.ProjectName
			opts.Scope.DomainID = s.cfg.ProjectDomainID
			opts.Scope.DomainName = s.cfg.ProjectDomainName
		}
	}
	return opts
}

// Availability maps a catalog interface as Octavia's options spell it
// (public, internal, admin, or publicURL, internalURL, adminURL) to
// gophercloud's.
func Availability(iface string) (gophercloud.Availability, error) {
	switch strings.TrimSuffix(strings.ToLower(iface), "url") {
	case "", "public":
		return gophercloud.AvailabilityPublic, nil
	case "internal":
		return gophercloud.AvailabilityInternal, nil
	case "admin":
		return gophercloud.AvailabilityAdmin, nil
	}
	return "", fmt.Errorf("catalog interface %q is not public, internal or admin", iface)
}

// ServiceClient returns the client of one catalog service ("load-balancer"
// or "compute"), authenticating first if no token has been obtained yet.
func (s *Session) ServiceClient(ctx context.Context, service, region, iface string) (*gophercloud.ServiceClient, error) {
	avail, err := Availability(iface)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key := clientKey{service, region, string(avail)}
	if c := s.clients[key]; c != nil {
		return c, nil
	}
	if s.provider == nil {
		p, err := openstack.NewClient(s.cfg.AuthURL)
		if err != nil {
			return nil, fmt.Errorf("keystone auth_url %s: %w", s.cfg.AuthURL, err)
		}
		p.HTTPClient = *s.http
		p.UserAgent.Prepend("octavia-vpp-health")
		if err := openstack.Authenticate(ctx, p, s.authOptions()); err != nil {
			return nil, fmt.Errorf("authenticate with keystone at %s as %s: %w", s.cfg.AuthURL, s.cfg.Username, err)
		}
		s.provider = p
	}
	eo := gophercloud.EndpointOpts{Region: region, Availability: avail}
	var c *gophercloud.ServiceClient
	switch service {
	case "load-balancer":
		c, err = openstack.NewLoadBalancerV2(s.provider, eo)
	case "compute":
		c, err = openstack.NewComputeV2(s.provider, eo)
	default:
		return nil, fmt.Errorf("unknown service %q", service)
	}
	if err != nil {
		return nil, fmt.Errorf("find %s endpoint (region %q, interface %s) in the catalog: %w", service, region, avail, err)
	}
	s.clients[key] = c
	return c, nil
}
