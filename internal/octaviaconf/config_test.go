package octaviaconf

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// writeConf writes content to a file in a temporary directory.
func writeConf(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// loadString loads content as one file and returns the config and what
// was logged.
func loadString(t *testing.T, content string) (*Config, string, error) {
	t.Helper()
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	cfg, err := load(log, writeConf(t, "octavia.conf", content))
	return cfg, logs.String(), err
}

func TestDefaults(t *testing.T) {
	cpus := runtime.NumCPU()
	for _, files := range [][]string{nil, {writeConf(t, "empty.conf", "")}} {
		cfg, err := Load(files...)
		if err != nil {
			t.Fatalf("Load(%v): %v", files, err)
		}
		hm, db, cw := cfg.HealthManager, cfg.Database, cfg.ControllerWorker
		tests := []struct {
			option    string
			got, want any
		}{
			{"[DEFAULT] debug", cfg.Default.Debug, false},
			{"[database] connection", db.Connection, ""},
			{"[database] max_pool_size", db.MaxPoolSize, 10},
			{"[database] max_retries", db.MaxRetries, 10},
			{"[database] retry_interval", db.RetryInterval, 10 * time.Second},
			{"[health_manager] bind_ip", hm.BindIP, netip.MustParseAddr("127.0.0.1")},
			{"[health_manager] bind_port", hm.BindPort, 5555},
			{"[health_manager] failover_threads", hm.FailoverThreads, 10},
			{"[health_manager] health_update_threads", hm.HealthUpdateThreads, cpus},
			{"[health_manager] heartbeat_key", hm.HeartbeatKey, ""},
			{"[health_manager] heartbeat_key set", hm.HeartbeatKeySet, false},
			{"[health_manager] heartbeat_timeout", hm.HeartbeatTimeout, 60 * time.Second},
			{"[health_manager] health_check_interval", hm.HealthCheckInterval, 3 * time.Second},
			{"[health_manager] sock_rlimit", hm.SockRlimit, 0},
			{"[health_manager] failover_threshold set", hm.FailoverThresholdSet, false},
			{"[health_manager] controller_ip_port_list", hm.ControllerIPPortList, []string(nil)},
			{"[health_manager] heartbeat_interval", hm.HeartbeatInterval, 10 * time.Second},
			{"[health_manager] health_update_driver", hm.HealthUpdateDriver, "health_db"},
			{"[health_manager] heartbeat_key_previous", hm.HeartbeatKeyPrevious, []string(nil)},
			{"[health_manager] receive_sockets", hm.ReceiveSockets, runtime.NumCPU()},
			{"[health_manager] metrics_bind", hm.MetricsBind, "127.0.0.1:9102"},
			{"[health_manager] pprof_bind", hm.PprofBind, ""},
			{"[health_manager] max_heartbeat_bytes", hm.MaxHeartbeatBytes, 4 << 20},
			{"[health_manager] health_batch_size", hm.HealthBatchSize, 512},
			{"[health_manager] health_batch_wait_ms", hm.HealthBatchWait, 20 * time.Millisecond},
			{"[health_manager] topology_cache_seconds", hm.TopologyCache, 5 * time.Minute},
			{"[health_manager] topology_cache_max_mb", hm.TopologyCacheMaxMB, 32},
			{"[health_manager] queue_size", hm.QueueSize, 16384},
			{"[health_manager] stats_flush_interval_ms", hm.StatsFlushInterval, time.Second},
			{"[health_manager] stats_max_pairs", hm.StatsMaxPairs, 1_000_000},
			{"[health_manager] gc_heap_target_mb", hm.GCHeapTargetMB, 128},
			{"[controller_worker] statistics_drivers", cw.StatisticsDrivers, []string{"stats_db"}},
			{"[controller_worker] compute_driver", cw.ComputeDriver, "compute_nova_driver"},
			{"[health_manager] failover_driver", hm.FailoverDriver, "octavia_api"},
			{"[health_manager] strict_heartbeats", hm.StrictHeartbeats, false},
			{"[health_manager] shadow_forward_to", hm.ShadowForwardTo, []string(nil)},
			{"[health_manager] replay_window", hm.ReplayWindow, time.Duration(0)},
			{"[service_auth]", cfg.ServiceAuth, ServiceAuth{Interface: "public"}},
			{"[nova]", cfg.Nova, Nova{EndpointType: "publicURL"}},
		}
		for _, tt := range tests {
			if !reflect.DeepEqual(tt.got, tt.want) {
				t.Errorf("files %v: %s = %#v; want %#v", files, tt.option, tt.got, tt.want)
			}
		}
	}
}

func TestEveryOptionIsRead(t *testing.T) {
	cfg, logs, err := loadString(t, `
[DEFAULT]
debug = true

[database]
connection = postgresql://octavia:pw@db.example/octavia
max_pool_size = 25
retry_interval = 4
max_retries = -1

[health_manager]
bind_ip = 2001:db8::1
bind_port = 5556
failover_threads = 3
health_update_threads = 7
stats_update_threads = 5
heartbeat_key = s3cret
heartbeat_timeout = 90
health_check_interval = 2
sock_rlimit = 1048576
failover_threshold = 0
controller_ip_port_list = 192.0.2.10:5555, 192.0.2.11:5555
heartbeat_interval = 12
heartbeat_key_previous = old-1, "old,2"
receive_sockets = 2
metrics_bind =
max_heartbeat_bytes = 65536
health_batch_size = 100
health_batch_wait_ms = 5
topology_cache_seconds = 42
topology_cache_max_mb = 7
queue_size = 1000
stats_flush_interval_ms = 250
stats_max_pairs = 99
gc_heap_target_mb = 0
failover_driver = noop
replay_window = 30
failover_breaker_hold = false
strict_heartbeats = true
shadow_forward_to = 192.0.2.20:5555, [2001:db8::20]:5555

[controller_worker]
statistics_drivers = stats_db, stats_logger
compute_driver = noop_compute_driver

[service_auth]
auth_url = https://keystone.example:5000/v3
username = octavia
password = pa$$ss
project_name = service
project_id = p-1
user_domain_name = Default
user_domain_id = default
project_domain_name = Default
project_domain_id = default
cafile = /etc/ssl/ca.pem
insecure = true
region_name = RegionOne
interface = internal

[nova]
region_name = RegionTwo
endpoint_type = internalURL
`)
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Default: Default{Debug: true, Logging: DefaultLogging()},
		Database: Database{
			Connection:    "postgresql://octavia:pw@db.example/octavia",
			MaxPoolSize:   25,
			MaxRetries:    -1,
			RetryInterval: 4 * time.Second,
		},
		HealthManager: HealthManager{
			BindIP:               netip.MustParseAddr("2001:db8::1"),
			BindPort:             5556,
			FailoverThreads:      3,
			HealthUpdateThreads:  7,
			HeartbeatKey:         "s3cret",
			HeartbeatKeySet:      true,
			HeartbeatTimeout:     90 * time.Second,
			HealthCheckInterval:  2 * time.Second,
			SockRlimit:           1048576,
			FailoverThreshold:    0,
			FailoverThresholdSet: true,
			ControllerIPPortList: []string{"192.0.2.10:5555", "192.0.2.11:5555"},
			HeartbeatInterval:    12 * time.Second,
			HealthUpdateDriver:   "health_db",
			HeartbeatKeyPrevious: []string{"old-1", "old,2"},
			ReceiveSockets:       2,
			MetricsBind:          "",
			MaxHeartbeatBytes:    65536,
			HealthBatchSize:      100,
			HealthBatchWait:      5 * time.Millisecond,
			TopologyCache:        42 * time.Second,
			TopologyCacheMaxMB:   7,
			QueueSize:            1000,
			StatsFlushInterval:   250 * time.Millisecond,
			StatsMaxPairs:        99,
			GCHeapTargetMB:       0,
			FailoverDriver:       "noop",
			ReplayWindow:         30 * time.Second,
			FailoverBreakerHold:  false,
			StrictHeartbeats:     true,
			ShadowForwardTo:      []string{"192.0.2.20:5555", "[2001:db8::20]:5555"},
		},
		ControllerWorker: ControllerWorker{
			StatisticsDrivers: []string{"stats_db", "stats_logger"},
			ComputeDriver:     "noop_compute_driver",
		},
		ServiceAuth: ServiceAuth{
			AuthURL: "https://keystone.example:5000/v3", Username: "octavia", Password: "pa$ss",
			ProjectName: "service", ProjectID: "p-1", UserDomainName: "Default", UserDomainID: "default",
			ProjectDomainName: "Default", ProjectDomainID: "default", CAFile: "/etc/ssl/ca.pem", Insecure: true,
			RegionName: "RegionOne", Interface: "internal",
		},
		Nova: Nova{RegionName: "RegionTwo", EndpointType: "internalURL"},
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("Load =\n%+v\nwant\n%+v", cfg, want)
	}
	if logs != "" {
		t.Errorf("unexpected warnings:\n%s", logs)
	}
}

