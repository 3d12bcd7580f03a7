// Package fakevpp is a fake VPP for tests: a unix-socket server that speaks
// VPP's binary API framing to govpp's real socketclient, backed by a small
// model of the lb plugin (VIP pool with indices, ASes, weights, flows,
// per-worker counters, FIB route counters), plus a fake stats source that
// reads the same model. It can pose as released VPP (lb API 1.1.0: no
// weighted messages in its table, the released `show` layout and the IPv4
// VIP bug of the old binary API) or as VPP master (lb API 1.2.0).
package fakevpp

import (
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/octavia-vpp/health/vpp/internal/lbcli"
)

// VPP API error numbers the model returns.
const (
	errNoSuchEntry   = -6
	errInvalidMemory = -70
	errInvalidArg    = -73
	errValueExist    = -81
	errAddrFamily    = -97
)

// workers is the number of threads whose counters the model keeps: main
// plus two workers.
const workers = 3

type as struct {
	addr   netip.Addr
	weight int
	used   bool
	flows  uint64
}

type vip struct {
	used       bool
	prefix     netip.Prefix // as VPP stores it for display
	is4        bool
	protocol   uint8 // 255 for all-port
	port       uint16
	encap      string
	sticky     bool
	newLen     uint32
	dscp       uint8
	targetPort uint16
	ases       []*as
	rr         int
}

func (v *vip) vipType() string {
	fam := "ip6-"
	if v.is4 {
		fam = "ip4-"
	}
	return fam + v.encap
}

// Model is the lb plugin state of the fake VPP.
type Model struct {
	mu       sync.Mutex
	weighted bool
	bootTime time.Time
	conf     struct {
		ip4, ip6        netip.Addr
		buckets, expiry uint32
	}
	vips []*vip // index 0 is VPP's placeholder VIP
	free []int
	// counters[c][thread][vipIndex]
	counters [4][workers][]uint64
	routes   map[netip.Prefix]int
	routeCtr [][2]uint64 // by route stats index
	next     int         // round-robin thread for traffic
	// Violations records requests a real VPP would crash on or silently
	// mis-handle (zero defaults).
	Violations []string
}

func newModel(weighted bool, boot time.Time) *Model {
	m := &Model{weighted: weighted, bootTime: boot, routes: map[netip.Prefix]int{}}
	m.vips = []*vip{{used: true, prefix: netip.MustParsePrefix("::/0"), encap: "gre6"}}
	m.conf.buckets, m.conf.expiry = 1024, 40
	m.conf.ip4, m.conf.ip6 = netip.MustParseAddr("255.255.255.255"), netip.MustParseAddr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")
	m.routeCtr = make([][2]uint64, 1)
	return m
}

// Key selects a VIP in the model: prefix, protocol (255 = all-port) and port.
type Key struct {
	Prefix   netip.Prefix
	Protocol uint8
	Port     uint16
}

func (k Key) norm() Key {
	if k.Port == 0 {
		k.Protocol = 255
	}
	k.Prefix = k.Prefix.Masked()
	return k
}

func (m *Model) find(k Key) (int, *vip) {
	k = k.norm()
	for i, v := range m.vips {
		if i > 0 && v.used && v.prefix == k.Prefix && v.protocol == k.Protocol && v.port == k.Port {
			return i, v
		}
	}
	return -1, nil
}

// gc drops removed VIPs and unused flow-less ASes, as VPP's garbage
// collection does on CLI commands (freed pool slots are reused).
func (m *Model) gc() {
	for i, v := range m.vips {
		if i == 0 || v == nil {
			continue
		}
		v.ases = slices.DeleteFunc(v.ases, func(a *as) bool { return !a.used && a.flows == 0 })
		if !v.used {
			m.vips[i] = nil
			m.free = append(m.free, i)
		}
	}
}

// VIPArgs are the arguments of a VIP add.
type VIPArgs struct {
	Key
	Encap      string
	Sticky     bool
	NewLen     uint32
	DSCP       uint8
	TargetPort uint16
}

