package vpp

import (
	"errors"
	"net/netip"
	"reflect"
	"testing"
)

var (
	a = netip.MustParseAddr
	p = netip.MustParsePrefix
)

func TestPlanSync(t *testing.T) {
	key := VIPKey{Prefix: p("192.0.2.10/32"), Protocol: ProtoTCP, Port: 80}
	base := VIP{Key: key, FlowTableLength: 1024}
	with := func(bs ...Backend) VIP { v := base; v.Backends = bs; return v }
	have := func(bs ...BackendStatus) *VIPStatus {
		return &VIPStatus{Key: key, FlowTableLength: 1024, Backends: bs}
	}
	be := func(s string, w uint8) Backend { return Backend{Addr: a(s), Weight: w} }
	bs := func(s string, w uint8, active bool) BackendStatus {
		return BackendStatus{Addr: a(s), Weight: w, Active: active}
	}
	tests := []struct {
		name     string
		want     VIP
		have     *VIPStatus
		weighted bool
		ops      []op
		res      SyncResult
	}{
		{"create weighted, weight 0 backend is added too",
			with(be("10.0.0.1", 100), be("10.0.0.2", 0)), nil, true,
			[]op{{kind: opAddVIP}, {kind: opAddAS, addr: a("10.0.0.1"), weight: 100}, {kind: opAddAS, addr: a("10.0.0.2")}},
			SyncResult{Created: true, Added: 2}},
		{"create unweighted skips weight 0",
			with(be("10.0.0.1", 100), be("10.0.0.2", 0)), nil, false,
			[]op{{kind: opAddVIP}, {kind: opAddAS, addr: a("10.0.0.1"), weight: 100}},
			SyncResult{Created: true, Added: 1}},
		{"no-op weighted",
			with(be("10.0.0.1", 100), be("10.0.0.2", 0)), have(bs("10.0.0.1", 100, true), bs("10.0.0.2", 0, true)), true,
			nil, SyncResult{}},
		{"no-op unweighted: any non-zero weight is in service",
			with(be("10.0.0.1", 30), be("10.0.0.2", 0)), have(bs("10.0.0.1", 100, true), bs("10.0.0.2", 0, false)), false,
			nil, SyncResult{}},
		{"unweighted: weight 0 never added is left alone",
			with(be("10.0.0.1", 100), be("10.0.0.2", 0)), have(bs("10.0.0.1", 100, true)), false,
			nil, SyncResult{}},
		{"weighted: add, reweight, flush to 0, remove, revive",
			with(Backend{Addr: a("10.0.0.1"), Weight: 0, Flush: true}, be("10.0.0.2", 50), be("10.0.0.3", 100), be("10.0.0.5", 10)),
			have(bs("10.0.0.1", 100, true), bs("10.0.0.2", 100, true), bs("10.0.0.4", 100, true), bs("10.0.0.5", 0, false), bs("10.0.0.6", 100, false)), true,
			[]op{
				{kind: opSetWeight, addr: a("10.0.0.1"), weight: 0, flush: true},
				{kind: opSetWeight, addr: a("10.0.0.2"), weight: 50},
				{kind: opAddAS, addr: a("10.0.0.3"), weight: 100},
				{kind: opAddAS, addr: a("10.0.0.5"), weight: 10},
				{kind: opDelAS, addr: a("10.0.0.4"), flush: true},
			},
			SyncResult{Added: 1, Reweighted: 3, Removed: 1}},
		{"weighted: drained backend still holding flows is flushed when asked",
			with(Backend{Addr: a("10.0.0.1"), Weight: 0, Flush: true}, Backend{Addr: a("10.0.0.2"), Weight: 0, Flush: true}),
			have(BackendStatus{Addr: a("10.0.0.1"), Active: true, Flows: 3}, BackendStatus{Addr: a("10.0.0.2"), Active: true}), true,
			[]op{{kind: opSetWeight, addr: a("10.0.0.1"), weight: 0, flush: true}},
			SyncResult{Reweighted: 1}},
		{"unweighted: removed backend still holding flows is flushed when asked",
			with(Backend{Addr: a("10.0.0.1"), Weight: 0, Flush: true}, be("10.0.0.2", 0)),
			have(BackendStatus{Addr: a("10.0.0.1"), Flows: 3}, BackendStatus{Addr: a("10.0.0.2"), Flows: 3}), false,
			[]op{{kind: opDelAS, addr: a("10.0.0.1"), flush: true}},
			SyncResult{Reweighted: 1}},
		{"flush only applies on the change to 0",
			with(Backend{Addr: a("10.0.0.1"), Weight: 20, Flush: true}), have(bs("10.0.0.1", 10, true)), true,
			[]op{{kind: opSetWeight, addr: a("10.0.0.1"), weight: 20}},
			SyncResult{Reweighted: 1}},
		{"unweighted: drain softly, drain hard, revive, add, remove",
			with(be("10.0.0.1", 0), Backend{Addr: a("10.0.0.2"), Flush: true}, be("10.0.0.3", 100), be("10.0.0.5", 1)),
			have(bs("10.0.0.1", 100, true), bs("10.0.0.2", 100, true), bs("10.0.0.3", 0, false), bs("10.0.0.4", 100, true)), false,
			[]op{
				{kind: opDelAS, addr: a("10.0.0.1")},
				{kind: opDelAS, addr: a("10.0.0.2"), flush: true},
				{kind: opAddAS, addr: a("10.0.0.3"), weight: 100},
				{kind: opAddAS, addr: a("10.0.0.5"), weight: 1},
				{kind: opDelAS, addr: a("10.0.0.4"), flush: true},
			},
			SyncResult{Added: 1, Reweighted: 3, Removed: 1}},
		{"sticky change recreates, IPv4 removals before IPv6",
			func() VIP { v := with(be("10.0.0.1", 100)); v.SrcIPSticky = true; return v }(),
			have(bs("10.0.0.1", 100, true), bs("10.0.0.9", 100, false), bs("10.0.0.0", 100, true)), true,
			[]op{
				{kind: opDelAS, addr: a("10.0.0.0"), flush: true},
				{kind: opDelAS, addr: a("10.0.0.1"), flush: true},
				{kind: opDelVIP}, {kind: opAddVIP},
				{kind: opAddAS, addr: a("10.0.0.1"), weight: 100},
			},
			SyncResult{Recreated: true, Added: 1}},
		{"flow table length change recreates",
			func() VIP { v := with(); v.FlowTableLength = 4096; return v }(), have(), false,
			[]op{{kind: opDelVIP}, {kind: opAddVIP}}, SyncResult{Recreated: true}},
		{"encap change recreates",
			func() VIP { v := with(); v.Encap = EncapL3DSR; return v }(), have(), false,
			[]op{{kind: opDelVIP}, {kind: opAddVIP}}, SyncResult{Recreated: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want, err := tc.want.Validate()
			if err != nil {
				t.Fatal(err)
			}
			ops, res := planSync(want, tc.have, tc.weighted)
			if !reflect.DeepEqual(ops, tc.ops) {
				t.Fatalf("ops\n got %v\nwant %v", ops, tc.ops)
			}
			if res != tc.res {
				t.Fatalf("result got %+v want %+v", res, tc.res)
			}
			if res.Changed() != (len(ops) > 0) {
				t.Fatalf("Changed()=%v with %d ops", res.Changed(), len(ops))
			}
		})
	}
}

