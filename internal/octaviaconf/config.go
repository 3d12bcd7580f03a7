// Package octaviaconf reads an operator's existing octavia.conf (oslo.config
// INI syntax) into typed structs that keep Octavia 11's option names and
// defaults.
//
// Only the options the health manager uses are read (docs/config-reference.md).
// Like oslo.config, it ignores options it does not know, but it warns about
// unknown options in [health_manager], where a typo would otherwise silently
// fall back to a default. Values follow oslo's syntax: lists are
// comma-separated, booleans are true/false/yes/no/on/off/1/0, "$name" and
// "${name}" substitute another option of the same section or [DEFAULT], and
// "$$" is a literal "$".
package octaviaconf

import (
	"errors"
	"log/slog"
	"net/netip"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/octavia-vpp/health/internal/errwalk"
)

// Config is the subset of octavia.conf the health manager reads.
type Config struct {
	Default          Default
	Database         Database
	HealthManager    HealthManager
	ControllerWorker ControllerWorker
	ServiceAuth      ServiceAuth
	Nova             Nova
}

// Default holds the [DEFAULT] section.
type Default struct {
	// Debug is [DEFAULT] debug: log at DEBUG level. Default false.
	Debug bool `conf:"DEFAULT debug,boolean,same"`
	Logging
}

// Logging holds oslo.log's [DEFAULT] options other than debug, which
// both programs read (internal/oslolog, docs/configuration.md#logging).
// oslo.log's other options are accepted and ignored.
type Logging struct {
	// LogFile is log_file: the file to log to, inside LogDir when that
	// is set. Default none: standard error.
	LogFile string `conf:"DEFAULT log_file,path,same"`
	// LogDir is log_dir: the directory of log_file, or of <program>.log
	// when log_file is unset.
	LogDir string `conf:"DEFAULT log_dir,path,same"`
	// UseStderr is use_stderr: log to standard error as well as the
	// file or the journal.
	UseStderr bool `conf:"DEFAULT use_stderr,boolean,same"`
	// UseJSON is use_json: one JSON object per line.
	UseJSON bool `conf:"DEFAULT use_json,boolean,same"`
	// UseJournal is use_journal: journald's native protocol.
	UseJournal bool `conf:"DEFAULT use_journal,boolean,same"`
	// UseSyslog is use_syslog: also to the local syslog daemon.
	UseSyslog bool `conf:"DEFAULT use_syslog,boolean,same"`
	// SyslogLogFacility is syslog_log_facility, for syslog and the
	// journal. Default LOG_USER.
	SyslogLogFacility string `conf:"DEFAULT syslog_log_facility,string,same"`
}

// Database holds the [database] section.
type Database struct {
	// Connection is [database] connection. A PostgreSQL URL is rewritten
	// to one pgx accepts: postgresql://, postgres:// and SQLAlchemy's
	// postgresql+psycopg2://, +psycopg:// and +pg8000:// all become
	// postgresql://. A MySQL/MariaDB URL (mysql://, mysql+pymysql://,
	// mysql+mysqldb://) is kept as written and parsed into MySQL. Any
	// other scheme is a load error. Empty when unset: oslo's default
	// (sqlite://) is not supported. Secret: log it only through RedactURL.
	Connection string `conf:"database connection,URL,changed,nodefault,secret"`
	// MySQL is the driver configuration of a MySQL/MariaDB Connection
	// (internal/mysqlconf), nil for PostgreSQL. It holds the password.
	MySQL *mysql.Config
	// MaxPoolSize is [database] max_pool_size: connections per pool.
	// Default 10 (Octavia overrides oslo.db's 5).
	MaxPoolSize int `conf:"database max_pool_size,integer,same"`
	// MaxRetries is [database] max_retries: how many times serve and
	// migrate try to reach the database at start before giving up; -1
	// tries forever, 0 does not wait for it (oslo.db's meaning).
	// Default 10.
	MaxRetries int `conf:"database max_retries,integer,same"`
	// RetryInterval is [database] retry_interval: the pause between those
	// attempts. Default 10 s.
	RetryInterval time.Duration `conf:"database retry_interval,seconds,same"`
}

// IsMySQL reports whether Connection names a MySQL or MariaDB database.
func (d *Database) IsMySQL() bool { return d.MySQL != nil }

