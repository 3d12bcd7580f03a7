package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/octavia-vpp/health/vpp"
)

// LB is the load balancer description (lb_config_file) that a provider
// driver writes for a VPP amphora. docs/agent-lb-config.md documents it.
type LB struct {
	ID           string     `json:"loadbalancer_id"`
	VIPAddresses []string   `json:"vip_addresses"`
	Listeners    []Listener `json:"listeners"`
	Pools        []Pool     `json:"pools"`

	vips []netip.Addr
}

// Listener is one listener of the description.
type Listener struct {
	ID            string `json:"id"`
	Protocol      string `json:"protocol"`
	ProtocolPort  int    `json:"protocol_port"`
	Enabled       *bool  `json:"enabled"`
	DefaultPoolID string `json:"default_pool_id"`
}

// Pool is one pool of the description.
type Pool struct {
	ID                 string              `json:"id"`
	Enabled            *bool               `json:"enabled"`
	SessionPersistence *SessionPersistence `json:"session_persistence"`
	Members            []Member            `json:"members"`
	HealthMonitor      *HealthMonitor      `json:"healthmonitor"`
}

// SessionPersistence is a pool's persistence; only SOURCE_IP is supported
// (it becomes VPP's src_ip_sticky).
type SessionPersistence struct {
	Type string `json:"type"`
}

// Member is one member of a pool.
type Member struct {
	ID             string `json:"id"`
	Address        string `json:"address"`
	ProtocolPort   int    `json:"protocol_port"`
	Weight         *int   `json:"weight"`
	Enabled        *bool  `json:"enabled"`
	Backup         bool   `json:"backup"`
	MonitorAddress string `json:"monitor_address"`
	MonitorPort    int    `json:"monitor_port"`

	addr, monAddr netip.Addr
}

// HealthMonitor is a pool's health monitor. Delays are seconds; fractions
// are accepted (Octavia only writes integers).
type HealthMonitor struct {
	Type           string  `json:"type"`
	Delay          float64 `json:"delay"`
	Timeout        float64 `json:"timeout"`
	MaxRetries     int     `json:"max_retries"`
	MaxRetriesDown int     `json:"max_retries_down"`
	HTTPMethod     string  `json:"http_method"`
	URLPath        string  `json:"url_path"`
	ExpectedCodes  string  `json:"expected_codes"`
	DomainName     string  `json:"domain_name"`
	Enabled        *bool   `json:"enabled"`
	// FastDelay and DownDelay override the transitional and fully-down
	// probe periods (default delay/2 and 2*delay).
	FastDelay float64 `json:"fast_delay"`
	DownDelay float64 `json:"down_delay"`
}

// Health monitor types.
const (
	MonitorTCP        = "TCP"
	MonitorHTTP       = "HTTP"
	MonitorHTTPS      = "HTTPS"
	MonitorTLSHello   = "TLS-HELLO"
	MonitorUDPConnect = "UDP-CONNECT"
	MonitorPing       = "PING"
)

// ParseError is an LB description that is not valid JSON or has fields of
// the wrong type (check-config exit code 1).
type ParseError struct{ Err error }

func (e *ParseError) Error() string { return "parse lb description: " + e.Err.Error() }
func (e *ParseError) Unwrap() error { return e.Err }

// SemanticError lists everything wrong with a well-formed description
// (check-config exit code 2).
type SemanticError struct{ Problems []string }

func (e *SemanticError) Error() string {
	return "invalid lb description: " + strings.Join(e.Problems, "; ")
}

// LoadLB reads and validates an LB description file for the given encap.
func LoadLB(path string, encap vpp.Encap) (*LB, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read lb description: %w", err)
	}
	return ParseLB(b, encap)
}

