package agent

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/octavia-vpp/health/heartbeat"
	"github.com/octavia-vpp/health/heartbeat/udp"
	"github.com/octavia-vpp/health/internal/octaviaconf"
	"github.com/octavia-vpp/health/vpp"
)

// Config is what the agent reads from amphora-agent.conf. Octavia's
// sections and option names are kept; [vpp] and a few [amphora_agent]
// options are new.
type Config struct {
	// AmphoraID is [amphora_agent] amphora_id: the heartbeat "id".
	// Required.
	AmphoraID string `conf:"amphora_agent amphora_id,string,same,nodefault"`
	// StatusBind is [amphora_agent] status_bind: the local HTTP API.
	// Default 127.0.0.1:9446 (Octavia's own agent API uses 9443). Empty
	// disables the API.
	StatusBind string `conf:"amphora_agent status_bind,host:port,ours"`
	// AllowRemoteMarks is [amphora_agent] allow_remote_marks: accept POST
	// /marks on the API. Default false.
	AllowRemoteMarks bool `conf:"amphora_agent allow_remote_marks,boolean,ours"`
	// SpoolDir is [amphora_agent] spool_dir: the operator marks. Default
	// <base_path>/marks.
	SpoolDir string `conf:"amphora_agent spool_dir,path,ours,computed"`
	// VPPUnreachableLimit is [amphora_agent] vpp_unreachable_limit
	// (seconds): VPP silence after which the agent calls itself faulty and
	// leaves the listeners VPP serves out of its heartbeats, so that the
	// amphora is failed over. Default 30s; must be positive.
	VPPUnreachableLimit time.Duration `conf:"amphora_agent vpp_unreachable_limit,seconds,ours"`
	// ShutdownTimeout is [amphora_agent] shutdown_timeout (seconds): a
	// shutdown taking longer is reported as stuck. Default 10s.
	ShutdownTimeout time.Duration `conf:"amphora_agent shutdown_timeout,seconds,ours"`
	// HeartbeatZlibLevel is [amphora_agent] heartbeat_zlib_level: the
	// deflate level heartbeats are compressed at, 1 (fastest) to 9
	// (Octavia's agent). Default 1: ids are random hex, so level 9 saves
	// under 5% of the datagram for several times the CPU
	// (docs/performance.md, "Amphora agent"). Any level inflates the same.
	HeartbeatZlibLevel int `conf:"amphora_agent heartbeat_zlib_level,integer,ours"`
	// MemoryLimitMiB is [amphora_agent] memory_limit_mib: Go's soft
	// memory limit, raised when the heap needs more (RunMemoryLimit).
	// Default 0, which leaves the runtime's default (no
	// limit, or GOMEMLIMIT), as does GOMEMLIMIT in the environment.
	MemoryLimitMiB int `conf:"amphora_agent memory_limit_mib,integer,ours"`
	// GCPercent is [amphora_agent] gc_percent: the Go collector's GOGC,
	// how far the heap grows past the live heap before a collection, in
	// percent. Default 50 (the runtime's is 100); GOGC in the environment
	// wins (ApplyGCPercent).
	GCPercent int `conf:"amphora_agent gc_percent,integer,ours"`

	// Controllers is [health_manager] controller_ip_port_list, as written
	// (entries are checked by Validate).
	Controllers []string `conf:"health_manager controller_ip_port_list,list,changed"`
	// HeartbeatInterval is [health_manager] heartbeat_interval (seconds).
	// Default 10s.
	HeartbeatInterval time.Duration `conf:"health_manager heartbeat_interval,seconds,same"`
	// HeartbeatKey is [health_manager] heartbeat_key. Required. Secret.
	HeartbeatKey string `conf:"health_manager heartbeat_key,string,same,nodefault,secret"`

	// BasePath is [haproxy_amphora] base_path: where the counter file
	// lives. Default /var/lib/octavia.
	BasePath string `conf:"haproxy_amphora base_path,path,same"`

	// Debug is [DEFAULT] debug: log at DEBUG level (also --debug).
	// Default false.
	Debug bool `conf:"DEFAULT debug,boolean,same"`
	// Logging is the rest of oslo.log's [DEFAULT] options
	// (internal/oslolog).
	Logging octaviaconf.Logging

	VPP VPPConfig
}

