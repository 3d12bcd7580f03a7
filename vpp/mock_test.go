package vpp

import (
	"context"
	"encoding/binary"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"go.fd.io/govpp/adapter"
	"go.fd.io/govpp/adapter/mock"
	"go.fd.io/govpp/api"
	"go.fd.io/govpp/binapi/ip_types"
	"go.fd.io/govpp/binapi/lb"
	"go.fd.io/govpp/binapi/lb_types"
	"go.fd.io/govpp/binapi/memclnt"
	"go.fd.io/govpp/binapi/vlib"
	"go.fd.io/govpp/binapi/vpe"
	"go.fd.io/govpp/codec"

	"github.com/octavia-vpp/health/vpp/internal/lbapi"
)

// mockVPP scripts govpp's mock adapter: it answers the connection-time
// requests, serves a fixed `show lb vips verbose` text, decodes every
// other request back into its Go type and records it.
type mockVPP struct {
	m *mock.VppAdapter

	mu        sync.Mutex
	lbMinor   uint32
	show      string
	retval    int32  // retval for lb requests
	cliReply  string // reply text for CLI configuration commands
	recording bool
	got       []api.Message
}

// lbRequests maps the request names the layer sends to their types and
// reply types.
var lbRequests = map[string]struct{ req, reply func() api.Message }{
	"lb_conf":           {func() api.Message { return &lb.LbConf{} }, func() api.Message { return &lb.LbConfReply{} }},
	"lb_add_del_vip_v2": {func() api.Message { return &lb.LbAddDelVipV2{} }, func() api.Message { return &lb.LbAddDelVipV2Reply{} }},
	"lb_add_del_as_v2":  {func() api.Message { return &lbapi.LbAddDelAsV2{} }, func() api.Message { return &lbapi.LbAddDelAsV2Reply{} }},
	"lb_as_set_weight":  {func() api.Message { return &lbapi.LbAsSetWeight{} }, func() api.Message { return &lbapi.LbAsSetWeightReply{} }},
}

func newMockVPP(t *testing.T, lbMinor uint32) *mockVPP {
	mv := &mockVPP{m: mock.NewVppAdapter(), lbMinor: lbMinor}
	mv.m.MockReplyHandler(mv.handle)
	return mv
}

func (mv *mockVPP) reply(req mock.MessageDTO, msg api.Message) ([]byte, uint16, bool) {
	id, err := mv.m.GetMsgID(msg.GetMessageName(), msg.GetCrcString())
	if err != nil {
		return nil, 0, false
	}
	data, err := codec.DefaultCodec.EncodeMsg(msg, id)
	if err != nil {
		return nil, 0, false
	}
	binary.BigEndian.PutUint32(data[2:6], req.ClientID)
	return data, id, true
}

func (mv *mockVPP) handle(req mock.MessageDTO) ([]byte, uint16, bool) {
	mv.mu.Lock()
	defer mv.mu.Unlock()
	switch req.MsgName {
	case "control_ping":
		return mv.reply(req, &memclnt.ControlPingReply{})
	case "show_version":
		return mv.reply(req, &vpe.ShowVersionReply{Version: "mock"})
	case "api_versions":
		return mv.reply(req, &memclnt.APIVersionsReply{Count: 1, APIVersions: []memclnt.ModuleVersion{{Name: "lb", Major: 1, Minor: mv.lbMinor}}})
	case "cli_inband":
		in := &vlib.CliInband{}
		if err := codec.DefaultCodec.DecodeMsg(req.Data, in); err != nil {
			return nil, 0, false
		}
		if in.Cmd == "show lb vips verbose" {
			return mv.reply(req, &vlib.CliInbandReply{Reply: mv.show})
		}
		if mv.recording {
			mv.got = append(mv.got, in)
		}
		return mv.reply(req, &vlib.CliInbandReply{Reply: mv.cliReply})
	}
	t, ok := lbRequests[req.MsgName]
	if !ok {
		return nil, 0, false
	}
	in := t.req()
	if err := codec.DefaultCodec.DecodeMsg(req.Data, in); err != nil {
		return nil, 0, false
	}
	if mv.recording {
		mv.got = append(mv.got, in)
	}
	rep := t.reply()
	reflect.ValueOf(rep).Elem().FieldByName("Retval").SetInt(int64(mv.retval))
	return mv.reply(req, rep)
}