func (m *Model) addVIP(a VIPArgs) (int, int) {
	m.gc()
	k := a.Key.norm()
	if a.NewLen == 0 {
		m.Violations = append(m.Violations, fmt.Sprintf("add vip %v with new_flows_table_length 0", k.Prefix))
		return -1, errInvalidMemory
	}
	if a.NewLen&(a.NewLen-1) != 0 {
		return -1, errInvalidMemory
	}
	for i, v := range m.vips {
		if i == 0 || v == nil || !v.used || v.prefix != k.Prefix {
			continue
		}
		if v.protocol == k.Protocol && v.port == k.Port {
			return -1, errValueExist
		}
		if v.port == 0 || k.Port == 0 {
			return -1, errValueExist
		}
		if v.encap != a.Encap {
			return -1, errInvalidArg
		}
	}
	nv := &vip{used: true, prefix: k.Prefix, is4: k.Prefix.Addr().Is4(), protocol: k.Protocol, port: k.Port,
		encap: a.Encap, sticky: a.Sticky, newLen: a.NewLen, dscp: a.DSCP, targetPort: a.TargetPort}
	var idx int
	if n := len(m.free); n > 0 {
		idx, m.free = m.free[n-1], m.free[:n-1]
		m.vips[idx] = nv
	} else {
		idx = len(m.vips)
		m.vips = append(m.vips, nv)
	}
	// Counters of a (re)used index start from zero.
	for c := range m.counters {
		for t := range m.counters[c] {
			if idx < len(m.counters[c][t]) {
				m.counters[c][t][idx] = 0
			}
		}
	}
	if _, ok := m.routes[k.Prefix]; !ok {
		m.routes[k.Prefix] = len(m.routeCtr)
		m.routeCtr = append(m.routeCtr, [2]uint64{})
	}
	return idx, 0
}

func (m *Model) delVIP(k Key) int {
	i, v := m.find(k)
	if v == nil {
		return errNoSuchEntry
	}
	_ = i
	v.used = false
	for _, a := range v.ases {
		a.used = false
	}
	still := false
	for j, o := range m.vips {
		if j > 0 && o != nil && o.used && o.prefix == v.prefix {
			still = true
		}
	}
	if !still {
		delete(m.routes, v.prefix)
	}
	return 0
}

func (m *Model) asFamilyOK(v *vip, addr netip.Addr) bool {
	switch v.encap {
	case "gre4", "l3dsr", "nat4":
		return addr.Is4()
	}
	return addr.Is6()
}

func (m *Model) addAS(k Key, addr netip.Addr, weight int) int {
	_, v := m.find(k)
	if v == nil {
		return errNoSuchEntry
	}
	for _, a := range v.ases {
		if a.addr == addr {
			if a.used {
				return errValueExist
			}
			a.used, a.weight = true, weight
			return 0
		}
	}
	if !m.asFamilyOK(v, addr) {
		return errAddrFamily
	}
	v.ases = append(v.ases, &as{addr: addr, weight: weight, used: true})
	slices.SortFunc(v.ases, func(x, y *as) int { return x.addr.Compare(y.addr) })
	return 0
}

func (m *Model) delAS(k Key, addr netip.Addr, flush bool) int {
	_, v := m.find(k)
	if v == nil {
		return errNoSuchEntry
	}
	for _, a := range v.ases {
		if a.addr == addr {
			// Like lb_vip_del_ass_withlock: an AS that is already unused
			// can be deleted again (with flush, its flows go).
			a.used = false
			if flush {
				a.flows = 0
			}
			return 0
		}
	}
	return errNoSuchEntry
}

func (m *Model) setWeight(k Key, addr netip.Addr, weight int, flush bool) int {
	_, v := m.find(k)
	if v == nil {
		return errNoSuchEntry
	}
	for _, a := range v.ases {
		if a.addr == addr && a.used {
			a.weight = weight
			if flush {
				a.flows = 0
			}
			return 0
		}
	}
	return errNoSuchEntry
}

func (m *Model) setConf(ip4, ip6 netip.Addr, buckets, expiry uint32) int {
	if buckets == 0 || expiry == 0 {
		m.Violations = append(m.Violations, fmt.Sprintf("lb conf with buckets=%d timeout=%d", buckets, expiry))
	}
	if buckets&(buckets-1) != 0 {
		return errInvalidMemory
	}
	m.conf.ip4, m.conf.ip6, m.conf.buckets, m.conf.expiry = ip4, ip6, buckets, expiry
	return 0
}