// HealthManager holds the [health_manager] section (docs/config-reference.md).
type HealthManager struct {
	// BindIP is bind_ip: the heartbeat receiver's address. Default
	// 127.0.0.1.
	BindIP netip.Addr `conf:"health_manager bind_ip,IP address,same"`
	// BindPort is bind_port: the heartbeat receiver's UDP port. Default
	// 5555.
	BindPort int `conf:"health_manager bind_port,port,same"`
	// FailoverThreads is failover_threads: concurrent failovers, and the
	// most started per health-check cycle. Default 10.
	FailoverThreads int `conf:"health_manager failover_threads,integer,same"`
	// HealthUpdateThreads is health_update_threads: the workers that
	// verify and decode heartbeats (Octavia: the processes that verify,
	// decode and apply them; here the database writes are batched apart,
	// docs/architecture.md). Unset means the CPU count, as Octavia's None.
	HealthUpdateThreads int `conf:"health_manager health_update_threads,integer,changed,cpus"`
	// HeartbeatKey is heartbeat_key: the HMAC key heartbeats are signed
	// with. No default. Secret.
	HeartbeatKey string `conf:"health_manager heartbeat_key,string,changed,nodefault,secret"`
	// HeartbeatKeySet tells an empty key apart from an unset one.
	HeartbeatKeySet bool
	// HeartbeatTimeout is heartbeat_timeout (seconds in the file): silence
	// after which an amphora is stale; also the start-up delay before the
	// first health check. Default 60s.
	HeartbeatTimeout time.Duration `conf:"health_manager heartbeat_timeout,seconds,same"`
	// HealthCheckInterval is health_check_interval (seconds): the period
	// of the stale-amphora check. Default 3s.
	HealthCheckInterval time.Duration `conf:"health_manager health_check_interval,seconds,same"`
	// SockRlimit is sock_rlimit: SO_RCVBUF for the receiver socket when
	// greater than 0. Default 0 (leave the kernel default).
	SockRlimit int `conf:"health_manager sock_rlimit,integer,same"`
	// FailoverThreshold is failover_threshold: when at least this many
	// amphorae are stale at once, none is failed over (FAILOVER_STOPPED).
	// Only meaningful when FailoverThresholdSet; Octavia's default is
	// None, i.e. no circuit breaker. 0 is a valid, distinct setting.
	FailoverThreshold    int `conf:"health_manager failover_threshold,integer,same,nodefault"`
	FailoverThresholdSet bool
	// ControllerIPPortList is controller_ip_port_list: "host:port"
	// heartbeat destinations rendered into amphora configurations.
	// Default empty.
	ControllerIPPortList []string `conf:"health_manager controller_ip_port_list,list,same"`
	// HeartbeatInterval is heartbeat_interval (seconds): the amphora's send
	// period, and on the controller the age beyond which a queued heartbeat
	// is dropped. Default 10s.
	HeartbeatInterval time.Duration `conf:"health_manager heartbeat_interval,seconds,same"`
	// HealthUpdateDriver is health_update_driver. Deprecated in Octavia
	// and without effect; read only so that old files keep loading.
	// Default "health_db".
	HealthUpdateDriver string `conf:"health_manager health_update_driver,string,same"`

	// Options of ours, not Octavia's (docs/configuration.md):

	// HeartbeatKeyPrevious is heartbeat_key_previous: keys still accepted
	// on receive while amphorae are re-keyed. Default empty. Secret.
	HeartbeatKeyPrevious []string `conf:"health_manager heartbeat_key_previous,list,ours,secret"`
	// ReceiveSockets is receive_sockets: SO_REUSEPORT sockets sharing the
	// heartbeat port. Default: the CPU count.
	ReceiveSockets int `conf:"health_manager receive_sockets,integer,ours,cpus"`
	// MetricsBind is metrics_bind: host:port serving /metrics and /healthz.
	// Default 127.0.0.1:9102; empty disables it.
	MetricsBind string `conf:"health_manager metrics_bind,host:port,ours"`
	// PprofBind is pprof_bind: a loopback host:port serving
	// net/http/pprof. Default empty: off.
	PprofBind string `conf:"health_manager pprof_bind,host:port,ours"`
	// MaxHeartbeatBytes is max_heartbeat_bytes: the largest inflated
	// heartbeat accepted. Default 4 MiB.
	MaxHeartbeatBytes int `conf:"health_manager max_heartbeat_bytes,integer,ours"`
	// HealthBatchSize is health_batch_size: most heartbeats applied in one
	// database transaction. Default 512.
	HealthBatchSize int `conf:"health_manager health_batch_size,integer,ours"`
	// HealthBatchWait is health_batch_wait_ms (milliseconds in the file):
	// how long a batch waits to fill. Default 20 ms.
	HealthBatchWait time.Duration `conf:"health_manager health_batch_wait_ms,milliseconds,ours,ms"`
	// TopologyCache is topology_cache_seconds (seconds in the file): how
	// long load balancer topologies are kept between health batches at
	// most, each use checked against the load balancer's versions, which
	// triggers keep (PostgreSQL only). Default DefaultTopologyCache; 0 is
	// off: every batch reads them afresh, as Octavia does. See
	// docs/deviations.md.
	TopologyCache time.Duration `conf:"health_manager topology_cache_seconds,seconds,ours"`
	// TopologyCacheMaxMB is topology_cache_max_mb: the most memory, in MiB
	// of cached ids and statuses, the topology cache holds; when full it
	// admits no more load balancers, which are then read afresh every
	// batch. Default DefaultTopologyCacheMaxMB.
	TopologyCacheMaxMB int `conf:"health_manager topology_cache_max_mb,integer,ours"`
	// QueueSize is queue_size: the bound of each queue between receiving
	// and applying (received datagrams, health, stats); when one is full
	// its oldest entry is discarded and counted. Default 16384.
	QueueSize int `conf:"health_manager queue_size,integer,ours"`
	// StatsFlushInterval is stats_flush_interval_ms (milliseconds in the
	// file): how often aggregated listener statistics are written.
	// Default 1 s.
	StatsFlushInterval time.Duration `conf:"health_manager stats_flush_interval_ms,milliseconds,ours,ms"`
	// GCHeapTargetMB is gc_heap_target_mb: how large, in MiB, the Go heap
	// may grow between garbage collections, as long as that is more than
	// Go's default pacing allows (twice the live heap); 0 keeps Go's
	// default. Ignored when GOGC or GOMEMLIMIT is set in the environment.
	// Default 128. See docs/performance.md.
	GCHeapTargetMB int `conf:"health_manager gc_heap_target_mb,integer,ours"`
	// StatsMaxPairs is stats_max_pairs: the most (listener, amphora) pairs
	// whose statistics are held while the database is unavailable.
	// Default 1,000,000.
	StatsMaxPairs int `conf:"health_manager stats_max_pairs,integer,ours"`
	// FailoverDriver is failover_driver: how a stale amphora is failed
	// over. "octavia_api" (the default) calls the Octavia API's amphora
	// failover with the [service_auth] credentials; "noop" only logs and
	// counts (tests, dry runs).
	FailoverDriver string `conf:"health_manager failover_driver,string,ours"`
	// FailoverBreakerHold is failover_breaker_hold: when the
	// failover_threshold breaker lets go, claim nothing for
	// heartbeat_timeout, so amphorae returning from a mass silence are not
	// failed over a moment before their next heartbeat. False is Octavia's
	// behaviour. Default true.
	FailoverBreakerHold bool `conf:"health_manager failover_breaker_hold,boolean,ours"`
	// ReplayWindow is replay_window (seconds): when greater than 0, a
	// heartbeat stamped with "ts" and "boot" (our agent's) is rejected if
	// ts is further than this from the receiver's clock or (boot, seq) is
	// not newer than the amphora's last accepted one. Default 0 (off).
	ReplayWindow time.Duration `conf:"health_manager replay_window,seconds,ours"`
	// StrictHeartbeats is strict_heartbeats: reject whole, as malformed,
	// a heartbeat with a field missing or of another type than a
	// well-formed heartbeat has, where Octavia applies it in whole or in
	// part. Default false (Octavia's behaviour).
	StrictHeartbeats bool `conf:"health_manager strict_heartbeats,boolean,ours"`
	// Shadow is shadow: run beside Octavia's own health manager on the
	// same database, read-only, and report every decision that differs
	// from what it wrote (docs/shadow.md). Default false.
	Shadow bool `conf:"health_manager shadow,boolean,ours"`
	// ShadowDisagreementFile is shadow_disagreement_file: where the shadow
	// keeps its last 1,000 disagreements with their datagrams, as JSON
	// lines replay reads. Empty (the default) puts
	// shadow-disagreements.jsonl in systemd's $STATE_DIRECTORY, else in
	// /var/lib/octavia (manager.ShadowDisagreementFile).
	ShadowDisagreementFile string `conf:"health_manager shadow_disagreement_file,path,ours"`
	// ShadowForwardTo is shadow_forward_to: "host:port" entries (the
	// syntax of controller_ip_port_list) of the real controllers a shadow
	// listed among the amphorae's controllers forwards every datagram to,
	// unchanged, in turn (docs/shadow.md). Default empty: no forwarding.
	ShadowForwardTo []string `conf:"health_manager shadow_forward_to,list,ours"`
}

