package vpp

import (
	"context"
	"net"
	"net/netip"
	"time"

	"go.fd.io/govpp/binapi/ip_types"
	"go.fd.io/govpp/binapi/lb"
	"go.fd.io/govpp/binapi/lb_types"

	"github.com/octavia-vpp/health/vpp/internal/lbapi"
)

// binapiProgrammer writes through the binary API of lb >= 1.2.0, with
// weights.
type binapiProgrammer struct{ c caller }

func (binapiProgrammer) name() string   { return DialectBinAPI }
func (binapiProgrammer) weighted() bool { return true }

func toPrefix(p netip.Prefix) ip_types.AddressWithPrefix {
	return ip_types.AddressWithPrefix{Address: toAddress(p.Addr()), Len: uint8(p.Bits())}
}

func toAddress(a netip.Addr) ip_types.Address { return ip_types.NewAddress(net.IP(a.AsSlice())) }

var apiEncaps = [...]lb_types.LbEncapType{
	EncapGRE4:  lb_types.LB_API_ENCAP_TYPE_GRE4,
	EncapGRE6:  lb_types.LB_API_ENCAP_TYPE_GRE6,
	EncapL3DSR: lb_types.LB_API_ENCAP_TYPE_L3DSR,
	EncapNAT4:  lb_types.LB_API_ENCAP_TYPE_NAT4,
	EncapNAT6:  lb_types.LB_API_ENCAP_TYPE_NAT6,
}

func (p binapiProgrammer) conf(ctx context.Context, c Conf) error {
	return p.c.call(ctx, &lb.LbConf{
		IP4SrcAddress:        ip_types.IP4Address(c.IP4Src.As4()),
		IP6SrcAddress:        ip_types.IP6Address(c.IP6Src.As16()),
		StickyBucketsPerCore: c.StickyBucketsPerWorker,
		FlowTimeout:          uint32(c.FlowTimeout / time.Second),
	}, &lb.LbConfReply{})
}

func (p binapiProgrammer) vipMsg(v VIP, del bool) *lb.LbAddDelVipV2 {
	return &lb.LbAddDelVipV2{
		Pfx:                 toPrefix(v.Key.Prefix),
		Protocol:            uint8(v.Key.Protocol),
		Port:                v.Key.Port,
		Encap:               apiEncaps[v.Encap],
		Dscp:                v.DSCP,
		Type:                lb_types.LB_API_SRV_TYPE_CLUSTERIP,
		TargetPort:          v.TargetPort,
		NodePort:            0,
		NewFlowsTableLength: v.FlowTableLength,
		SrcIPSticky:         v.SrcIPSticky,
		IsDel:               del,
	}
}

func (p binapiProgrammer) addVIP(ctx context.Context, v VIP) error {
	return p.c.call(ctx, p.vipMsg(v, false), &lb.LbAddDelVipV2Reply{})
}

func (p binapiProgrammer) delVIP(ctx context.Context, v VIP) error {
	return p.c.call(ctx, p.vipMsg(v, true), &lb.LbAddDelVipV2Reply{})
}

func (p binapiProgrammer) addAS(ctx context.Context, k VIPKey, as netip.Addr, weight uint8) error {
	return p.c.call(ctx, &lbapi.LbAddDelAsV2{Pfx: toPrefix(k.Prefix), Protocol: uint8(k.Protocol), Port: k.Port,
		AsAddress: toAddress(as), Weight: weight}, &lbapi.LbAddDelAsV2Reply{})
}

func (p binapiProgrammer) delAS(ctx context.Context, k VIPKey, as netip.Addr, flush bool) error {
	return p.c.call(ctx, &lbapi.LbAddDelAsV2{Pfx: toPrefix(k.Prefix), Protocol: uint8(k.Protocol), Port: k.Port,
		AsAddress: toAddress(as), Weight: 0, IsDel: true, IsFlush: flush}, &lbapi.LbAddDelAsV2Reply{})
}

func (p binapiProgrammer) setWeight(ctx context.Context, k VIPKey, as netip.Addr, weight uint8, flush bool) error {
	return p.c.call(ctx, &lbapi.LbAsSetWeight{Pfx: toPrefix(k.Prefix), Protocol: uint8(k.Protocol), Port: k.Port,
		AsAddress: toAddress(as), Weight: weight, IsFlush: flush}, &lbapi.LbAsSetWeightReply{})
}