// show renders `show lb vips verbose` in the layout of this VPP.
func (m *Model) show() string {
	var out []lbcli.VIP
	for i, v := range m.vips {
		if i == 0 || v == nil {
			continue
		}
		lv := lbcli.VIP{Index: uint32(i), Type: v.vipType(), Prefix: v.prefix, SrcIPSticky: v.sticky, Removed: !v.used,
			NewSize: v.newLen, DSCP: v.dscp, TargetPort: v.targetPort}
		if v.port != 0 {
			lv.Protocol, lv.Port = v.protocol, v.port
		}
		if v.encap == "nat4" || v.encap == "nat6" {
			lv.NATType = "clusterip"
		}
		for c := range m.counters {
			for t := range m.counters[c] {
				if i < len(m.counters[c][t]) {
					lv.Counters[c] += m.counters[c][t][i]
				}
			}
		}
		for _, a := range v.ases {
			w := -1
			if m.weighted {
				w = a.weight
			}
			lv.ASes = append(lv.ASes, lbcli.AS{Addr: a.addr, Weight: w, Flows: a.flows, Used: a.used, DPO: uint32(i*10 + 1)})
		}
		out = append(out, lv)
	}
	layout := lbcli.Released
	if m.weighted {
		layout = lbcli.Master
	}
	return lbcli.Render(out, layout)
}

func (m *Model) bump(c, idx int, n uint64) {
	t := m.next % workers
	m.next++
	vec := &m.counters[c][t]
	for len(*vec) <= idx {
		*vec = append(*vec, 0)
	}
	(*vec)[idx] += n
}

// SendFlows sends n new flows of pkts packets and bytes bytes each to the
// VIP: each flow's first packet picks a backend (weight > 0, round robin)
// and the rest count as packets of existing sessions. Without a usable
// backend the first packets count as no-server drops.
func (m *Model) SendFlows(k Key, n int, pkts, bytes uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	idx, v := m.find(k)
	if v == nil {
		return fmt.Errorf("fakevpp: no vip %v", k)
	}
	var usable []*as
	for _, a := range v.ases {
		if a.used && (a.weight > 0 || !m.weighted) {
			usable = append(usable, a)
		}
	}
	for range n {
		if len(usable) == 0 {
			m.bump(3, idx, 1)
		} else {
			a := usable[v.rr%len(usable)]
			v.rr++
			a.flows++
			m.bump(1, idx, 1)
			if pkts > 1 {
				m.bump(0, idx, pkts-1)
			}
		}
		r := m.routes[v.prefix]
		m.routeCtr[r][0] += pkts
		m.routeCtr[r][1] += pkts * bytes
	}
	return nil
}

// Flows returns the flow count of one backend (-1 if unknown).
func (m *Model) Flows(k Key, addr netip.Addr) int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, v := m.find(k)
	if v == nil {
		return -1
	}
	for _, a := range v.ases {
		if a.addr == addr {
			return int64(a.flows)
		}
	}
	return -1
}

// Conf returns the lb conf values.
func (m *Model) Conf() (ip4, ip6 netip.Addr, buckets, timeout uint32) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.conf.ip4, m.conf.ip6, m.conf.buckets, m.conf.expiry
}

// ViolationList returns a copy of Violations.
func (m *Model) ViolationList() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.Violations)
}

// Keys returns the keys of the VIPs the model holds.
func (m *Model) Keys() []Key {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Key
	for _, v := range m.vips[1:] {
		if v.used {
			out = append(out, Key{Prefix: v.prefix, Protocol: v.protocol, Port: v.port}.norm())
		}
	}
	return out
}

// Totals sums what this instance counted over every VIP: first-session
// packets, no-server drops and route bytes.
func (m *Model) Totals() (first, noServer, routeBytes uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for t := range workers {
		for _, v := range m.counters[1][t] {
			first += v
		}
		for _, v := range m.counters[3][t] {
			noServer += v
		}
	}
	for _, r := range m.routeCtr {
		routeBytes += r[1]
	}
	return first, noServer, routeBytes
}