// ServiceAuth holds the [service_auth] section: the Keystone credentials
// Octavia's services use to call other services (keystoneauth's password
// plugin and session options, with their names).
type ServiceAuth struct {
	// AuthURL is auth_url: the Keystone endpoint, versioned (".../v3") or
	// not. No default.
	AuthURL string `conf:"service_auth auth_url,URL,same,nodefault"`
	// Username and Password are username and password. No default.
	// Password is secret.
	Username string `conf:"service_auth username,string,same,nodefault"`
	Password string `conf:"service_auth password,string,same,nodefault,secret"`
	// ProjectName or ProjectID is the project the token is scoped to.
	ProjectName string `conf:"service_auth project_name,string,same,nodefault"`
	ProjectID   string `conf:"service_auth project_id,string,same,nodefault"`
	// UserDomainName or UserDomainID is the user's domain.
	UserDomainName string `conf:"service_auth user_domain_name,string,same,nodefault"`
	UserDomainID   string `conf:"service_auth user_domain_id,string,same,nodefault"`
	// ProjectDomainName or ProjectDomainID is the project's domain, needed
	// with ProjectName.
	ProjectDomainName string `conf:"service_auth project_domain_name,string,same,nodefault"`
	ProjectDomainID   string `conf:"service_auth project_domain_id,string,same,nodefault"`
	// CAFile is cafile: PEM bundle to verify TLS with. Default: the system
	// roots.
	CAFile string `conf:"service_auth cafile,path,same,nodefault"`
	// Insecure is insecure: skip TLS verification. Default false.
	Insecure bool `conf:"service_auth insecure,boolean,same"`
	// RegionName is region_name: the catalog region of the Octavia API.
	// Default: any.
	RegionName string `conf:"service_auth region_name,string,same,nodefault"`
	// Interface is interface: the catalog interface of the Octavia API
	// (public, internal, admin). Default "public".
	Interface string `conf:"service_auth interface,string,same"`
}