func TestListSyntax(t *testing.T) {
	tests := []struct {
		value string
		want  []string
	}{
		{"", []string{}},
		{"a", []string{"a"}},
		{"a,b", []string{"a", "b"}},
		{"a, b ,  c", []string{"a", "b", "c"}},
		{"a,,b,", []string{"a", "b"}},
		{`"x,y", z`, []string{"x,y", "z"}},
		{`'[2001:db8::1]:5555', 192.0.2.1:5555`, []string{"[2001:db8::1]:5555", "192.0.2.1:5555"}},
	}
	for _, tt := range tests {
		cfg, _, err := loadString(t, "[controller_worker]\nstatistics_drivers = "+tt.value+"\n")
		if err != nil {
			t.Errorf("%q: %v", tt.value, err)
			continue
		}
		if !reflect.DeepEqual(cfg.ControllerWorker.StatisticsDrivers, tt.want) {
			t.Errorf("list %q = %q; want %q", tt.value, cfg.ControllerWorker.StatisticsDrivers, tt.want)
		}
	}
}

func TestBoolSyntax(t *testing.T) {
	tests := []struct {
		value string
		want  bool
	}{
		{"true", true}, {"True", true}, {"TRUE", true}, {"yes", true}, {"Yes", true}, {"on", true}, {"1", true},
		{"false", false}, {"False", false}, {"no", false}, {"NO", false}, {"off", false}, {"0", false},
		{"  true  ", true},
	}
	for _, tt := range tests {
		cfg, _, err := loadString(t, "[DEFAULT]\ndebug = "+tt.value+"\n")
		if err != nil {
			t.Errorf("%q: %v", tt.value, err)
			continue
		}
		if cfg.Default.Debug != tt.want {
			t.Errorf("debug = %q read as %v; want %v", tt.value, cfg.Default.Debug, tt.want)
		}
	}
}