// VPPConfig is the [vpp] section.
type VPPConfig struct {
	// APISocket is api_socket. Default /run/vpp/api.sock.
	APISocket string `conf:"vpp api_socket,path,ours"`
	// StatsSocket is stats_socket. Default /run/vpp/stats.sock; empty
	// reads counters through the CLI only.
	StatsSocket string `conf:"vpp stats_socket,path,ours"`
	// Dataplane is dataplane: "govpp" (default) or "sim" (the in-process
	// simulator, for demos).
	Dataplane string `conf:"vpp dataplane,string,ours"`
	// LBConfigFile is lb_config_file: the LB description. Default
	// /etc/octavia/amphora-lb.json.
	LBConfigFile string `conf:"vpp lb_config_file,path,ours"`
	// IP4Src and IP6Src are ip4_src_address and ip6_src_address: the outer
	// source addresses of encapsulated packets.
	IP4Src netip.Addr `conf:"vpp ip4_src_address,IP address,ours,nodefault"`
	IP6Src netip.Addr `conf:"vpp ip6_src_address,IP address,ours,nodefault"`
	// StickyBucketsPerCore is sticky_buckets_per_core (power of two).
	// Default 1024, VPP's.
	StickyBucketsPerCore uint32 `conf:"vpp sticky_buckets_per_core,integer,ours"`
	// FlowTimeout is flow_timeout (seconds). Default 40s, VPP's.
	FlowTimeout time.Duration `conf:"vpp flow_timeout,seconds,ours"`
	// Encap is encap: gre4 (default), gre6, l3dsr, nat4 or nat6.
	Encap vpp.Encap `conf:"vpp encap,string,ours"`
	// SyncInterval is sync_interval (seconds): the full re-sync period.
	// Default 30s.
	SyncInterval time.Duration `conf:"vpp sync_interval,seconds,ours"`
	// StartupMinDelay and StartupMaxDelay are startup_min_delay and
	// startup_max_delay (seconds, fractions allowed): the warm-up bounds.
	// Defaults 5s and 30s.
	StartupMinDelay time.Duration `conf:"vpp startup_min_delay,seconds,ours"`
	StartupMaxDelay time.Duration `conf:"vpp startup_max_delay,seconds,ours"`
}

// DefaultConfig returns the defaults of every option.
func DefaultConfig() Config {
	return Config{
		StatusBind:          "127.0.0.1:9446",
		VPPUnreachableLimit: 30 * time.Second,
		ShutdownTimeout:     10 * time.Second,
		HeartbeatZlibLevel:  DefaultHeartbeatZlibLevel,
		MemoryLimitMiB:      DefaultMemoryLimitMiB,
		GCPercent:           DefaultGCPercent,
		HeartbeatInterval:   10 * time.Second,
		BasePath:            "/var/lib/octavia",
		Logging:             octaviaconf.DefaultLogging(),
		VPP: VPPConfig{
			APISocket:            "/run/vpp/api.sock",
			StatsSocket:          "/run/vpp/stats.sock",
			Dataplane:            "govpp",
			LBConfigFile:         "/etc/octavia/amphora-lb.json",
			StickyBucketsPerCore: vpp.DefaultStickyBucketsPerWorker,
			FlowTimeout:          vpp.DefaultFlowTimeout,
			SyncInterval:         30 * time.Second,
			StartupMinDelay:      5 * time.Second,
			StartupMaxDelay:      30 * time.Second,
		},
	}
}

// DefaultHeartbeatZlibLevel is heartbeat_zlib_level's default.
const DefaultHeartbeatZlibLevel = 1

// CounterFile is the path of the V3 counter file.
func (c *Config) CounterFile() string { return filepath.Join(c.BasePath, CounterFileName) }

// ConfigFileError is a config file that cannot be read or is not valid
// INI (check-config exit code 1). It is the health manager's error: both
// programs read their files through octaviaconf.
type ConfigFileError = octaviaconf.FileError

// maxSeconds is the largest number of seconds a time.Duration holds.
const maxSeconds = float64(math.MaxInt64 / int64(time.Second))