func (mv *mockVPP) script(show string, retval int32, cliReply string) {
	mv.mu.Lock()
	mv.show, mv.retval, mv.cliReply, mv.recording, mv.got = show, retval, cliReply, true, nil
	mv.mu.Unlock()
}

func (mv *mockVPP) recorded() []api.Message {
	mv.mu.Lock()
	defer mv.mu.Unlock()
	return mv.got
}

func startMock(t *testing.T, lbMinor uint32) (*Govpp, *mockVPP) {
	mv := newMockVPP(t, lbMinor)
	g, err := NewGovpp(GovppConfig{
		NewAdapter:     func() adapter.VppAPI { return mv.m },
		PingInterval:   time.Hour,
		ScrapeInterval: time.Hour,
		CallTimeout:    2 * time.Second,
		Logger:         testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = g.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	deadline := time.Now().Add(5 * time.Second)
	for !g.State().Connected {
		if time.Now().After(deadline) {
			t.Fatalf("mock never connected: %+v", g.State())
		}
		time.Sleep(2 * time.Millisecond)
	}
	return g, mv
}

func pfxMsg(s string) ip_types.AddressWithPrefix {
	p, err := ip_types.ParseAddressWithPrefix(s)
	if err != nil {
		panic(err)
	}
	return p
}

func addrMsg(s string) ip_types.Address {
	x, err := ip_types.ParseAddress(s)
	if err != nil {
		panic(err)
	}
	return x
}

// Actual states the mock reports, in the layout of each VPP.
const (
	showEmpty      = ""
	showOneASMastr = " ip4-gre4 [1] 192.0.2.10/32\n  new_size:1024\n  protocol:6 port:80\n  counters:\n" +
		"    packet from existing sessions: 0\n    first session packet: 0\n    untracked packet: 0\n    no server configured: 0\n" +
		"  #as:2\n    10.0.0.1 weight:100 buckets:512 flows:0 dpo:1 used\n    10.0.0.2 weight:100 buckets:512 flows:0 dpo:2 used\n\n"
	showOneASReleased = " ip4-gre4 [1] 192.0.2.10/32\n  new_size:1024\n  protocol:6 port:80\n  counters:\n" +
		"    packet from existing sessions: 0\n    first session packet: 0\n    untracked packet: 0\n    no server configured: 0\n" +
		"  #as:2\n    10.0.0.1 512 buckets   0 flows  dpo:1 used\n    10.0.0.2 512 buckets   0 flows  dpo:2 used\n\n"
)

// TestMockRequests asserts the exact request messages of every write, in
// both dialects, by decoding what went over govpp's mock adapter.
func TestMockRequests(t *testing.T) {
	k80 := VIPKey{Prefix: p("192.0.2.10/32"), Protocol: ProtoTCP, Port: 80}
	kDSR := VIPKey{Prefix: p("192.0.2.20/32")}
	k6 := VIPKey{Prefix: p("2001:db8::10/128"), Protocol: ProtoUDP, Port: 53}
	two := VIP{Key: k80, Backends: []Backend{{Addr: a("10.0.0.2"), Weight: 50}, {Addr: a("10.0.0.1"), Weight: 100}}}
	cli := func(cmd string) api.Message { return &vlib.CliInband{Cmd: cmd} }
	vipMsg := func(m lb.LbAddDelVipV2) api.Message { return &m }
	type step func(ctx context.Context, g *Govpp) error
	// reweigh syncs k80 with 10.0.0.2 at weight w (the mock's VPP has both
	// backends at 100).
	reweigh := func(w uint8, flush bool) step {
		return func(ctx context.Context, g *Govpp) error {
			_, err := g.SyncVIP(ctx, VIP{Key: k80, Backends: []Backend{{Addr: a("10.0.0.1"), Weight: 100},
				{Addr: a("10.0.0.2"), Weight: w, Flush: flush}}})
			return err
		}
	}
	tests := []struct {
		name      string
		create    bool // VPP starts empty (else it has VIP k80 with two backends)
		do        step
		binapi    []api.Message // lb 1.2.0: binary API
		cliDialct []api.Message // lb 1.1.0: CLI
	}{
		{
			name: "conf", create: true,
			do: func(ctx context.Context, g *Govpp) error {
				return g.Configure(ctx, Conf{IP4Src: a("192.0.2.1"), IP6Src: a("2001:db8::1"), StickyBucketsPerWorker: 65536, FlowTimeout: 30 * time.Second})
			},
			binapi: []api.Message{&lb.LbConf{IP4SrcAddress: ip_types.IP4Address{192, 0, 2, 1},
				IP6SrcAddress: ip_types.IP6Address{0x20, 0x01, 0x0d, 0xb8, 15: 1}, StickyBucketsPerCore: 65536, FlowTimeout: 30}},
			cliDialct: []api.Message{cli("lb conf ip4-src-address 192.0.2.1 ip6-src-address 2001:db8::1 buckets 65536 timeout 30")},
		},
		{
			name: "conf defaults are sent explicitly", create: true,
			do: func(ctx context.Context, g *Govpp) error { return g.Configure(ctx, Conf{IP4Src: a("192.0.2.1")}) },
			binapi: []api.Message{&lb.LbConf{IP4SrcAddress: ip_types.IP4Address{192, 0, 2, 1},
				StickyBucketsPerCore: 1024, FlowTimeout: 40}},
			cliDialct: []api.Message{cli("lb conf ip4-src-address 192.0.2.1 ip6-src-address :: buckets 1024 timeout 40")},
		},
		{
			name: "add vip with backends in address order", create: true,
			do: func(ctx context.Context, g *Govpp) error { _, err := g.SyncVIP(ctx, two); return err },
			binapi: []api.Message{
				vipMsg(lb.LbAddDelVipV2{Pfx: pfxMsg("192.0.2.10/32"), Protocol: 6, Port: 80, Encap: lb_types.LB_API_ENCAP_TYPE_GRE4,
					Type: lb_types.LB_API_SRV_TYPE_CLUSTERIP, NewFlowsTableLength: 1024}),
				&lbapi.LbAddDelAsV2{Pfx: pfxMsg("192.0.2.10/32"), Protocol: 6, Port: 80, AsAddress: addrMsg("10.0.0.1"), Weight: 100},
				&lbapi.LbAddDelAsV2{Pfx: pfxMsg("192.0.2.10/32"), Protocol: 6, Port: 80, AsAddress: addrMsg("10.0.0.2"), Weight: 50},
			},
			cliDialct: []api.Message{
				cli("lb vip 192.0.2.10/32 protocol tcp port 80 encap gre4 new_len 1024"),
				cli("lb as 192.0.2.10/32 protocol tcp port 80 10.0.0.1"),
				cli("lb as 192.0.2.10/32 protocol tcp port 80 10.0.0.2"),
			},
		},
		{
			name: "add all-port l3dsr vip", create: true,
			do: func(ctx context.Context, g *Govpp) error {
				_, err := g.SyncVIP(ctx, VIP{Key: kDSR, Encap: EncapL3DSR, DSCP: 10, FlowTableLength: 4096})
				return err
			},
			binapi: []api.Message{vipMsg(lb.LbAddDelVipV2{Pfx: pfxMsg("192.0.2.20/32"), Protocol: 255, Encap: lb_types.LB_API_ENCAP_TYPE_L3DSR,
				Dscp: 10, Type: lb_types.LB_API_SRV_TYPE_CLUSTERIP, NewFlowsTableLength: 4096})},
			cliDialct: []api.Message{cli("lb vip 192.0.2.20/32 encap l3dsr dscp 10 new_len 4096")},
		},
		{
			name: "add sticky ipv6 gre6 vip", create: true,
			do: func(ctx context.Context, g *Govpp) error {
				_, err := g.SyncVIP(ctx, VIP{Key: k6, Encap: EncapGRE6, SrcIPSticky: true,
					Backends: []Backend{{Addr: a("2001:db8:1::5"), Weight: 100}}})
				return err
			},
			binapi: []api.Message{
				vipMsg(lb.LbAddDelVipV2{Pfx: pfxMsg("2001:db8::10/128"), Protocol: 17, Port: 53, Encap: lb_types.LB_API_ENCAP_TYPE_GRE6,
					Type: lb_types.LB_API_SRV_TYPE_CLUSTERIP, NewFlowsTableLength: 1024, SrcIPSticky: true}),
				&lbapi.LbAddDelAsV2{Pfx: pfxMsg("2001:db8::10/128"), Protocol: 17, Port: 53, AsAddress: addrMsg("2001:db8:1::5"), Weight: 100},
			},
			cliDialct: []api.Message{
				cli("lb vip 2001:db8::10/128 protocol udp port 53 encap gre6 new_len 1024 src_ip_sticky"),
				cli("lb as 2001:db8::10/128 protocol udp port 53 2001:db8:1::5"),
			},
		},
		{
			name: "delete backend through sync flushes it",
			do: func(ctx context.Context, g *Govpp) error {
				_, err := g.SyncVIP(ctx, VIP{Key: k80, Backends: []Backend{{Addr: a("10.0.0.1"), Weight: 100}}})
				return err
			},
			binapi: []api.Message{&lbapi.LbAddDelAsV2{Pfx: pfxMsg("192.0.2.10/32"), Protocol: 6, Port: 80,
				AsAddress: addrMsg("10.0.0.2"), IsDel: true, IsFlush: true}},
			cliDialct: []api.Message{cli("lb as 192.0.2.10/32 protocol tcp port 80 10.0.0.2 del flush")},
		},
		{
			name: "soft drain",
			do:   reweigh(0, false),
			binapi: []api.Message{&lbapi.LbAsSetWeight{Pfx: pfxMsg("192.0.2.10/32"), Protocol: 6, Port: 80,
				AsAddress: addrMsg("10.0.0.2"), Weight: 0}},
			cliDialct: []api.Message{cli("lb as 192.0.2.10/32 protocol tcp port 80 10.0.0.2 del")},
		},
		{
			name: "flush",
			do:   reweigh(0, true),
			binapi: []api.Message{&lbapi.LbAsSetWeight{Pfx: pfxMsg("192.0.2.10/32"), Protocol: 6, Port: 80,
				AsAddress: addrMsg("10.0.0.2"), Weight: 0, IsFlush: true}},
			cliDialct: []api.Message{cli("lb as 192.0.2.10/32 protocol tcp port 80 10.0.0.2 del flush")},
		},
		{
			name: "set weight (CLI cannot express it and sends nothing)",
			do:   reweigh(25, false),
			binapi: []api.Message{&lbapi.LbAsSetWeight{Pfx: pfxMsg("192.0.2.10/32"), Protocol: 6, Port: 80,
				AsAddress: addrMsg("10.0.0.2"), Weight: 25}},
			cliDialct: nil,
		},
		{
			name: "delete vip: backends flushed first, then the vip with explicit table length",
			do:   func(ctx context.Context, g *Govpp) error { return g.RemoveVIP(ctx, k80) },
			binapi: []api.Message{
				&lbapi.LbAddDelAsV2{Pfx: pfxMsg("192.0.2.10/32"), Protocol: 6, Port: 80, AsAddress: addrMsg("10.0.0.1"), IsDel: true, IsFlush: true},
				&lbapi.LbAddDelAsV2{Pfx: pfxMsg("192.0.2.10/32"), Protocol: 6, Port: 80, AsAddress: addrMsg("10.0.0.2"), IsDel: true, IsFlush: true},
				vipMsg(lb.LbAddDelVipV2{Pfx: pfxMsg("192.0.2.10/32"), Protocol: 6, Port: 80, Encap: lb_types.LB_API_ENCAP_TYPE_GRE4,
					Type: lb_types.LB_API_SRV_TYPE_CLUSTERIP, NewFlowsTableLength: 1024, IsDel: true}),
			},
			cliDialct: []api.Message{
				cli("lb as 192.0.2.10/32 protocol tcp port 80 10.0.0.1 del flush"),
				cli("lb as 192.0.2.10/32 protocol tcp port 80 10.0.0.2 del flush"),
				cli("lb vip 192.0.2.10/32 protocol tcp port 80 del"),
			},
		},
	}
	for _, d := range []struct {
		name   string
		minor  uint32
		actual string
	}{{DialectBinAPI, 2, showOneASMastr}, {DialectCLI, 1, showOneASReleased}} {
		t.Run(d.name, func(t *testing.T) {
			g, mv := startMock(t, d.minor)
			if got := g.State().Dialect; got != d.name {
				t.Fatalf("dialect %q, want %q", got, d.name)
			}
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					show := d.actual
					if tc.create {
						show = showEmpty
					}
					mv.script(show, 0, "")
					if err := tc.do(context.Background(), g); err != nil {
						t.Fatal(err)
					}
					want := tc.binapi
					if d.name == DialectCLI {
						want = tc.cliDialct
					}
					got := mv.recorded()
					if len(got) != len(want) {
						t.Fatalf("sent %d requests, want %d:\n got %+v\nwant %+v", len(got), len(want), got, want)
					}
					for i := range want {
						if !reflect.DeepEqual(got[i], want[i]) {
							t.Fatalf("request %d:\n got %T %+v\nwant %T %+v", i, got[i], got[i], want[i], want[i])
						}
					}
				})
			}
		})
	}
}