// ParseLB decodes (strictly: unknown fields are errors) and validates an
// LB description.
func ParseLB(data []byte, encap vpp.Encap) (*LB, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var lb LB
	if err := dec.Decode(&lb); err != nil {
		return nil, &ParseError{Err: err}
	}
	if dec.More() {
		return nil, &ParseError{Err: errors.New("trailing data after the JSON object")}
	}
	if err := lb.validate(encap); err != nil {
		return nil, err
	}
	return &lb, nil
}

func isEnabled(b *bool) bool { return b == nil || *b }

// Enabled reports the listener's admin state (default true).
func (l *Listener) IsEnabled() bool { return isEnabled(l.Enabled) }

// IsEnabled reports the pool's admin state (default true).
func (p *Pool) IsEnabled() bool { return isEnabled(p.Enabled) }

// IsEnabled reports the member's admin state (default true).
func (m *Member) IsEnabled() bool { return isEnabled(m.Enabled) }

// IsEnabled reports the monitor's admin state (default true).
func (h *HealthMonitor) IsEnabled() bool { return h != nil && isEnabled(h.Enabled) }

// OctaviaWeight is the member's Octavia weight (default 1).
func (m *Member) OctaviaWeight() int {
	if m.Weight == nil {
		return 1
	}
	return *m.Weight
}

// Addr is the member's address.
func (m *Member) Addr() netip.Addr { return m.addr }

// ProbeTarget is where the member's probes go: monitor_address and
// monitor_port override address and protocol_port.
func (m *Member) ProbeTarget() (netip.Addr, int) {
	a, p := m.addr, m.ProtocolPort
	if m.monAddr.IsValid() {
		a = m.monAddr
	}
	if m.MonitorPort != 0 {
		p = m.MonitorPort
	}
	return a, p
}

// VIPs returns the parsed VIP addresses.
func (lb *LB) VIPs() []netip.Addr { return lb.vips }

// Pool returns the pool with the given id.
func (lb *LB) Pool(id string) *Pool {
	for i := range lb.Pools {
		if lb.Pools[i].ID == id {
			return &lb.Pools[i]
		}
	}
	return nil
}

// VPPProtocol maps a listener protocol to the VIP protocol: TCP, HTTP,
// HTTPS and TERMINATED_HTTPS are balanced as TCP (VPP works at layer 4),
// UDP as UDP.
func VPPProtocol(listenerProtocol string) (vpp.Protocol, bool) {
	switch listenerProtocol {
	case "TCP", "HTTP", "HTTPS", "TERMINATED_HTTPS":
		return vpp.ProtoTCP, true
	case "UDP":
		return vpp.ProtoUDP, true
	}
	return 0, false
}

// Intervals returns the monitor's probe periods.
func (h *HealthMonitor) Intervals() Intervals {
	iv := DefaultIntervals(seconds(h.Delay))
	if h.FastDelay > 0 {
		iv.Fast = seconds(h.FastDelay)
	}
	if h.DownDelay > 0 {
		iv.Down = seconds(h.DownDelay)
	}
	return iv
}

// ProbeTimeout is the monitor's timeout.
func (h *HealthMonitor) ProbeTimeout() time.Duration { return seconds(h.Timeout) }

// Rise is max_retries; Fall is max_retries_down (default 3, Octavia's).
func (h *HealthMonitor) Rise() int { return h.MaxRetries }

// Fall is max_retries_down (default 3, Octavia's).
func (h *HealthMonitor) Fall() int {
	if h.MaxRetriesDown == 0 {
		return 3
	}
	return h.MaxRetriesDown
}

func seconds(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }

// ExpectedCodes parses expected_codes ("200", "200,202", "200-204";
// default "200") into a predicate.
func ExpectedCodes(spec string) (func(int) bool, error) {
	if spec == "" {
		spec = "200"
	}
	type rng struct{ lo, hi int }
	var rs []rng
	for _, part := range strings.Split(spec, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 100 || a > 599 {
			return nil, fmt.Errorf("expected_codes %q: bad code %q", spec, lo)
		}
		b := a
		if isRange {
			b, err = strconv.Atoi(hi)
			if err != nil || b < a || b > 599 {
				return nil, fmt.Errorf("expected_codes %q: bad range %q", spec, part)
			}
		}
		rs = append(rs, rng{a, b})
	}
	return func(code int) bool {
		for _, r := range rs {
			if code >= r.lo && code <= r.hi {
				return true
			}
		}
		return false
	}, nil
}

