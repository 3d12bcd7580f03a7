// Package vpp is the amphora's dataplane layer: it programs VPP's lb plugin
// (VIPs, application servers and their weights), reads its counters and
// survives VPP restarts.
//
// The Dataplane interface speaks our own vocabulary (VIPs, backends,
// weights); it knows nothing about Octavia. Two implementations exist:
// Govpp, which talks to a real VPP through go.fd.io/govpp, and the
// in-process simulator in package vpp/sim.
package vpp

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"time"
)

// Sentinel errors. Both implementations wrap them so callers can branch with
// errors.Is.
var (
	// ErrNotFound: the VIP or backend does not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists: the VIP conflicts with an existing one (for example an
	// all-port VIP and a per-port VIP on the same prefix).
	ErrExists = errors.New("already exists")
	// ErrInvalid: the request is malformed (bad weight, wrong address
	// family for the encap, flow-table length not a power of two, ...).
	ErrInvalid = errors.New("invalid argument")
	// ErrNotConnected: VPP is not reachable right now.
	ErrNotConnected = errors.New("vpp not connected")
)

// Encap is how the load balancer forwards a packet to a backend.
type Encap uint8

// Encapsulations supported by VPP's lb plugin. The zero value is GRE4.
const (
	EncapGRE4  Encap = iota // GRE over IPv4 to the backend (direct server return)
	EncapGRE6               // GRE over IPv6 to the backend (direct server return)
	EncapL3DSR              // IPv4 destination rewrite plus DSCP (direct server return)
	EncapNAT4               // DNAT to an IPv4 backend, per-port VIPs only
	EncapNAT6               // DNAT to an IPv6 backend, per-port VIPs only
)

var encapNames = [...]string{"gre4", "gre6", "l3dsr", "nat4", "nat6"}

func (e Encap) String() string {
	if int(e) < len(encapNames) {
		return encapNames[e]
	}
	return "encap(" + strconv.Itoa(int(e)) + ")"
}

// ParseEncap turns "gre4", "gre6", "l3dsr", "nat4" or "nat6" into an Encap.
func ParseEncap(s string) (Encap, error) {
	for i, n := range encapNames {
		if n == s {
			return Encap(i), nil
		}
	}
	return 0, fmt.Errorf("encap %q: %w", s, ErrInvalid)
}

// backendIs4 reports whether backends of this encap are IPv4.
func (e Encap) backendIs4() bool { return e == EncapGRE4 || e == EncapL3DSR || e == EncapNAT4 }

// Protocol is the IP protocol of a per-port VIP.
type Protocol uint8

// Protocols. An all-port VIP (port 0) always has ProtoAny.
const (
	ProtoTCP Protocol = 6
	ProtoUDP Protocol = 17
	ProtoAny Protocol = 255
)

func (p Protocol) String() string {
	switch p {
	case ProtoTCP:
		return "tcp"
	case ProtoUDP:
		return "udp"
	case ProtoAny:
		return "any"
	}
	return "proto(" + strconv.Itoa(int(p)) + ")"
}

// VIPKey identifies a VIP: a prefix plus, for per-port VIPs, protocol and
// port. Port 0 means an all-port VIP, whose protocol is ProtoAny.
type VIPKey struct {
	Prefix   netip.Prefix
	Protocol Protocol
	Port     uint16
}

// String renders the key as "192.0.2.10/32" or "192.0.2.10/32 tcp/80".
func (k VIPKey) String() string {
	if k.Port == 0 {
		return k.Prefix.String()
	}
	return k.Prefix.String() + " " + k.Protocol.String() + "/" + strconv.Itoa(int(k.Port))
}

// normalize masks the prefix and forces ProtoAny on all-port keys, so that
// equal VIPs compare equal.
func (k VIPKey) normalize() VIPKey {
	k.Prefix = k.Prefix.Masked()
	if k.Port == 0 {
		k.Protocol = ProtoAny
	}
	return k
}

// Compare orders keys as every list of this package is ordered: IPv4
// before IPv6, then by address, prefix length, protocol and port.
func (k VIPKey) Compare(o VIPKey) int { return compareKeys(k, o) }

func compareKeys(a, b VIPKey) int {
	if c := CompareAddr(a.Prefix.Addr(), b.Prefix.Addr()); c != 0 {
		return c
	}
	if a.Prefix.Bits() != b.Prefix.Bits() {
		return a.Prefix.Bits() - b.Prefix.Bits()
	}
	if a.Protocol != b.Protocol {
		return int(a.Protocol) - int(b.Protocol)
	}
	return int(a.Port) - int(b.Port)
}