func TestStringSyntax(t *testing.T) {
	tests := []struct {
		name  string
		conf  string
		want  string
		isSet bool
	}{
		{"dollar escape", "[health_manager]\nheartbeat_key = pa$$word\n", "pa$word", true},
		{"two escapes", "[health_manager]\nheartbeat_key = $$$$\n", "$$", true},
		{"substitution from section", "[health_manager]\nbase = abc\nheartbeat_key = $base-x\n", "abc-x", true},
		{"braced substitution from DEFAULT", "[DEFAULT]\nk = v\n[health_manager]\nheartbeat_key = ${k}1\n", "v1", true},
		{"qualified substitution", "[other]\nk = q\n[health_manager]\nheartbeat_key = ${other.k}\n", "q", true},
		{"no inline comments", "[health_manager]\nheartbeat_key = abc # not a comment\n", "abc # not a comment", true},
		{"surrounding spaces stripped", "[health_manager]\nheartbeat_key =   abc   \n", "abc", true},
		{"empty value is set", "[health_manager]\nheartbeat_key =\n", "", true},
		{"double quotes stripped", "[health_manager]\nheartbeat_key = \"abc\"\n", "abc", true},
		{"single quotes stripped", "[health_manager]\nheartbeat_key = 'abc'\n", "abc", true},
		{"inner quotes kept", "[health_manager]\nheartbeat_key = a\"b'c\n", "a\"b'c", true},
		{"continuation line", "[health_manager]\nheartbeat_key = abc\n  def\n", "abc\ndef", true},
		{"unset", "[health_manager]\n", "", false},
	}
	for _, tt := range tests {
		cfg, _, err := loadString(t, tt.conf)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		hm := cfg.HealthManager
		if hm.HeartbeatKey != tt.want || hm.HeartbeatKeySet != tt.isSet {
			t.Errorf("%s: heartbeat_key = %q (set %v); want %q (set %v)", tt.name, hm.HeartbeatKey, hm.HeartbeatKeySet, tt.want, tt.isSet)
		}
	}
}