// MissingCredentials names the [service_auth] options that must be set
// before a token can be requested, in a stable order; nil when none is
// missing. Alternatives are named together ("project_name or
// project_id").
func (a *ServiceAuth) MissingCredentials() []string {
	var missing []string
	for _, o := range []struct {
		set  bool
		name string
	}{
		{a.AuthURL != "", "auth_url"},
		{a.Username != "", "username"},
		{a.Password != "", "password"},
		{a.ProjectName != "" || a.ProjectID != "", "project_name or project_id"},
		{a.UserDomainName != "" || a.UserDomainID != "", "user_domain_name or user_domain_id"},
		{a.ProjectName == "" || a.ProjectDomainName != "" || a.ProjectDomainID != "", "project_domain_name or project_domain_id"},
	} {
		if !o.set {
			missing = append(missing, o.name)
		}
	}
	return missing
}

// Nova holds the options of [nova] the health manager reads.
type Nova struct {
	// RegionName is region_name: the catalog region of Nova. Default: any.
	RegionName string `conf:"nova region_name,string,same,nodefault"`
	// EndpointType is endpoint_type: the catalog interface of Nova.
	// Default "publicURL" (publicURL, internalURL, adminURL, or the same
	// without "URL").
	EndpointType string `conf:"nova endpoint_type,string,same"`
}

// ControllerWorker holds the options of [controller_worker] the health
// manager reads.
type ControllerWorker struct {
	// StatisticsDrivers is statistics_drivers: listener-statistics drivers
	// by Octavia name. Default ["stats_db"]. The deprecated
	// [health_manager] stats_update_driver is used when this is unset.
	StatisticsDrivers []string `conf:"controller_worker statistics_drivers,list,changed"`
	// ComputeDriver is compute_driver: used to delete zombie amphorae.
	// Default "compute_nova_driver".
	ComputeDriver string `conf:"controller_worker compute_driver,string,same"`
}

