package vpp

import (
	"fmt"
	"net/netip"
	"slices"
)

// opKind is one primitive dataplane write.
type opKind uint8

const (
	opAddVIP opKind = iota + 1
	opDelVIP
	opAddAS     // add (or revive) a backend with weight
	opDelAS     // remove a backend; flush evicts its flows
	opSetWeight // change the weight of an active backend (weighted dialects only)
)

func (k opKind) String() string {
	switch k {
	case opAddVIP:
		return "add-vip"
	case opDelVIP:
		return "del-vip"
	case opAddAS:
		return "add-as"
	case opDelAS:
		return "del-as"
	case opSetWeight:
		return "set-weight"
	}
	return "op?"
}

// op is one step of a plan.
type op struct {
	kind   opKind
	addr   netip.Addr // backend, for AS operations
	weight uint8
	flush  bool
}

func (o op) String() string {
	switch o.kind {
	case opAddAS, opSetWeight:
		return fmt.Sprintf("%v %v weight=%d flush=%t", o.kind, o.addr, o.weight, o.flush)
	case opDelAS:
		return fmt.Sprintf("%v %v flush=%t", o.kind, o.addr, o.flush)
	}
	return o.kind.String()
}

// immutableDiffers reports whether the actual VIP must be recreated to
// become the desired one (VPP cannot change these on a live VIP).
func immutableDiffers(want VIP, have *VIPStatus) bool {
	return have.Encap != want.Encap || have.SrcIPSticky != want.SrcIPSticky || have.FlowTableLength != want.FlowTableLength
}

// planSync computes the writes that turn have (nil if the VIP does not
// exist) into want, which must already be validated. Weighted says whether
// the dialect has backend weights; without them a non-zero weight means
// "in service" and weight 0 means "removed" (a drain: flows are kept unless
// the backend asks for a flush).
//
// The order is deterministic: VIP creation first, then backend additions
// and weight changes in address order (IPv4 first), then backend removals
// in address order, so capacity is added before it is taken away.
func planSync(want VIP, have *VIPStatus, weighted bool) ([]op, SyncResult) {
	var res SyncResult
	var ops []op
	if have != nil && immutableDiffers(want, have) {
		ops = append(ops, planRemove(have)...)
		have = nil
		res.Recreated = true
	}
	if have == nil {
		ops = append(ops, op{kind: opAddVIP})
		if !res.Recreated {
			res.Created = true
		}
		for _, b := range want.Backends {
			if weighted || b.Weight > 0 {
				ops = append(ops, op{kind: opAddAS, addr: b.Addr, weight: b.Weight})
				res.Added++
			}
		}
		return ops, res
	}

	actual := make(map[netip.Addr]BackendStatus, len(have.Backends))
	for _, b := range have.Backends {
		actual[b.Addr] = b
	}
	desired := make(map[netip.Addr]bool, len(want.Backends))
	for _, b := range want.Backends {
		desired[b.Addr] = true
		a, known := actual[b.Addr]
		switch {
		case weighted && !known:
			ops = append(ops, op{kind: opAddAS, addr: b.Addr, weight: b.Weight})
			res.Added++
		case weighted && !a.Active:
			ops = append(ops, op{kind: opAddAS, addr: b.Addr, weight: b.Weight})
			res.Reweighted++
		case weighted && a.Weight != b.Weight:
			ops = append(ops, op{kind: opSetWeight, addr: b.Addr, weight: b.Weight, flush: b.Flush && b.Weight == 0})
			res.Reweighted++
		case weighted && b.Weight == 0 && b.Flush && a.Flows > 0:
			// Already drained but still holding flows: evict them.
			ops = append(ops, op{kind: opSetWeight, addr: b.Addr, weight: 0, flush: true})
			res.Reweighted++
		case !weighted && b.Weight > 0 && !known:
			ops = append(ops, op{kind: opAddAS, addr: b.Addr, weight: b.Weight})
			res.Added++
		case !weighted && b.Weight > 0 && !a.Active:
			ops = append(ops, op{kind: opAddAS, addr: b.Addr, weight: b.Weight})
			res.Reweighted++
		case !weighted && b.Weight == 0 && known && (a.Active || (b.Flush && a.Flows > 0)):
			// VPP accepts deleting a removed AS again; with flush that
			// evicts the flows a soft drain left behind.
			ops = append(ops, op{kind: opDelAS, addr: b.Addr, flush: b.Flush})
			res.Reweighted++
		}
	}
	for _, a := range sortedBackends(have.Backends) {
		if !desired[a.Addr] && a.Active {
			ops = append(ops, op{kind: opDelAS, addr: a.Addr, flush: true})
			res.Removed++
		}
	}
	return ops, res
}

// planRemove removes a VIP: its active backends with a flush, in address
// order, then the VIP itself.
func planRemove(have *VIPStatus) []op {
	var ops []op
	for _, a := range sortedBackends(have.Backends) {
		if a.Active {
			ops = append(ops, op{kind: opDelAS, addr: a.Addr, flush: true})
		}
	}
	return append(ops, op{kind: opDelVIP})
}

func sortedBackends(bs []BackendStatus) []BackendStatus {
	bs = slices.Clone(bs)
	slices.SortFunc(bs, func(a, b BackendStatus) int { return CompareAddr(a.Addr, b.Addr) })
	return bs
}