// CompareAddr orders IPv4 before IPv6 and then numerically: the order of
// backends everywhere, vpp/sim included.
func CompareAddr(a, b netip.Addr) int {
	if a.Is4() != b.Is4() {
		if a.Is4() {
			return -1
		}
		return 1
	}
	return a.Compare(b)
}

// MaxWeight is the largest backend weight.
const MaxWeight = 100

// DefaultFlowTableLength is used when VIP.FlowTableLength is 0. VPP must
// never be sent 0 here: it would try to allocate a 2^32-entry table.
const DefaultFlowTableLength = 1024

// Backend is one application server of a VIP.
type Backend struct {
	Addr netip.Addr
	// Weight in [0, 100]. 0 stops new flows to the backend while existing
	// flows continue (a soft drain). Dialects without weights (released
	// VPP, see State.Weighted) treat any non-zero weight as "in service".
	Weight uint8
	// Flush evicts the backend's existing flows when its weight is set to
	// 0 (a hard cut). It only matters on the change to weight 0.
	Flush bool
}

// VIP is the desired state of one VIP.
type VIP struct {
	Key   VIPKey
	Encap Encap
	// SrcIPSticky hashes flows on the client address only, so all of a
	// client's connections reach one backend. Changing it recreates the VIP.
	SrcIPSticky bool
	// FlowTableLength is the size of the new-flow table: a power of two,
	// 0 means DefaultFlowTableLength. Changing it recreates the VIP.
	FlowTableLength uint32
	// DSCP marks packets of an L3DSR VIP (0-63).
	DSCP uint8
	// TargetPort is the backend port of a NAT4/NAT6 VIP (0 = same as Port).
	TargetPort uint16
	// Backends are the desired backends. Backends that exist in VPP but
	// are missing here are removed with their flows flushed; to drain
	// softly, keep the backend with weight 0 and Flush false.
	Backends []Backend
}

// Conf is the global lb plugin configuration.
type Conf struct {
	// IP4Src and IP6Src are the outer source addresses of GRE packets.
	// VPP needs both on every call; an unset one is sent as the unspecified
	// address.
	IP4Src, IP6Src netip.Addr
	// StickyBucketsPerWorker is the per-worker flow table size in buckets
	// of 4 flows, a power of two. 0 means 1024 (VPP's default, ~4096 flows
	// per worker, which is small for a real load balancer).
	StickyBucketsPerWorker uint32
	// FlowTimeout is the idle timeout of a tracked flow, whole seconds.
	// 0 means 40 s (VPP's default).
	FlowTimeout time.Duration
}

// Defaults applied by Conf.withDefaults.
const (
	DefaultStickyBucketsPerWorker = 1024
	DefaultFlowTimeout            = 40 * time.Second
)

// SyncResult says what SyncVIP changed.
type SyncResult struct {
	Created    bool // the VIP did not exist and was added
	Recreated  bool // an immutable attribute changed: the VIP was deleted and added again
	Added      int  // backends added (or revived)
	Removed    int  // backends removed
	Reweighted int  // backends whose weight changed in place
}

// Changed reports whether anything was written to the dataplane.
func (r SyncResult) Changed() bool {
	return r.Created || r.Recreated || r.Added+r.Removed+r.Reweighted > 0
}

// BackendStatus is what the dataplane reports about one backend.
type BackendStatus struct {
	Addr netip.Addr
	// Weight as VPP applies it. Without weight support it is 100 for a
	// backend in service and 0 for a removed (draining) one.
	Weight uint8
	// Active is false for a backend that was removed but still holds flows
	// (VPP garbage-collects it later).
	Active bool
	// Flows is the number of flow-table slots pointing at the backend,
	// summed over workers: an upper bound of its live connections.
	Flows uint64
}

// VIPStatus is what the dataplane reports about one VIP.
type VIPStatus struct {
	Key             VIPKey
	Encap           Encap
	SrcIPSticky     bool
	FlowTableLength uint32
	Backends        []BackendStatus // sorted by address, IPv4 first
}

