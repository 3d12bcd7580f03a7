package main

import (
	"log/slog"
	"strings"

	"github.com/octavia-vpp/health/healthdb"
	"github.com/octavia-vpp/health/healthdb/failover"
	"github.com/octavia-vpp/health/internal/octaviaconf"
)

// openstackSession returns the Keystone session the configured drivers
// need, or nil when none needs one (failover_driver noop with
// compute_noop_driver). Incomplete [service_auth] credentials are refused
// with the missing options named: failover must never silently do nothing.
func openstackSession(cfg *octaviaconf.Config) (*failover.Session, error) {
	var needs []string
	if cfg.HealthManager.FailoverDriver == failover.DriverOctaviaAPI {
		needs = append(needs, "[health_manager] failover_driver = octavia_api (to call the Octavia API's amphora failover)")
	}
	if cd := cfg.ControllerWorker.ComputeDriver; cd == "" || cd == "compute_nova_driver" {
		needs = append(needs, "[controller_worker] compute_driver = compute_nova_driver (to delete zombie amphorae)")
	}
	if len(needs) == 0 {
		return nil, nil
	}
	sa := &cfg.ServiceAuth
	if missing := sa.MissingCredentials(); len(missing) > 0 {
		return nil, usageError("[service_auth] lacks %s, needed by %s; refusing to start. "+
			"Set them, or choose failover_driver = noop and compute_driver = compute_noop_driver for a dry run",
			strings.Join(missing, ", "), strings.Join(needs, " and "))
	}
	s, err := failover.NewSession(failover.AuthConfig{
		AuthURL: sa.AuthURL, Username: sa.Username, Password: sa.Password,
		ProjectName: sa.ProjectName, ProjectID: sa.ProjectID,
		UserDomainName: sa.UserDomainName, UserDomainID: sa.UserDomainID,
		ProjectDomainName: sa.ProjectDomainName, ProjectDomainID: sa.ProjectDomainID,
		CAFile: sa.CAFile, Insecure: sa.Insecure,
	})
	if err != nil {
		return nil, usageError("%v", err)
	}
	if _, err := failover.Availability(sa.Interface); err != nil {
		return nil, usageError("[service_auth] interface: %v", err)
	}
	if _, err := failover.Availability(cfg.Nova.EndpointType); err != nil {
		return nil, usageError("[nova] endpoint_type: %v", err)
	}
	return s, nil
}

// computeDeleter builds the [controller_worker] compute_driver.
func computeDeleter(cfg *octaviaconf.Config, session *failover.Session, log *slog.Logger) (healthdb.ComputeDeleter, error) {
	d, err := healthdb.NewComputeDeleterFor(healthdb.ComputeConfig{
		Driver: cfg.ControllerWorker.ComputeDriver, Session: session,
		Region: cfg.Nova.RegionName, Interface: cfg.Nova.EndpointType, Logger: log,
	})
	if err != nil {
		return nil, usageError("%v", err)
	}
	return d, nil
}

// failoverDriver builds the [health_manager] failover_driver.
func failoverDriver(cfg *octaviaconf.Config, session *failover.Session, log *slog.Logger) (failover.Driver, error) {
	name := cfg.HealthManager.FailoverDriver
	if err := failover.CheckDriverName(name); err != nil {
		return nil, usageError("%v", err)
	}
	if name == failover.DriverNoop {
		log.Warn("failover_driver is noop: stale amphorae are logged and counted, never failed over")
		return failover.Noop{Log: log}, nil
	}
	return &failover.OctaviaAPI{Session: session, Region: cfg.ServiceAuth.RegionName, Interface: cfg.ServiceAuth.Interface}, nil
}