func TestConnectionURLForms(t *testing.T) {
	tests := []struct {
		value string
		want  string
	}{
		{"postgresql://octavia:pw@db/octavia", "postgresql://octavia:pw@db/octavia"},
		{"postgres://octavia:pw@db:5433/octavia?sslmode=require", "postgresql://octavia:pw@db:5433/octavia?sslmode=require"},
		{"postgresql+psycopg2://octavia:pw@db/octavia", "postgresql://octavia:pw@db/octavia"},
		{"postgresql+psycopg://octavia:pw@db/octavia", "postgresql://octavia:pw@db/octavia"},
		{"postgresql+pg8000://octavia:pw@db/octavia", "postgresql://octavia:pw@db/octavia"},
		{"PostgreSQL+Psycopg2://octavia@[2001:db8::5]/octavia", "postgresql://octavia@[2001:db8::5]/octavia"},
		{"postgresql://octavia:pa$$ss@db/octavia", "postgresql://octavia:pa$ss@db/octavia"},
	}
	for _, tt := range tests {
		cfg, _, err := loadString(t, "[database]\nconnection = "+tt.value+"\n")
		if err != nil {
			t.Errorf("%s: %v", tt.value, err)
			continue
		}
		if cfg.Database.Connection != tt.want {
			t.Errorf("connection %s = %s; want %s", tt.value, cfg.Database.Connection, tt.want)
		}
	}
}