// TestMockErrors checks the mapping of VPP's refusals onto our sentinels.
func TestMockErrors(t *testing.T) {
	k80 := VIPKey{Prefix: p("192.0.2.10/32"), Protocol: ProtoTCP, Port: 80}
	tests := []struct {
		retval   int32
		cliReply string
		want     error
	}{
		{-81, "lb_vip_add error -81", ErrExists},
		{-6, "lb_vip_find_index error -6", ErrNotFound},
		{-73, "lb_vip_add error -73", ErrInvalid},
		{-97, "lb_vip_add_ass error -97", ErrInvalid},
		{-70, "lb_vip_add error -70", ErrInvalid},
	}
	for _, d := range []struct {
		name  string
		minor uint32
	}{{DialectBinAPI, 2}, {DialectCLI, 1}} {
		t.Run(d.name, func(t *testing.T) {
			g, mv := startMock(t, d.minor)
			for i, tc := range tests {
				mv.script(showEmpty, tc.retval, tc.cliReply)
				k := k80
				k.Port += uint16(i)
				_, err := g.SyncVIP(context.Background(), VIP{Key: k})
				if !errors.Is(err, tc.want) {
					t.Errorf("retval %d / %q: error %v, want %v", tc.retval, tc.cliReply, err, tc.want)
				}
				var ve api.VPPApiError
				if d.name == DialectBinAPI && (!errors.As(err, &ve) || int32(ve) != tc.retval) {
					t.Errorf("retval %d: VPP error not kept in %v", tc.retval, err)
				}
			}
			// A VIP VPP refused as existing or invalid is not kept for
			// re-pushes (the NO_SUCH_ENTRY one is).
			g.mu.Lock()
			n := len(g.desired)
			g.mu.Unlock()
			if n != 1 {
				t.Fatalf("%d refused VIPs kept as desired, want 1", n)
			}
			if c := g.Telemetry().Calls[CallKey{Msg: "lb_add_del_vip_v2", Result: "vpp_error"}]; d.name == DialectBinAPI && c != uint64(len(tests)) {
				t.Fatalf("telemetry counted %d vpp errors", c)
			}
		})
	}
}
