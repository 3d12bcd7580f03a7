package octaviaconf

import (
	"net/netip"
	"runtime"
	"time"
)

// Defaults returns the configuration Octavia 11 uses when no file sets
// anything.
func Defaults() *Config {
	return &Config{
		Default: Default{Logging: DefaultLogging()},
		Database: Database{
			MaxPoolSize:   10,
			MaxRetries:    10,
			RetryInterval: 10 * time.Second,
		},
		HealthManager: HealthManager{
			BindIP:              netip.MustParseAddr("127.0.0.1"),
			BindPort:            5555,
			FailoverThreads:     10,
			HealthUpdateThreads: runtime.NumCPU(),
			HeartbeatTimeout:    60 * time.Second,
			HealthCheckInterval: 3 * time.Second,
			HeartbeatInterval:   10 * time.Second,
			HealthUpdateDriver:  "health_db",
			ReceiveSockets:      runtime.NumCPU(),
			MetricsBind:         "127.0.0.1:9102",
			MaxHeartbeatBytes:   4 << 20,
			HealthBatchSize:     512,
			HealthBatchWait:     20 * time.Millisecond,
			TopologyCache:       DefaultTopologyCache,
			TopologyCacheMaxMB:  DefaultTopologyCacheMaxMB,
			QueueSize:           16384,
			StatsFlushInterval:  time.Second,
			StatsMaxPairs:       1_000_000,
			GCHeapTargetMB:      128,
			FailoverDriver:      "octavia_api",
			FailoverBreakerHold: true,
		},
		ControllerWorker: ControllerWorker{
			StatisticsDrivers: []string{"stats_db"},
			ComputeDriver:     "compute_nova_driver",
		},
		ServiceAuth: ServiceAuth{Interface: "public"},
		Nova:        Nova{EndpointType: "publicURL"},
	}
}

// DefaultLogging is oslo.log's defaults for the options in Logging.
func DefaultLogging() Logging { return Logging{SyslogLogFacility: "LOG_USER"} }

// DefaultTopologyCache is topology_cache_seconds' default. With the
// triggers every change is seen at the next batch, so the limit only
// bounds what no trigger sees (docs/deviations.md): five minutes keeps
// that bound short while a full read, once per load balancer per five
// minutes, costs a steady heartbeat (every 10 s) about 1/30 of one.
const DefaultTopologyCache = 5 * time.Minute

// DefaultTopologyCacheMaxMB is topology_cache_max_mb's default: about
// 40,000 load balancers of 2 listeners, 2 pools and 20 members with UUID
// ids, each with its amphora (every one at 20,000 amphorae), small enough
// that a manager of 100,000 amphorae of that shape stays within 200 MB of
// RSS, Go's heap headroom included (docs/performance.md "The topology
// cache").
const DefaultTopologyCacheMaxMB = 32