func TestBadValues(t *testing.T) {
	tests := []struct {
		name    string
		conf    string
		section string
		option  string
		value   string // as the error must show it
		reason  string // substring of the reason
	}{
		{"mysql unknown parameter", "[database]\nconnection = mysql+pymysql://octavia:pw@db/octavia?charset=utf8&sslmode=on\n",
			"database", "connection", "mysql+pymysql://octavia:***@db/octavia?charset=utf8&sslmode=on", `unknown parameter(s) "sslmode"`},
		{"mysql ssl_cipher", "[database]\nconnection = mysql://octavia@db/octavia?ssl_cipher=AES\n",
			"database", "connection", "mysql://octavia@db/octavia?ssl_cipher=AES", `parameter "ssl_cipher"`},
		{"mysql driver", "[database]\nconnection = mysql+asyncmy://octavia:pw@db/octavia\n",
			"database", "connection", "mysql+asyncmy://octavia:***@db/octavia", "driver that is not supported"},
		{"sqlite refused", "[database]\nconnection = sqlite://\n",
			"database", "connection", "sqlite://", `scheme "sqlite" is not supported`},
		{"unknown driver", "[database]\nconnection = postgresql+asyncpg://u:pw@db/o\n",
			"database", "connection", "postgresql+asyncpg://u:***@db/o", "driver that is not supported"},
		{"not a URL", "[database]\nconnection = octavia\n",
			"database", "connection", "octavia", "not a database URL"},
		{"port too big", "[health_manager]\nbind_port = 70000\n",
			"health_manager", "bind_port", "70000", "not a port number"},
		{"not an integer", "[health_manager]\nheartbeat_timeout = 60s\n",
			"health_manager", "heartbeat_timeout", "60s", "not an integer"},
		{"zero interval", "[health_manager]\nhealth_check_interval = 0\n",
			"health_manager", "health_check_interval", "0", "must be at least 1"},
		{"negative threshold", "[health_manager]\nfailover_threshold = -1\n",
			"health_manager", "failover_threshold", "-1", "must be at least 0"},
		{"bad IP", "[health_manager]\nbind_ip = controller.example\n",
			"health_manager", "bind_ip", "controller.example", "not an IPv4 or IPv6 address"},
		{"bad bool", "[DEFAULT]\ndebug = maybe\n",
			"DEFAULT", "debug", "maybe", "not a boolean"},
		{"bad pool size", "[database]\nmax_pool_size = many\n",
			"database", "max_pool_size", "many", "not an integer"},
		{"max_retries below -1", "[database]\nmax_retries = -2\n",
			"database", "max_retries", "-2", "must be at least -1"},
		{"negative retry_interval", "[database]\nretry_interval = -1\n",
			"database", "retry_interval", "-1", "must be at least 0"},
		{"lone dollar", "[controller_worker]\ncompute_driver = a$\n",
			"controller_worker", "compute_driver", "a$", `"$" not followed by an option name`},
		{"undefined reference hides the key", "[health_manager]\nheartbeat_key = pa$word\n",
			"health_manager", "heartbeat_key", "(hidden: secret option)", `"$" substitution failed (details hidden`},
		{"undefined reference hides the service password", "[service_auth]\npassword = pw$word\n",
			"service_auth", "password", "(hidden: secret option)", `"$" substitution failed (details hidden`},
		{"bad insecure", "[service_auth]\ninsecure = perhaps\n",
			"service_auth", "insecure", "perhaps", "not a boolean"},
		{"unterminated quote", "[controller_worker]\nstatistics_drivers = \"a, b\n",
			"controller_worker", "statistics_drivers", `"a, b`, "unterminated quote"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeConf(t, "octavia.conf", tt.conf)
			_, err := load(slog.New(slog.DiscardHandler), path)
			var oe *OptionError
			if !errors.As(err, &oe) {
				t.Fatalf("err = %v; want an *OptionError", err)
			}
			if oe.File != path || oe.Section != tt.section || oe.Option != tt.option || oe.Value != tt.value {
				t.Errorf("error names %s [%s] %s = %q; want %s [%s] %s = %q",
					oe.File, oe.Section, oe.Option, oe.Value, path, tt.section, tt.option, tt.value)
			}
			if !strings.Contains(oe.Reason, tt.reason) {
				t.Errorf("reason %q does not contain %q", oe.Reason, tt.reason)
			}
			msg := err.Error()
			for _, part := range []string{path, "[" + tt.section + "]", tt.option, tt.value} {
				if !strings.Contains(msg, part) {
					t.Errorf("message %q does not name %q", msg, part)
				}
			}
			if strings.Contains(msg, ":pw@") {
				t.Errorf("message %q leaks the database password", msg)
			}
		})
	}
}

