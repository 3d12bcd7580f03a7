// Package sim is an in-process vpp.Dataplane with the semantics and errors
// of VPP's lb plugin as the govpp implementation presents them (weighted
// dialect), for agent tests and the demo. No VPP is needed.
//
// Backends with weight 0 take no new flows but keep their existing ones;
// a flush evicts a backend's flows. Counters tick when a test or the demo
// sends flows with SendFlows. Restart wipes the simulated VPP (flows, VIPs)
// and, like the govpp supervisor, re-pushes the desired state and bumps
// the generation; reported counters stay monotonic. SetReachable(false)
// makes every call fail with vpp.ErrNotConnected, as a VPP that is down.
package sim

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/octavia-vpp/health/vpp"
)

// Config configures a Sim.
type Config struct {
	// Logger receives state changes. Default slog.Default().
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

type backend struct {
	weight uint8
	active bool
	flows  uint64
}

type simVIP struct {
	v        vpp.VIP // attributes only; backends live in bes
	bes      map[netip.Addr]*backend
	deficits map[netip.Addr]int // smooth weighted round robin state
}

type totals struct {
	next, first, untracked, noServer, routePkts, routeBytes uint64
}

// Sim is the simulated dataplane. Every method is safe for concurrent use.
type Sim struct {
	log *slog.Logger
	now func() time.Time

	mu          sync.Mutex
	reachable   bool
	generation  uint64
	boot        time.Time
	lastContact time.Time
	desiredConf *vpp.Conf
	conf        *vpp.Conf
	desired     map[vpp.VIPKey]vpp.VIP
	removals    map[vpp.VIPKey]bool // removed while unreachable
	vips        map[vpp.VIPKey]*simVIP
	totals      map[vpp.VIPKey]*totals
}

var _ vpp.Dataplane = (*Sim)(nil)

// New returns a reachable, empty simulator (generation 1).
func New(cfg Config) *Sim {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Sim{
		log: cfg.Logger.With("component", "vpp-sim"), now: cfg.Now, reachable: true, generation: 1,
		desired: map[vpp.VIPKey]vpp.VIP{}, removals: map[vpp.VIPKey]bool{}, vips: map[vpp.VIPKey]*simVIP{}, totals: map[vpp.VIPKey]*totals{},
	}
	s.boot = s.now()
	s.lastContact = s.boot
	return s
}

func norm(k vpp.VIPKey) vpp.VIPKey {
	k.Prefix = k.Prefix.Masked()
	if k.Port == 0 {
		k.Protocol = vpp.ProtoAny
	}
	return k
}

func (s *Sim) check(ctx context.Context, what string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if !s.reachable {
		return fmt.Errorf("%s: %w", what, vpp.ErrNotConnected)
	}
	s.lastContact = s.now()
	return nil
}

// Configure implements vpp.Dataplane.
func (s *Sim) Configure(ctx context.Context, c vpp.Conf) error {
	c, err := vpp.ValidateConf(c)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.desiredConf = &c
	if err := s.check(ctx, "lb conf"); err != nil {
		return err
	}
	s.conf = &c
	return nil
}

// conflict reproduces VPP's checks against sibling VIPs of one prefix.
func (s *Sim) conflict(v vpp.VIP) error {
	for k, o := range s.vips {
		if k == v.Key || k.Prefix != v.Key.Prefix {
			continue
		}
		if k.Port == 0 || v.Key.Port == 0 {
			return fmt.Errorf("vip %v conflicts with %v: %w", v.Key, k, vpp.ErrExists)
		}
		if o.v.Encap != v.Encap {
			return fmt.Errorf("vip %v: encap %v differs from %v on %v: %w", v.Key, v.Encap, o.v.Encap, k, vpp.ErrInvalid)
		}
	}
	return nil
}

// SyncVIP implements vpp.Dataplane.
func (s *Sim) SyncVIP(ctx context.Context, v vpp.VIP) (vpp.SyncResult, error) {
	v, err := v.Validate()
	if err != nil {
		return vpp.SyncResult{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	prev, hadPrev := s.desired[v.Key]
	s.desired[v.Key] = v
	delete(s.removals, v.Key)
	if err := s.check(ctx, "sync vip "+v.Key.String()); err != nil {
		return vpp.SyncResult{}, err
	}
	res, err := s.apply(v)
	if err != nil {
		if hadPrev {
			s.desired[v.Key] = prev
		} else {
			delete(s.desired, v.Key)
		}
		return res, err
	}
	if res.Changed() {
		s.log.Info("vip synced", "vip", v.Key.String(), "created", res.Created, "recreated", res.Recreated,
			"added", res.Added, "removed", res.Removed, "reweighted", res.Reweighted)
	}
	return res, nil
}

// apply makes the simulated VPP match v.
func (s *Sim) apply(v vpp.VIP) (vpp.SyncResult, error) {
	var res vpp.SyncResult
	sv := s.vips[v.Key]
	if sv != nil && (sv.v.Encap != v.Encap || sv.v.SrcIPSticky != v.SrcIPSticky || sv.v.FlowTableLength != v.FlowTableLength) {
		delete(s.vips, v.Key)
		sv = nil
		res.Recreated = true
	}
	if sv == nil {
		if err := s.conflict(v); err != nil {
			return res, err
		}
		attrs := v
		attrs.Backends = nil
		sv = &simVIP{v: attrs, bes: map[netip.Addr]*backend{}, deficits: map[netip.Addr]int{}}
		s.vips[v.Key] = sv
		if !res.Recreated {
			res.Created = true
		}
		if s.totals[v.Key] == nil {
			s.totals[v.Key] = &totals{}
		}
	}
	want := map[netip.Addr]bool{}
	for _, b := range v.Backends {
		want[b.Addr] = true
		cur := sv.bes[b.Addr]
		switch {
		case cur == nil:
			sv.bes[b.Addr] = &backend{weight: b.Weight, active: true}
			res.Added++
		case !cur.active:
			cur.active, cur.weight = true, b.Weight
			res.Reweighted++
		case cur.weight != b.Weight:
			cur.weight = b.Weight
			if b.Flush && b.Weight == 0 {
				cur.flows = 0
			}
			res.Reweighted++
		case b.Weight == 0 && b.Flush && cur.flows > 0:
			cur.flows = 0
			res.Reweighted++
		}
	}
	for addr, cur := range sv.bes {
		if !want[addr] && cur.active {
			cur.active, cur.flows = false, 0
			res.Removed++
		}
	}
	sv.gc()
	return res, nil
}

// gc forgets removed backends without flows, as VPP's garbage collection.
func (sv *simVIP) gc() {
	for addr, b := range sv.bes {
		if !b.active && b.flows == 0 {
			delete(sv.bes, addr)
			delete(sv.deficits, addr)
		}
	}
}

// RemoveVIP implements vpp.Dataplane.
func (s *Sim) RemoveVIP(ctx context.Context, k vpp.VIPKey) error {
	k = norm(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	_, wasDesired := s.desired[k]
	delete(s.desired, k)
	if err := s.check(ctx, "remove vip "+k.String()); err != nil {
		s.removals[k] = true
		if !wasDesired {
			return fmt.Errorf("remove vip %v: %w", k, vpp.ErrNotFound)
		}
		return err
	}
	if _, ok := s.vips[k]; !ok {
		if wasDesired {
			return nil
		}
		return fmt.Errorf("remove vip %v: %w", k, vpp.ErrNotFound)
	}
	delete(s.vips, k)
	s.log.Info("vip removed", "vip", k.String())
	return nil
}

// VIPs implements vpp.Dataplane.
func (s *Sim) VIPs(ctx context.Context) ([]vpp.VIPStatus, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx, "list vips"); err != nil {
		return nil, err
	}
	out := make([]vpp.VIPStatus, 0, len(s.vips))
	for _, k := range s.sortedKeys() {
		sv := s.vips[k]
		st := vpp.VIPStatus{Key: k, Encap: sv.v.Encap, SrcIPSticky: sv.v.SrcIPSticky, FlowTableLength: sv.v.FlowTableLength}
		for _, addr := range sortedAddrs(sv.bes) {
			b := sv.bes[addr]
			st.Backends = append(st.Backends, vpp.BackendStatus{Addr: addr, Weight: b.weight, Active: b.active, Flows: b.flows})
		}
		out = append(out, st)
	}
	return out, nil
}

func (s *Sim) sortedKeys() []vpp.VIPKey {
	keys := slices.Collect(maps.Keys(s.vips))
	slices.SortFunc(keys, vpp.VIPKey.Compare)
	return keys
}

func sortedAddrs(m map[netip.Addr]*backend) []netip.Addr {
	as := slices.Collect(maps.Keys(m))
	slices.SortFunc(as, vpp.CompareAddr)
	return as
}

// Counters implements vpp.Dataplane. The snapshot is built on each call.
func (s *Sim) Counters() *vpp.Counters {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := &vpp.Counters{Taken: s.now()}
	for _, k := range s.sortedKeys() {
		t := s.totals[k]
		vc := vpp.VIPCounters{Key: k, NextPackets: t.next, FirstPackets: t.first, UntrackedPackets: t.untracked,
			NoServerPackets: t.noServer, RoutePackets: t.routePkts, RouteBytes: t.routeBytes, Flows: map[netip.Addr]uint64{}}
		for addr, b := range s.vips[k].bes {
			vc.Flows[addr] = b.flows
		}
		c.VIPs = append(c.VIPs, vc)
	}
	return c
}

// State implements vpp.Dataplane.
func (s *Sim) State() vpp.State {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := vpp.State{Connected: s.reachable, Generation: s.generation, Version: "sim", BootTime: s.boot,
		Dialect: vpp.DialectSim, Weighted: true, LastContact: s.lastContact}
	if !s.reachable {
		st.LastError = "simulated VPP unreachable"
	}
	return st
}

// SendFlows simulates n new flows to a VIP, each of packets packets of
// bytes bytes. Every flow's first packet picks a backend with weight > 0
// by smooth weighted round robin and stays pinned to it; with no such
// backend the first packet is dropped and counted as no-server.
func (s *Sim) SendFlows(k vpp.VIPKey, n int, packets, bytes uint64) error {
	k = norm(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.reachable {
		return vpp.ErrNotConnected
	}
	sv := s.vips[k]
	if sv == nil {
		return fmt.Errorf("send flows to %v: %w", k, vpp.ErrNotFound)
	}
	t := s.totals[k]
	for range n {
		t.routePkts += packets
		t.routeBytes += packets * bytes
		b := sv.pick()
		if b == nil {
			t.noServer++
			continue
		}
		b.flows++
		t.first++
		if packets > 1 {
			t.next += packets - 1
		}
	}
	return nil
}

// pick runs one step of smooth weighted round robin over usable backends.
func (sv *simVIP) pick() *backend {
	var best netip.Addr
	total := 0
	for _, addr := range sortedAddrs(sv.bes) {
		b := sv.bes[addr]
		if !b.active || b.weight == 0 {
			continue
		}
		sv.deficits[addr] += int(b.weight)
		total += int(b.weight)
		if !best.IsValid() || sv.deficits[addr] > sv.deficits[best] {
			best = addr
		}
	}
	if !best.IsValid() {
		return nil
	}
	sv.deficits[best] -= total
	return sv.bes[best]
}

// Restart simulates a VPP restart: flows and VIPs vanish, the boot time
// and generation change, and the desired state is pushed again.
func (s *Sim) Restart() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.vips = map[vpp.VIPKey]*simVIP{}
	s.conf = nil
	s.boot = s.now()
	s.repush()
	s.log.Warn("simulated vpp restarted", "generation", s.generation)
}

// SetReachable simulates VPP becoming unreachable (false) or reachable
// again (true, which re-pushes the desired state as a reconnect does).
func (s *Sim) SetReachable(ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ok == s.reachable {
		return
	}
	s.reachable = ok
	if ok {
		s.repush()
	}
}

func (s *Sim) repush() {
	s.generation++
	if s.desiredConf != nil {
		s.conf = s.desiredConf
	}
	for k := range s.removals {
		delete(s.vips, k)
		delete(s.removals, k)
	}
	keys := slices.Collect(maps.Keys(s.desired))
	slices.SortFunc(keys, vpp.VIPKey.Compare)
	for _, k := range keys {
		if _, err := s.apply(s.desired[k]); err != nil {
			s.log.Warn("sim re-push failed", "vip", k.String(), "reason", err.Error())
		}
	}
}

// Conf returns the configuration the simulated VPP runs with, if any.
func (s *Sim) Conf() (vpp.Conf, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conf == nil {
		return vpp.Conf{}, false
	}
	return *s.conf, true
}