func (lb *LB) validate(encap vpp.Encap) error {
	var p []string
	bad := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }
	if lb.ID == "" {
		bad("loadbalancer_id is empty")
	}
	if len(lb.VIPAddresses) == 0 {
		bad("vip_addresses is empty")
	}
	lb.vips = nil
	for _, s := range lb.VIPAddresses {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" || a.Is4In6() {
			bad("vip address %q is not a plain IP address", s)
			continue
		}
		lb.vips = append(lb.vips, a)
	}
	pools := map[string]*Pool{}
	members := map[string]bool{}
	for i := range lb.Pools {
		pl := &lb.Pools[i]
		if pl.ID == "" {
			bad("pool %d has no id", i)
			continue
		}
		if pools[pl.ID] != nil {
			bad("pool %s listed twice", pl.ID)
		}
		pools[pl.ID] = pl
		if sp := pl.SessionPersistence; sp != nil && sp.Type != "SOURCE_IP" {
			bad("pool %s: session_persistence %q is not supported (only SOURCE_IP)", pl.ID, sp.Type)
		}
		if hm := pl.HealthMonitor; hm != nil {
			validateMonitor(pl.ID, hm, bad)
		}
		addrs := map[netip.Addr]bool{}
		for j := range pl.Members {
			m := &pl.Members[j]
			if m.ID == "" {
				bad("pool %s: member %d has no id", pl.ID, j)
				continue
			}
			if members[m.ID] {
				bad("member %s listed twice", m.ID)
			}
			members[m.ID] = true
			a, err := netip.ParseAddr(m.Address)
			if err != nil || a.Zone() != "" || a.Is4In6() {
				bad("member %s: address %q is not a plain IP address", m.ID, m.Address)
				continue
			}
			m.addr = a
			if addrs[a] {
				bad("member %s: address %s is used by another member of pool %s (VPP balances by address)", m.ID, a, pl.ID)
			}
			addrs[a] = true
			if m.ProtocolPort < 1 || m.ProtocolPort > 65535 {
				bad("member %s: protocol_port %d out of range", m.ID, m.ProtocolPort)
			}
			if w := m.OctaviaWeight(); w < 0 || w > 256 {
				bad("member %s: weight %d out of range 0-256", m.ID, w)
			}
			if m.MonitorAddress != "" {
				ma, err := netip.ParseAddr(m.MonitorAddress)
				if err != nil {
					bad("member %s: monitor_address %q is not an IP address", m.ID, m.MonitorAddress)
				}
				m.monAddr = ma
			}
			if m.MonitorPort < 0 || m.MonitorPort > 65535 {
				bad("member %s: monitor_port %d out of range", m.ID, m.MonitorPort)
			}
		}
	}
	listeners := map[string]bool{}
	used := map[string]string{}
	for i := range lb.Listeners {
		l := &lb.Listeners[i]
		if l.ID == "" {
			bad("listener %d has no id", i)
			continue
		}
		if listeners[l.ID] {
			bad("listener %s listed twice", l.ID)
		}
		listeners[l.ID] = true
		proto, ok := VPPProtocol(l.Protocol)
		if !ok {
			bad("listener %s: protocol %q is not supported (TCP, HTTP, HTTPS, TERMINATED_HTTPS, UDP)", l.ID, l.Protocol)
		}
		if l.ProtocolPort < 1 || l.ProtocolPort > 65535 {
			bad("listener %s: protocol_port %d out of range", l.ID, l.ProtocolPort)
		}
		key := proto.String() + "/" + strconv.Itoa(l.ProtocolPort)
		if other, dup := used[key]; dup && ok {
			bad("listeners %s and %s both use %s", other, l.ID, key)
		}
		used[key] = l.ID
		if l.DefaultPoolID == "" {
			continue
		}
		pl := pools[l.DefaultPoolID]
		if pl == nil {
			bad("listener %s: default_pool_id %s is not a pool", l.ID, l.DefaultPoolID)
			continue
		}
		// Let the dataplane layer check family/encap rules on the VIPs this
		// listener would create.
		for _, a := range lb.vips {
			v := vpp.VIP{Key: vpp.VIPKey{Prefix: netip.PrefixFrom(a, a.BitLen()), Protocol: proto, Port: uint16(l.ProtocolPort)}, Encap: encap}
			for _, m := range pl.Members {
				if m.addr.IsValid() {
					v.Backends = append(v.Backends, vpp.Backend{Addr: m.addr})
				}
			}
			if _, err := v.Validate(); err != nil && ok {
				bad("listener %s on %s: %v", l.ID, a, err)
			}
		}
	}
	if len(p) > 0 {
		return &SemanticError{Problems: p}
	}
	return nil
}

