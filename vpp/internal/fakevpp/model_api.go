package fakevpp

import (
	"net/netip"

	"go.fd.io/govpp/binapi/ip_types"
	"go.fd.io/govpp/binapi/lb"
)

// The binary API side of the model: lb messages decoded into model calls.

func addrOf(a ip_types.Address) netip.Addr {
	if a.Af == ip_types.ADDRESS_IP4 {
		return netip.AddrFrom4(a.Un.GetIP4())
	}
	return netip.AddrFrom16(a.Un.GetIP6())
}

func apiKey(p ip_types.AddressWithPrefix, proto uint8, port uint16) Key {
	return Key{Prefix: netip.PrefixFrom(addrOf(p.Address), int(p.Len)), Protocol: proto, Port: port}
}

var apiEncapNames = map[uint32]string{0: "gre4", 1: "gre6", 2: "l3dsr", 3: "nat4", 4: "nat6"}

// apiVIP handles lb_add_del_vip_v2. Released VPP uses the IPv4 prefix
// length as-is, which turns an IPv4 VIP into an IPv6 one (the bug the CLI
// dialect avoids), and only recognises encap 0.
func (m *Model) apiVIP(r *lb.LbAddDelVipV2, f Flavor) int {
	k := apiKey(r.Pfx, r.Protocol, r.Port)
	enc := apiEncapNames[uint32(r.Encap)]
	if f == Released {
		if k.Prefix.Addr().Is4() {
			k.Prefix = netip.PrefixFrom(netip.IPv6Unspecified(), int(r.Pfx.Len)).Masked()
		}
		if r.Encap != 0 {
			enc = "gre6"
		}
	}
	if r.IsDel {
		return m.delVIP(k)
	}
	if enc == "" {
		return errInvalidArg
	}
	_, rv := m.addVIP(VIPArgs{Key: k, Encap: enc, Sticky: r.SrcIPSticky, NewLen: r.NewFlowsTableLength, DSCP: r.Dscp, TargetPort: r.TargetPort})
	return rv
}