func TestValidate(t *testing.T) {
	k := VIPKey{Prefix: p("192.0.2.10/32"), Protocol: ProtoTCP, Port: 80}
	k6 := VIPKey{Prefix: p("2001:db8::10/128")}
	tests := []struct {
		name string
		v    VIP
		ok   bool
	}{
		{"minimal", VIP{Key: k}, true},
		{"all-port v6 gre6 with v6 backend", VIP{Key: k6, Encap: EncapGRE6, Backends: []Backend{{Addr: a("2001:db8:1::1")}}}, true},
		{"v6 VIP gre4 v4 backend", VIP{Key: k6, Backends: []Backend{{Addr: a("10.0.0.1")}}}, true},
		{"invalid prefix", VIP{}, false},
		{"4in6 prefix", VIP{Key: VIPKey{Prefix: p("::ffff:192.0.2.1/128")}}, false},
		{"per-port needs tcp/udp", VIP{Key: VIPKey{Prefix: k.Prefix, Protocol: 1, Port: 80}}, false},
		{"bad encap", VIP{Key: k, Encap: 9}, false},
		{"l3dsr on v6", VIP{Key: k6, Encap: EncapL3DSR}, false},
		{"l3dsr dscp 64", VIP{Key: k, Encap: EncapL3DSR, DSCP: 64}, false},
		{"dscp without l3dsr", VIP{Key: k, DSCP: 1}, false},
		{"nat4 on all-port", VIP{Key: VIPKey{Prefix: k.Prefix}, Encap: EncapNAT4}, false},
		{"nat6 on v4", VIP{Key: k, Encap: EncapNAT6}, false},
		{"target port without nat", VIP{Key: k, TargetPort: 8080}, false},
		{"table length not pow2", VIP{Key: k, FlowTableLength: 1000}, false},
		{"wrong backend family", VIP{Key: k, Backends: []Backend{{Addr: a("2001:db8::1")}}}, false},
		{"weight 101", VIP{Key: k, Backends: []Backend{{Addr: a("10.0.0.1"), Weight: 101}}}, false},
		{"duplicate backend", VIP{Key: k, Backends: []Backend{{Addr: a("10.0.0.1")}, {Addr: a("10.0.0.1")}}}, false},
		{"zoned backend", VIP{Key: k6, Encap: EncapGRE6, Backends: []Backend{{Addr: a("fe80::1%eth0")}}}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.v.Validate()
			if (err == nil) != tc.ok {
				t.Fatalf("err=%v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			if err == nil && got.FlowTableLength == 0 {
				t.Fatal("flow table length left at 0")
			}
		})
	}
	v, _ := VIP{Key: VIPKey{Prefix: p("192.0.2.10/24"), Protocol: ProtoTCP},
		Backends: []Backend{{Addr: a("10.0.0.9")}, {Addr: a("10.0.0.1")}}}.Validate()
	if v.Key.Prefix != p("192.0.2.0/24") || v.Key.Protocol != ProtoAny || v.Backends[0].Addr != a("10.0.0.1") {
		t.Fatalf("not normalised: %+v", v)
	}
	nat, _ := VIP{Key: k, Encap: EncapNAT4}.Validate()
	if nat.TargetPort != 80 {
		t.Fatalf("nat target port default: %d", nat.TargetPort)
	}
}

func TestConfDefaults(t *testing.T) {
	c, err := ValidateConf(Conf{IP4Src: a("192.0.2.1")})
	if err != nil {
		t.Fatal(err)
	}
	if c.StickyBucketsPerWorker != 1024 || c.FlowTimeout != DefaultFlowTimeout || c.IP6Src != netip.IPv6Unspecified() {
		t.Fatalf("defaults: %+v", c)
	}
	for _, bad := range []Conf{
		{IP4Src: a("2001:db8::1")},
		{IP6Src: a("192.0.2.1")},
		{StickyBucketsPerWorker: 1000},
		{FlowTimeout: 1500 * 1e6},
	} {
		if _, err := ValidateConf(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v: err %v", bad, err)
		}
	}
}