// VIPCounters are the counters of one VIP. Every value is monotonic for
// the life of the Dataplane: resets caused by VIP re-creation or a VPP
// restart are absorbed by an offset.
type VIPCounters struct {
	Key VIPKey
	// The four lb plugin packet counters.
	NextPackets      uint64 // packets of existing flows
	FirstPackets     uint64 // first packets of new flows (one per new flow)
	UntrackedPackets uint64 // new flows that found no free flow-table slot
	NoServerPackets  uint64 // new flows dropped because no backend could take them
	// RoutePackets and RouteBytes count everything that reached the VIP's
	// address (all ports), from VPP's FIB.
	RoutePackets uint64
	RouteBytes   uint64
	// Flows per backend address where the dialect can read them (the
	// flow-table slots still pointing at the backend).
	Flows map[netip.Addr]uint64
	// Adopted says the VIP was in VPP before this process added or
	// deleted it: its counts may predate this process. Always false on
	// the simulator.
	Adopted bool
	// Base is what a later process needs to continue these totals
	// (RestoreCounters); zero where the implementation keeps its
	// counters monotonic itself (the simulator).
	Base CounterBase
}

// Counters is an immutable snapshot of every VIP's counters. Callers must
// not modify it.
type Counters struct {
	Taken time.Time
	VIPs  []VIPCounters // sorted by key
}

// VIP returns the counters of one VIP.
func (c *Counters) VIP(k VIPKey) (VIPCounters, bool) {
	if c == nil {
		return VIPCounters{}, false
	}
	k = k.normalize()
	i, ok := slices.BinarySearchFunc(c.VIPs, k, func(v VIPCounters, k VIPKey) int { return compareKeys(v.Key, k) })
	if !ok {
		return VIPCounters{}, false
	}
	return c.VIPs[i], true
}

// State describes the dataplane connection.
type State struct {
	Connected bool
	// Generation increases every time a fresh VPP instance was found (first
	// connect, reconnect, restart). The desired state has been re-pushed by
	// the time it is visible.
	Generation uint64
	Version    string    // VPP version string, when known
	BootTime   time.Time // when VPP started, when known
	Dialect    string    // "binapi", "cli" or "sim"
	// Weighted reports whether backend weights other than 0 and 100 are
	// applied. Released VPP (lb API 1.1.0) has no weights.
	Weighted    bool
	LastContact time.Time // last successful exchange with VPP
	LastError   string    // the last connection error, "" when healthy
}

// Dataplane programs the load balancer. Every method is safe for
// concurrent use. Calls that talk to VPP honour the context's deadline.
type Dataplane interface {
	// Configure sets the global configuration. It is remembered and
	// re-applied after a VPP restart.
	Configure(ctx context.Context, c Conf) error
	// SyncVIP makes one VIP match v: it reads the actual state, applies the
	// difference in a deterministic order (backends sorted by address,
	// IPv4 first) and remembers v as desired state for re-pushes.
	// Syncing an unchanged VIP writes nothing.
	SyncVIP(ctx context.Context, v VIP) (SyncResult, error)
	// RemoveVIP flushes and removes the VIP's backends, then the VIP.
	// ErrNotFound if it does not exist.
	RemoveVIP(ctx context.Context, k VIPKey) error
	// VIPs reads the actual VIPs from the dataplane, sorted by key.
	VIPs(ctx context.Context) ([]VIPStatus, error)
	// Counters returns the latest counter snapshot (nil before the first).
	Counters() *Counters
	// State returns the connection state.
	State() State
}