// The range of a health monitor's delays and timeout, in seconds: a
// millisecond, and Octavia's API maximum.
const (
	minMonitorSeconds = 0.001
	maxMonitorSeconds = math.MaxInt32
)

func validateMonitor(poolID string, hm *HealthMonitor, bad func(string, ...any)) {
	switch hm.Type {
	case MonitorTCP, MonitorHTTP, MonitorHTTPS, MonitorTLSHello, MonitorUDPConnect, MonitorPing:
	default:
		bad("pool %s: healthmonitor type %q is not supported", poolID, hm.Type)
	}
	// Out of this range a period rounds to no time at all, or overflows a
	// time.Duration (twice the delay included) into a negative one: both
	// would make the prober spin.
	inRange := func(f float64) bool { return f >= minMonitorSeconds && f <= maxMonitorSeconds }
	if !inRange(hm.Delay) {
		bad("pool %s: healthmonitor delay %g out of range %g-%d seconds", poolID, hm.Delay, minMonitorSeconds, maxMonitorSeconds)
	}
	if !inRange(hm.Timeout) {
		bad("pool %s: healthmonitor timeout %g out of range %g-%d seconds", poolID, hm.Timeout, minMonitorSeconds, maxMonitorSeconds)
	}
	if hm.MaxRetries < 1 || hm.MaxRetries > 10 {
		bad("pool %s: healthmonitor max_retries %d out of range 1-10", poolID, hm.MaxRetries)
	}
	if hm.MaxRetriesDown < 0 || hm.MaxRetriesDown > 10 {
		bad("pool %s: healthmonitor max_retries_down %d out of range 1-10", poolID, hm.MaxRetriesDown)
	}
	if (hm.FastDelay != 0 && !inRange(hm.FastDelay)) || (hm.DownDelay != 0 && !inRange(hm.DownDelay)) {
		bad("pool %s: healthmonitor fast_delay/down_delay out of range %g-%d seconds (or 0 for the default)", poolID, minMonitorSeconds, maxMonitorSeconds)
	}
	if hm.Type == MonitorHTTP || hm.Type == MonitorHTTPS {
		if _, err := ExpectedCodes(hm.ExpectedCodes); err != nil {
			bad("pool %s: healthmonitor %v", poolID, err)
		}
		if hm.URLPath != "" && !strings.HasPrefix(hm.URLPath, "/") {
			bad("pool %s: healthmonitor url_path %q must start with /", poolID, hm.URLPath)
		}
		switch hm.HTTPMethod {
		case "", "GET", "HEAD", "POST", "PUT", "DELETE", "TRACE", "OPTIONS", "PATCH", "CONNECT":
		default:
			bad("pool %s: healthmonitor http_method %q is not supported", poolID, hm.HTTPMethod)
		}
	}
}