// LoadConfig reads amphora-agent.conf files in order (a later file
// overrides an earlier one, as with oslo's repeated --config-file) and
// validates the result. The files are read as the health manager reads
// octavia.conf (octaviaconf.ReadINI), so values follow oslo.config: lists
// are comma-separated, "$name" and "${section.name}" take another option's
// value, "$$" is a literal "$", there are no inline comments.
//
// The error names every problem (errors.Join). When every file parses,
// the configuration is returned even with bad values (those keep their
// defaults), so that a check can go on to the LB description; it is nil
// only when a file could not be read or parsed (*ConfigFileError).
func LoadConfig(files ...string) (*Config, error) {
	c := DefaultConfig()
	f, err := octaviaconf.ReadINI(files...)
	if err != nil {
		return nil, err
	}
	var errs []error
	hidden := map[string]bool{} // options that substitute a secret, as errors name them
	// value returns an option by its key: section, dot, option.
	value := func(key string) (string, bool) {
		section, option, _ := strings.Cut(key, ".")
		v, ok, err := f.Lookup(section, option)
		if err != nil {
			errs = append(errs, err)
		}
		if ok && f.SubstitutesSecret(section, option) {
			hidden[optionName(key)] = true
		}
		return v, ok
	}
	str := func(key string, dst *string) bool {
		v, ok := value(key)
		if ok {
			*dst = v
		}
		return ok
	}
	seconds := func(key string, dst *time.Duration) {
		if v, ok := value(key); ok {
			f, err := strconv.ParseFloat(v, 64)
			// The negated test also refuses NaN; the bound keeps the
			// nanoseconds inside a time.Duration.
			if err != nil || !(f >= 0 && f <= maxSeconds) {
				errs = append(errs, fmt.Errorf("%s = %q: not a number of seconds", optionName(key), v))
				return
			}
			*dst = time.Duration(f * float64(time.Second))
		}
	}
	addr := func(key string, dst *netip.Addr) {
		if v, ok := value(key); ok && v != "" {
			a, err := netip.ParseAddr(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s = %q: not an IP address", optionName(key), v))
				return
			}
			*dst = a
		}
	}
	boolean := func(key string, dst *bool) {
		if v, ok := value(key); ok {
			b, err := parseBool(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", optionName(key), err))
				return
			}
			*dst = b
		}
	}
	boolean("DEFAULT.debug", &c.Debug)
	str("DEFAULT.log_file", &c.Logging.LogFile)
	str("DEFAULT.log_dir", &c.Logging.LogDir)
	boolean("DEFAULT.use_stderr", &c.Logging.UseStderr)
	boolean("DEFAULT.use_json", &c.Logging.UseJSON)
	boolean("DEFAULT.use_journal", &c.Logging.UseJournal)
	boolean("DEFAULT.use_syslog", &c.Logging.UseSyslog)
	if v, ok := value("DEFAULT.syslog_log_facility"); ok {
		if _, err := octaviaconf.SyslogFacility(v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", optionName("DEFAULT.syslog_log_facility"), err))
		} else {
			c.Logging.SyslogLogFacility = v
		}
	}
	str("amphora_agent.amphora_id", &c.AmphoraID)
	str("amphora_agent.status_bind", &c.StatusBind)
	if v, ok := value("amphora_agent.allow_remote_marks"); ok {
		b, err := parseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("[amphora_agent] allow_remote_marks: %w", err))
		} else {
			c.AllowRemoteMarks = b
		}
	}
	spoolSet := str("amphora_agent.spool_dir", &c.SpoolDir)
	seconds("amphora_agent.vpp_unreachable_limit", &c.VPPUnreachableLimit)
	seconds("amphora_agent.shutdown_timeout", &c.ShutdownTimeout)
	if v, ok := value("amphora_agent.memory_limit_mib"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			errs = append(errs, fmt.Errorf("[amphora_agent] memory_limit_mib = %q: not a number of MiB", v))
		} else {
			c.MemoryLimitMiB = n
		}
	}
	if v, ok := value("amphora_agent.gc_percent"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < MinGCPercent {
			errs = append(errs, fmt.Errorf("[amphora_agent] gc_percent = %q: not a percentage of at least %d", v, MinGCPercent))
		} else {
			c.GCPercent = n
		}
	}
	if v, ok := value("amphora_agent.heartbeat_zlib_level"); ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("[amphora_agent] heartbeat_zlib_level = %q: not an integer", v))
		} else {
			c.HeartbeatZlibLevel = n
		}
	}
	if v, ok := value("health_manager.controller_ip_port_list"); ok {
		c.Controllers = nil
		for _, e := range strings.Split(v, ",") {
			if e = strings.TrimSpace(e); e != "" {
				c.Controllers = append(c.Controllers, e)
			}
		}
	}
	seconds("health_manager.heartbeat_interval", &c.HeartbeatInterval)
	str("health_manager.heartbeat_key", &c.HeartbeatKey)
	str("haproxy_amphora.base_path", &c.BasePath)
	str("vpp.api_socket", &c.VPP.APISocket)
	str("vpp.stats_socket", &c.VPP.StatsSocket)
	str("vpp.dataplane", &c.VPP.Dataplane)
	str("vpp.lb_config_file", &c.VPP.LBConfigFile)
	addr("vpp.ip4_src_address", &c.VPP.IP4Src)
	addr("vpp.ip6_src_address", &c.VPP.IP6Src)
	if v, ok := value("vpp.sticky_buckets_per_core"); ok {
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			errs = append(errs, fmt.Errorf("[vpp] sticky_buckets_per_core = %q: not an integer", v))
		} else {
			c.VPP.StickyBucketsPerCore = uint32(n)
		}
	}
	seconds("vpp.flow_timeout", &c.VPP.FlowTimeout)
	if v, ok := value("vpp.encap"); ok {
		e, err := vpp.ParseEncap(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("[vpp] encap: %w", err))
		} else {
			c.VPP.Encap = e
		}
	}
	seconds("vpp.sync_interval", &c.VPP.SyncInterval)
	seconds("vpp.startup_min_delay", &c.VPP.StartupMinDelay)
	seconds("vpp.startup_max_delay", &c.VPP.StartupMaxDelay)
	if !spoolSet {
		c.SpoolDir = filepath.Join(c.BasePath, "marks")
	}
	err = errors.Join(append(errs, c.Validate())...)
	if len(hidden) > 0 && err != nil {
		err = hideSecrets(err, hidden)
	}
	return &c, err
}

