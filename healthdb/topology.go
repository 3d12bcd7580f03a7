package healthdb

// Octavia's status strings, as stored in the operating_status columns.
const (
	StatusOnline    = "ONLINE"
	StatusOffline   = "OFFLINE"
	StatusDegraded  = "DEGRADED"
	StatusError     = "ERROR"
	StatusDraining  = "DRAINING"
	StatusNoMonitor = "NO_MONITOR"
)

// ProtocolUDP is the listener protocol the versionless-UDP rule looks for.
const ProtocolUDP = "UDP"

// Topology is what the status procedure reads about one amphora: the
// amphora row and, when the amphora is live and attached to a live load
// balancer, that load balancer's graph (Octavia's get_lb_for_health_update).
type Topology struct {
	AmphoraID string
	// AmphoraExists is true when an amphora row exists in any status,
	// DELETED included.
	AmphoraExists bool
	// ComputeID is amphora.compute_id ("" for NULL); a zombie's compute
	// instance is deleted by it.
	ComputeID string
	// LB is nil when the amphora is DELETED, has no load balancer, or its
	// load balancer is DELETED: then the amphora is a zombie (or unknown).
	LB *LoadBalancer
}

// LoadBalancer is a live load balancer with its listeners and pools.
type LoadBalancer struct {
	ID                 string
	Enabled            bool
	ProvisioningStatus string
	OperatingStatus    string
	// Listeners in the order they are processed. Octavia takes SQL row
	// order, which is whatever plan the database picks; we take listener id
	// order so that a pre-V2 pool shared by two listeners and reported
	// differently under each always resolves the same way.
	Listeners []Listener
	// Pools are all pools of the load balancer, in pool id order.
	Pools []Pool
}

// Listener is one listener row.
type Listener struct {
	ID              string
	OperatingStatus string
	Protocol        string
	Enabled         bool
	// DefaultPoolHasEnabledMember is what the versionless-UDP rule asks of a
	// UDP listener: it has a default pool with at least one enabled member.
	DefaultPoolHasEnabledMember bool
}

// Pool is one pool row with its members (in member id order).
type Pool struct {
	ID              string
	OperatingStatus string
	Members         []Member
}

// Member is one member row.
type Member struct {
	ID              string
	OperatingStatus string
}