// Load reads the files in order; a later file overrides options set by an
// earlier one, as with oslo's repeated --config-file. With no files it
// returns Defaults(). Warnings (unknown [health_manager] options,
// deprecated names) go to slog's default logger.
//
// The error lists every problem found, not just the first: each file that
// cannot be read or parsed (*FileError), or else each bad value
// (*OptionError). Problems splits it.
func Load(files ...string) (*Config, error) {
	cfg, err := load(slog.Default(), files...)
	if err != nil {
		return nil, err
	}
	return cfg, nil
}

// Check is Load for a configuration check (--check): when the files parse
// but some values are bad, it returns the configuration with those
// options at their defaults along with the error, so that further checks
// can run on the rest. The configuration is nil only when a file could
// not be read or parsed.
func Check(log *slog.Logger, files ...string) (*Config, error) {
	return load(log, files...)
}

// Problems flattens an error from Load or Check into its problems, in
// the order they were found.
func Problems(err error) []error { return errwalk.Leaves(err) }

func load(log *slog.Logger, files ...string) (*Config, error) {
	cfg := Defaults()
	if len(files) == 0 {
		return cfg, nil
	}
	src, err := readFiles(files)
	if err != nil {
		return nil, err
	}
	r := &reader{src: src}

	r.boolean("DEFAULT", "debug", &cfg.Default.Debug)
	lg := &cfg.Default.Logging
	r.str("DEFAULT", "log_file", &lg.LogFile)
	r.str("DEFAULT", "log_dir", &lg.LogDir)
	r.boolean("DEFAULT", "use_stderr", &lg.UseStderr)
	r.boolean("DEFAULT", "use_json", &lg.UseJSON)
	r.boolean("DEFAULT", "use_journal", &lg.UseJournal)
	r.boolean("DEFAULT", "use_syslog", &lg.UseSyslog)
	r.facility("DEFAULT", "syslog_log_facility", &lg.SyslogLogFacility)

	r.connection(&cfg.Database)
	r.integer("database", "max_pool_size", 1, &cfg.Database.MaxPoolSize)
	r.integer("database", "max_retries", -1, &cfg.Database.MaxRetries)
	r.seconds("database", "retry_interval", 0, &cfg.Database.RetryInterval)

	hm := &cfg.HealthManager
	r.ip("health_manager", "bind_ip", &hm.BindIP)
	r.port("health_manager", "bind_port", &hm.BindPort)
	r.integer("health_manager", "failover_threads", 1, &hm.FailoverThreads)
	r.integer("health_manager", "health_update_threads", 1, &hm.HealthUpdateThreads)
	hm.HeartbeatKeySet = r.secret("health_manager", "heartbeat_key", &hm.HeartbeatKey)
	r.seconds("health_manager", "heartbeat_timeout", 1, &hm.HeartbeatTimeout)
	r.seconds("health_manager", "health_check_interval", 1, &hm.HealthCheckInterval)
	r.integer("health_manager", "sock_rlimit", 0, &hm.SockRlimit)
	hm.FailoverThresholdSet = r.integer("health_manager", "failover_threshold", 0, &hm.FailoverThreshold)
	r.list("health_manager", "controller_ip_port_list", &hm.ControllerIPPortList)
	r.seconds("health_manager", "heartbeat_interval", 1, &hm.HeartbeatInterval)
	r.secretList("health_manager", "heartbeat_key_previous", &hm.HeartbeatKeyPrevious)
	r.integer("health_manager", "receive_sockets", 1, &hm.ReceiveSockets)
	r.str("health_manager", "metrics_bind", &hm.MetricsBind)
	r.str("health_manager", "pprof_bind", &hm.PprofBind)
	r.integer("health_manager", "max_heartbeat_bytes", 1024, &hm.MaxHeartbeatBytes)
	r.integer("health_manager", "health_batch_size", 1, &hm.HealthBatchSize)
	var waitMS int
	if r.integer("health_manager", "health_batch_wait_ms", 1, &waitMS) {
		hm.HealthBatchWait = time.Duration(waitMS) * time.Millisecond
	}
	var cacheSeconds int
	if r.integer("health_manager", "topology_cache_seconds", 0, &cacheSeconds) {
		hm.TopologyCache = time.Duration(cacheSeconds) * time.Second
	}
	r.integer("health_manager", "topology_cache_max_mb", 1, &hm.TopologyCacheMaxMB)
	r.integer("health_manager", "queue_size", 1, &hm.QueueSize)
	var flushMS int
	if r.integer("health_manager", "stats_flush_interval_ms", 1, &flushMS) {
		hm.StatsFlushInterval = time.Duration(flushMS) * time.Millisecond
	}
	r.integer("health_manager", "stats_max_pairs", 1, &hm.StatsMaxPairs)
	r.integer("health_manager", "gc_heap_target_mb", 0, &hm.GCHeapTargetMB)
	r.seconds("health_manager", "replay_window", 0, &hm.ReplayWindow)
	if r.str("health_manager", "health_update_driver", &hm.HealthUpdateDriver) {
		log.Warn("config option is deprecated and has no effect", "file", r.fileOf("health_manager", "health_update_driver"),
			"section", "health_manager", "option", "health_update_driver")
	}

	cw := &cfg.ControllerWorker
	if !r.list("controller_worker", "statistics_drivers", &cw.StatisticsDrivers) {
		// oslo's deprecated_opts: the old name counts only when the new
		// one is unset.
		if r.list("health_manager", "stats_update_driver", &cw.StatisticsDrivers) {
			log.Warn("config option is deprecated; use [controller_worker] statistics_drivers",
				"file", r.fileOf("health_manager", "stats_update_driver"),
				"section", "health_manager", "option", "stats_update_driver")
		}
	}
	r.str("controller_worker", "compute_driver", &cw.ComputeDriver)
	r.str("health_manager", "failover_driver", &hm.FailoverDriver)
	r.boolean("health_manager", "failover_breaker_hold", &hm.FailoverBreakerHold)
	r.boolean("health_manager", "strict_heartbeats", &hm.StrictHeartbeats)
	r.boolean("health_manager", "shadow", &hm.Shadow)
	r.str("health_manager", "shadow_disagreement_file", &hm.ShadowDisagreementFile)
	r.list("health_manager", "shadow_forward_to", &hm.ShadowForwardTo)

	sa := &cfg.ServiceAuth
	r.str("service_auth", "auth_url", &sa.AuthURL)
	r.str("service_auth", "username", &sa.Username)
	r.secret("service_auth", "password", &sa.Password)
	r.str("service_auth", "project_name", &sa.ProjectName)
	r.str("service_auth", "project_id", &sa.ProjectID)
	r.str("service_auth", "user_domain_name", &sa.UserDomainName)
	r.str("service_auth", "user_domain_id", &sa.UserDomainID)
	r.str("service_auth", "project_domain_name", &sa.ProjectDomainName)
	r.str("service_auth", "project_domain_id", &sa.ProjectDomainID)
	r.str("service_auth", "cafile", &sa.CAFile)
	r.boolean("service_auth", "insecure", &sa.Insecure)
	r.str("service_auth", "region_name", &sa.RegionName)
	r.str("service_auth", "interface", &sa.Interface)
	r.str("nova", "region_name", &cfg.Nova.RegionName)
	r.str("nova", "endpoint_type", &cfg.Nova.EndpointType)

	warnUnknown(log, src, "health_manager", healthManagerOptions)
	return cfg, errors.Join(r.errs...)
}