// hideSecrets replaces each problem of an option in hidden ("[section]
// option") with one that shows nothing of its value. Such an option takes
// the heartbeat key through "$" substitution, and the agent's errors quote
// values, escaped or split into items, where no text search would find
// the key.
func hideSecrets(err error, hidden map[string]bool) error {
	var out []error
	for _, p := range octaviaconf.Problems(err) {
		for name := range hidden {
			if rest, ok := strings.CutPrefix(p.Error(), name); ok && (rest == "" || rest[0] == ' ' || rest[0] == ':') {
				p = fmt.Errorf("%s: invalid value (details hidden: it substitutes a secret option)", name)
				break
			}
		}
		out = append(out, p)
	}
	return errors.Join(out...)
}

// optionName writes a key (section, dot, option) the way errors name options
// ("[section] option"), as the health manager's loader does.
func optionName(key string) string {
	section, option, _ := strings.Cut(key, ".")
	return "[" + section + "] " + option
}

// Validate checks the configuration. Every bad controller entry is named;
// unlike Octavia, a bad entry does not drop the entries after it.
func (c *Config) Validate() error {
	var errs []error
	if c.AmphoraID == "" {
		errs = append(errs, errors.New("[amphora_agent] amphora_id is required"))
	}
	if c.HeartbeatKey == "" {
		errs = append(errs, errors.New("[health_manager] heartbeat_key is required"))
	}
	if c.HeartbeatInterval <= 0 {
		errs = append(errs, errors.New("[health_manager] heartbeat_interval must be positive"))
	}
	if c.VPPUnreachableLimit <= 0 {
		// 0 would either never report a dead dataplane or drop the
		// listeners at the first missed ping; neither is safe.
		errs = append(errs, errors.New("[amphora_agent] vpp_unreachable_limit must be positive"))
	}
	if c.HeartbeatZlibLevel < heartbeat.MinSealLevel || c.HeartbeatZlibLevel > heartbeat.MaxSealLevel {
		errs = append(errs, fmt.Errorf("[amphora_agent] heartbeat_zlib_level %d: want %d to %d",
			c.HeartbeatZlibLevel, heartbeat.MinSealLevel, heartbeat.MaxSealLevel))
	}
	for _, e := range c.Controllers {
		if _, err := udp.ParseController(e); err != nil {
			errs = append(errs, fmt.Errorf("[health_manager] controller_ip_port_list: %w", err))
		}
	}
	if c.VPP.Dataplane != "govpp" && c.VPP.Dataplane != "sim" {
		errs = append(errs, fmt.Errorf("[vpp] dataplane %q: want govpp or sim", c.VPP.Dataplane))
	}
	if _, err := vpp.ValidateConf(c.LBConf()); err != nil {
		errs = append(errs, fmt.Errorf("[vpp]: %w", err))
	}
	if c.VPP.StartupMaxDelay < c.VPP.StartupMinDelay {
		errs = append(errs, errors.New("[vpp] startup_max_delay is below startup_min_delay"))
	}
	if c.VPP.SyncInterval <= 0 {
		errs = append(errs, errors.New("[vpp] sync_interval must be positive"))
	}
	return errors.Join(errs...)
}

// LBConf is the global lb plugin configuration from [vpp].
func (c *Config) LBConf() vpp.Conf {
	return vpp.Conf{
		IP4Src: c.VPP.IP4Src, IP6Src: c.VPP.IP6Src,
		StickyBucketsPerWorker: c.VPP.StickyBucketsPerCore,
		FlowTimeout:            c.VPP.FlowTimeout,
	}
}

func parseBool(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "true", "yes", "on", "1":
		return true, nil
	case "false", "no", "off", "0":
		return false, nil
	}
	return false, fmt.Errorf("%q is not a boolean", v)
}