func TestLaterFileOverrides(t *testing.T) {
	first := writeConf(t, "a.conf", "[health_manager]\nbind_port = 1111\nheartbeat_key = one\n")
	second := writeConf(t, "b.conf", "[health_manager]\nbind_port = 2222\nfailover_threads = x\n")
	_, err := load(slog.New(slog.DiscardHandler), first, second)
	var oe *OptionError
	if !errors.As(err, &oe) || oe.File != second {
		t.Fatalf("err = %v; want an error naming %s", err, second)
	}

	second = writeConf(t, "c.conf", "[health_manager]\nbind_port = 2222\n")
	cfg, err := Load(first, second)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HealthManager.BindPort != 2222 || cfg.HealthManager.HeartbeatKey != "one" {
		t.Errorf("merged = port %d key %q; want 2222 and the first file's key", cfg.HealthManager.BindPort, cfg.HealthManager.HeartbeatKey)
	}

	if _, err := Load(first, filepath.Join(t.TempDir(), "missing.conf")); err == nil || !strings.Contains(err.Error(), "missing.conf") {
		t.Errorf("missing file: err = %v; want one naming the file", err)
	}
}

func TestUnknownOptions(t *testing.T) {
	tests := []struct {
		name     string
		conf     string
		wantLogs []string // substrings; none expected when empty
	}{
		{"misspelled health_manager option", "[health_manager]\nheartbeat_keys = x\n",
			[]string{"level=WARN", "option=heartbeat_keys", "did_you_mean=heartbeat_key", "section=health_manager"}},
		{"unrelated unknown health_manager option", "[health_manager]\nfrobnicate = 1\n",
			[]string{"level=WARN", "option=frobnicate"}},
		{"unknown options elsewhere are ignored silently", "[database]\nmax_overflow = 50\n[api_settings]\nbind_host = 0.0.0.0\n", nil},
		{"oslo.log options not read are ignored silently", "[DEFAULT]\nlog_rotation_type = size\nwatch_log_file = true\n" +
			"logging_context_format_string = %(message)s\ndefault_log_levels = amqp=WARN\n", nil},
		{"deprecated health_update_driver", "[health_manager]\nhealth_update_driver = health_db\n",
			[]string{"level=WARN", "option=health_update_driver", "deprecated"}},
	}
	for _, tt := range tests {
		_, logs, err := loadString(t, tt.conf)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if len(tt.wantLogs) == 0 && logs != "" {
			t.Errorf("%s: unexpected log output %q", tt.name, logs)
		}
		for _, w := range tt.wantLogs {
			if !strings.Contains(logs, w) {
				t.Errorf("%s: log %q lacks %q", tt.name, logs, w)
			}
		}
	}
}

func TestDeprecatedStatsUpdateDriver(t *testing.T) {
	cfg, logs, err := loadString(t, "[health_manager]\nstats_update_driver = stats_logger\n")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.ControllerWorker.StatisticsDrivers, []string{"stats_logger"}) {
		t.Errorf("statistics drivers = %q; want the deprecated option's value", cfg.ControllerWorker.StatisticsDrivers)
	}
	if !strings.Contains(logs, "deprecated") {
		t.Errorf("no deprecation warning in %q", logs)
	}
	cfg, _, err = loadString(t, "[health_manager]\nstats_update_driver = stats_logger\n[controller_worker]\nstatistics_drivers = stats_db\n")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.ControllerWorker.StatisticsDrivers, []string{"stats_db"}) {
		t.Errorf("statistics drivers = %q; the new option must win", cfg.ControllerWorker.StatisticsDrivers)
	}
}

func TestRedactURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"postgresql://u:secret@h/db", "postgresql://u:***@h/db"},
		{"postgresql://u@h/db", "postgresql://u@h/db"},
		{"postgresql://h/db", "postgresql://h/db"},
		{"mysql+pymysql://octavia:p%40ss@h/db", "mysql+pymysql://octavia:***@h/db"},
	}
	for _, tt := range tests {
		if got := RedactURL(tt.in); got != tt.want {
			t.Errorf("RedactURL(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}

// readOptions lists every (section, option) this package reads; the sample
// configuration must show each of them.
var readOptions = map[string][]string{
	"DEFAULT":           {"debug"},
	"database":          {"connection", "max_pool_size"},
	"health_manager":    healthManagerOptions,
	"controller_worker": {"statistics_drivers", "compute_driver"},
	"service_auth": {"auth_url", "username", "password", "project_name", "project_id", "user_domain_name",
		"user_domain_id", "project_domain_name", "project_domain_id", "cafile", "insecure", "region_name", "interface"},
	"nova": {"region_name", "endpoint_type"},
}

func TestMissingCredentials(t *testing.T) {
	full := ServiceAuth{AuthURL: "http://k/v3", Username: "u", Password: "p", ProjectName: "service",
		UserDomainName: "Default", ProjectDomainName: "Default"}
	tests := []struct {
		name   string
		change func(*ServiceAuth)
		want   []string
	}{
		{"complete", func(*ServiceAuth) {}, nil},
		{"project and domains by id", func(a *ServiceAuth) {
			a.ProjectName, a.ProjectID, a.UserDomainName, a.UserDomainID, a.ProjectDomainName = "", "p", "", "default", ""
		}, nil},
		{"nothing set", func(a *ServiceAuth) { *a = ServiceAuth{Interface: "public"} },
			[]string{"auth_url", "username", "password", "project_name or project_id", "user_domain_name or user_domain_id"}},
		{"no password", func(a *ServiceAuth) { a.Password = "" }, []string{"password"}},
		{"project name without its domain", func(a *ServiceAuth) { a.ProjectDomainName = "" },
			[]string{"project_domain_name or project_domain_id"}},
	}
	for _, tt := range tests {
		a := full
		tt.change(&a)
		if got := a.MissingCredentials(); !slices.Equal(got, tt.want) {
			t.Errorf("%s: missing %q; want %q", tt.name, got, tt.want)
		}
	}
}

func TestSampleConfig(t *testing.T) {
	const sample = "../../etc/octavia.conf"
	var logs bytes.Buffer
	cfg, err := load(slog.New(slog.NewTextHandler(&logs, nil)), sample)
	if err != nil {
		t.Fatalf("load %s: %v", sample, err)
	}
	if logs.Len() != 0 {
		t.Errorf("sample logs warnings:\n%s", logs.String())
	}
	if cfg.HealthManager.HeartbeatKey != "insecure" {
		t.Errorf("sample heartbeat_key = %q; make run relies on \"insecure\"", cfg.HealthManager.HeartbeatKey)
	}

	b, err := os.ReadFile(sample)
	if err != nil {
		t.Fatal(err)
	}
	// Options appear either set or commented out ("#name = default").
	option := regexp.MustCompile(`^#?\s*([a-z_]+)\s*=`)
	section := regexp.MustCompile(`^\[([A-Za-z_]+)\]`)
	shown := map[string]map[string]bool{}
	cur := ""
	for _, line := range strings.Split(string(b), "\n") {
		if m := section.FindStringSubmatch(line); m != nil {
			cur = m[1]
			continue
		}
		if m := option.FindStringSubmatch(line); m != nil && cur != "" {
			if shown[cur] == nil {
				shown[cur] = map[string]bool{}
			}
			shown[cur][m[1]] = true
		}
	}
	for sec, opts := range readOptions {
		for _, o := range opts {
			if !shown[sec][o] {
				t.Errorf("%s lacks [%s] %s", sample, sec, o)
			}
		}
	}
}

func TestEveryProblemIsReported(t *testing.T) {
	first := writeConf(t, "a.conf", "[health_manager]\nbind_port = 70000\nheartbeat_key = k\n")
	second := writeConf(t, "b.conf", "[DEFAULT]\ndebug = maybe\n[health_manager]\nqueue_size = 0\n"+
		"[database]\nconnection = mysql://o:pw@db/o?nosuch=1\n")
	cfg, err := Check(slog.New(slog.DiscardHandler), first, second)
	if cfg == nil {
		t.Fatalf("Check returned no configuration; err = %v", err)
	}
	if cfg.HealthManager.HeartbeatKey != "k" || cfg.HealthManager.BindPort != 5555 {
		t.Errorf("good options not read or bad ones not defaulted: key %q port %d", cfg.HealthManager.HeartbeatKey, cfg.HealthManager.BindPort)
	}
	var got []string
	for _, p := range Problems(err) {
		var oe *OptionError
		if !errors.As(p, &oe) {
			t.Fatalf("problem %v is not an *OptionError", p)
		}
		got = append(got, filepath.Base(oe.File)+" "+oe.Section+"."+oe.Option)
	}
	want := []string{"b.conf DEFAULT.debug", "b.conf database.connection", "a.conf health_manager.bind_port", "b.conf health_manager.queue_size"}
	if !slices.Equal(got, want) {
		t.Errorf("problems = %q; want %q", got, want)
	}
	if cfg, err := Load(first, second); cfg != nil || len(Problems(err)) != 4 {
		t.Errorf("Load = %v, %d problems; want nil and 4", cfg, len(Problems(err)))
	}

	broken := writeConf(t, "broken.conf", "[health_manager\nbind_port = 1\n")
	missing := filepath.Join(t.TempDir(), "missing.conf")
	cfg, err = Check(slog.New(slog.DiscardHandler), broken, first, missing)
	if cfg != nil {
		t.Errorf("Check of unparsable files returned a configuration")
	}
	var files []string
	for _, p := range Problems(err) {
		var fe *FileError
		if !errors.As(p, &fe) {
			t.Fatalf("problem %v is not a *FileError", p)
		}
		files = append(files, fe.File)
	}
	if !slices.Equal(files, []string{broken, missing}) {
		t.Errorf("file problems name %q; want %q", files, []string{broken, missing})
	}
}

func TestLoggingOptions(t *testing.T) {
	cfg, logs, err := loadString(t, "[DEFAULT]\nlog_file = hm.log\nlog_dir = /var/log/octavia\nuse_stderr = yes\n"+
		"use_json = true\nuse_journal = on\nuse_syslog = 1\nsyslog_log_facility = LOG_LOCAL3\n")
	if err != nil || logs != "" {
		t.Fatalf("err %v, logs %q", err, logs)
	}
	want := Logging{LogFile: "hm.log", LogDir: "/var/log/octavia", UseStderr: true, UseJSON: true, UseJournal: true,
		UseSyslog: true, SyslogLogFacility: "LOG_LOCAL3"}
	if cfg.Default.Logging != want {
		t.Errorf("got %+v, want %+v", cfg.Default.Logging, want)
	}
	for _, bad := range []string{"use_json = maybe", "syslog_log_facility = LOG_LOCAL9"} {
		if _, _, err := loadString(t, "[DEFAULT]\n"+bad+"\n"); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	if d := Defaults().Default.Logging; d != (Logging{SyslogLogFacility: "LOG_USER"}) {
		t.Errorf("defaults %+v", d)
	}
}

// TestIgnoredOptions: Octavia's options the health manager has no use for
// load silently, whatever their value, and leave the configuration as if
// they were absent.
func TestIgnoredOptions(t *testing.T) {
	for _, value := range []string{"4", "0", "not-a-number"} {
		var body strings.Builder
		for _, o := range IgnoredOptions {
			section, name, _ := strings.Cut(o, " ")
			fmt.Fprintf(&body, "[%s]\n%s = %s\n", section, name, value)
		}
		cfg, logs, err := loadString(t, body.String())
		if err != nil || logs != "" {
			t.Errorf("value %q: err %v, logs %q; want neither", value, err, logs)
		}
		if cfg != nil && !reflect.DeepEqual(cfg, Defaults()) {
			t.Errorf("value %q changed the configuration: %+v", value, cfg)
		}
	}
}