// IgnoredOptions ("section option") are Octavia's options that are
// accepted and ignored: the health manager has nothing they would tune.
// docs/config-reference.md lists them as such.
//   - [health_manager] stats_update_threads sizes Octavia's statistics
//     process pool; statistics here go through one queue to the drivers.
var IgnoredOptions = []string{
	"health_manager stats_update_threads",
}

// healthManagerOptions are the [health_manager] option names Octavia 11
// defines (octavia/common/config.py) plus the deprecated alias read above.
var healthManagerOptions = []string{
	"bind_ip", "bind_port", "failover_threads", "health_update_threads",
	"stats_update_threads", "heartbeat_key", "heartbeat_timeout",
	"health_check_interval", "sock_rlimit", "failover_threshold",
	"controller_ip_port_list", "heartbeat_interval", "health_update_driver",
	"stats_update_driver",
	// ours
	"heartbeat_key_previous", "receive_sockets", "metrics_bind", "pprof_bind", "max_heartbeat_bytes",
	"health_batch_size", "health_batch_wait_ms", "topology_cache_seconds", "topology_cache_max_mb", "queue_size",
	"stats_flush_interval_ms", "stats_max_pairs", "gc_heap_target_mb", "failover_driver", "replay_window",
	"failover_breaker_hold", "strict_heartbeats", "shadow", "shadow_disagreement_file", "shadow_forward_to",
}