// Validate checks v and fills in defaults; the returned VIP is normalised
// (masked prefix, ProtoAny on all-port VIPs, backends sorted and unique).
func (v VIP) Validate() (VIP, error) {
	k := v.Key
	if !k.Prefix.IsValid() {
		return v, fmt.Errorf("vip prefix %v: %w", k.Prefix, ErrInvalid)
	}
	if k.Prefix.Addr().Is4In6() || k.Prefix.Addr().Zone() != "" {
		return v, fmt.Errorf("vip prefix %v must be plain IPv4 or IPv6: %w", k.Prefix, ErrInvalid)
	}
	if k.Port != 0 && k.Protocol != ProtoTCP && k.Protocol != ProtoUDP {
		return v, fmt.Errorf("vip %v: per-port VIPs need protocol tcp or udp: %w", k, ErrInvalid)
	}
	if int(v.Encap) >= len(encapNames) {
		return v, fmt.Errorf("vip %v: %v: %w", k, v.Encap, ErrInvalid)
	}
	is4 := k.Prefix.Addr().Is4()
	switch v.Encap {
	case EncapL3DSR:
		if !is4 {
			return v, fmt.Errorf("vip %v: l3dsr needs an IPv4 VIP: %w", k, ErrInvalid)
		}
		if v.DSCP > 63 {
			return v, fmt.Errorf("vip %v: dscp %d > 63: %w", k, v.DSCP, ErrInvalid)
		}
	case EncapNAT4, EncapNAT6:
		if (v.Encap == EncapNAT4) != is4 {
			return v, fmt.Errorf("vip %v: %v needs a VIP of the same family: %w", k, v.Encap, ErrInvalid)
		}
		if k.Port == 0 {
			return v, fmt.Errorf("vip %v: %v needs a per-port VIP: %w", k, v.Encap, ErrInvalid)
		}
	}
	if v.Encap != EncapL3DSR && v.DSCP != 0 {
		return v, fmt.Errorf("vip %v: dscp is only for l3dsr: %w", k, ErrInvalid)
	}
	if v.Encap != EncapNAT4 && v.Encap != EncapNAT6 && v.TargetPort != 0 {
		return v, fmt.Errorf("vip %v: target port is only for nat4/nat6: %w", k, ErrInvalid)
	}
	if (v.Encap == EncapNAT4 || v.Encap == EncapNAT6) && v.TargetPort == 0 {
		v.TargetPort = k.Port
	}
	if v.FlowTableLength == 0 {
		v.FlowTableLength = DefaultFlowTableLength
	}
	if v.FlowTableLength&(v.FlowTableLength-1) != 0 || v.FlowTableLength > 1<<24 {
		return v, fmt.Errorf("vip %v: flow table length %d is not a power of two up to 2^24: %w", k, v.FlowTableLength, ErrInvalid)
	}
	v.Key = k.normalize()
	bs := slices.Clone(v.Backends)
	for _, b := range bs {
		if !b.Addr.IsValid() || b.Addr.Is4In6() || b.Addr.Zone() != "" {
			return v, fmt.Errorf("vip %v: backend %v: %w", k, b.Addr, ErrInvalid)
		}
		if b.Addr.Is4() != v.Encap.backendIs4() {
			return v, fmt.Errorf("vip %v: backend %v has the wrong family for %v: %w", k, b.Addr, v.Encap, ErrInvalid)
		}
		if b.Weight > MaxWeight {
			return v, fmt.Errorf("vip %v: backend %v: weight %d > %d: %w", k, b.Addr, b.Weight, MaxWeight, ErrInvalid)
		}
	}
	slices.SortFunc(bs, func(a, b Backend) int { return CompareAddr(a.Addr, b.Addr) })
	for i := 1; i < len(bs); i++ {
		if bs[i].Addr == bs[i-1].Addr {
			return v, fmt.Errorf("vip %v: backend %v listed twice: %w", k, bs[i].Addr, ErrInvalid)
		}
	}
	v.Backends = bs
	return v, nil
}

// withDefaults validates c and fills in defaults.
func (c Conf) withDefaults() (Conf, error) {
	if !c.IP4Src.IsValid() {
		c.IP4Src = netip.IPv4Unspecified()
	}
	if !c.IP6Src.IsValid() {
		c.IP6Src = netip.IPv6Unspecified()
	}
	if !c.IP4Src.Is4() || !c.IP6Src.Is6() || c.IP6Src.Is4In6() || c.IP6Src.Zone() != "" {
		return c, fmt.Errorf("lb conf source addresses %v, %v: %w", c.IP4Src, c.IP6Src, ErrInvalid)
	}
	if c.StickyBucketsPerWorker == 0 {
		c.StickyBucketsPerWorker = DefaultStickyBucketsPerWorker
	}
	if c.StickyBucketsPerWorker&(c.StickyBucketsPerWorker-1) != 0 {
		return c, fmt.Errorf("lb conf: sticky buckets %d is not a power of two: %w", c.StickyBucketsPerWorker, ErrInvalid)
	}
	if c.FlowTimeout == 0 {
		c.FlowTimeout = DefaultFlowTimeout
	}
	if c.FlowTimeout < time.Second || c.FlowTimeout%time.Second != 0 || c.FlowTimeout > 1<<31*time.Second {
		return c, fmt.Errorf("lb conf: flow timeout %v must be whole seconds: %w", c.FlowTimeout, ErrInvalid)
	}
	return c, nil
}

// ValidateConf checks c and fills in defaults, as Configure does.
func ValidateConf(c Conf) (Conf, error) { return c.withDefaults() }
