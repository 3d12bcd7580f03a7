package vpp

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"go.fd.io/govpp/api"
	"go.fd.io/govpp/binapi/lb"

	"github.com/octavia-vpp/health/vpp/internal/lbcli"
)

func TestSelectDialect(t *testing.T) {
	v := func(a, b, c uint32) *apiVersion { return &apiVersion{a, b, c} }
	missing := []string{"lb_as_set_weight_2d89bdbd"}
	tests := []struct {
		name    string
		mode    string
		ver     *apiVersion
		missing []string
		want    string
		reason  string
		err     bool
	}{
		{"released vpp", "auto", v(1, 1, 0), missing, DialectCLI, "messages missing", false},
		{"released vpp reporting 1.1.0 with all messages (impossible but safe)", "", v(1, 1, 0), nil, DialectCLI, "1.1.0 < 1.2.0", false},
		{"master", "auto", v(1, 2, 0), nil, DialectBinAPI, "lb API 1.2.0", false},
		{"newer minor", "", v(1, 3, 1), nil, DialectBinAPI, "lb API 1.3.1", false},
		{"newer major", "", v(2, 0, 0), nil, DialectBinAPI, "lb API 2.0.0", false},
		{"1.2.0 with changed CRCs", "auto", v(1, 2, 0), missing, DialectCLI, "but messages missing or changed", false},
		{"unknown version, messages present", "auto", nil, nil, DialectBinAPI, "version unknown", false},
		{"unknown version, messages missing", "auto", nil, missing, DialectCLI, "messages missing", false},
		{"forced cli on master", DialectCLI, v(1, 2, 0), nil, DialectCLI, "configured", false},
		{"forced binapi", DialectBinAPI, nil, nil, DialectBinAPI, "configured", false},
		{"forced binapi without messages", DialectBinAPI, v(1, 1, 0), missing, "", "", true},
		{"bogus mode", "grpc", nil, nil, "", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := selectDialect(tc.mode, tc.ver, tc.missing)
			if (err != nil) != tc.err {
				t.Fatalf("err %v", err)
			}
			if err != nil {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("error %v is not ErrInvalid", err)
				}
				return
			}
			if got.dialect != tc.want || !strings.Contains(got.reason, tc.reason) {
				t.Fatalf("got %+v, want %s (%q)", got, tc.want, tc.reason)
			}
		})
	}
}

func TestStatusOf(t *testing.T) {
	in := lbcli.VIP{Index: 4, Type: "ip6-gre4", Prefix: p("2001:db8::10/128"), SrcIPSticky: true, NewSize: 2048, Protocol: 17, Port: 53,
		ASes: []lbcli.AS{
			{Addr: a("10.0.0.9"), Weight: -1, Used: true, Flows: 2},
			{Addr: a("10.0.0.1"), Weight: -1, Used: false, Flows: 5},
		}}
	want := VIPStatus{Key: VIPKey{Prefix: p("2001:db8::10/128"), Protocol: ProtoUDP, Port: 53}, Encap: EncapGRE4, SrcIPSticky: true,
		FlowTableLength: 2048, Backends: []BackendStatus{
			{Addr: a("10.0.0.1"), Weight: 0, Active: false, Flows: 5},
			{Addr: a("10.0.0.9"), Weight: 100, Active: true, Flows: 2},
		}}
	if got := statusOf(in); !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	all := statusOf(lbcli.VIP{Type: "ip4-l3dsr", Prefix: p("192.0.2.1/32"), ASes: []lbcli.AS{{Addr: a("10.0.0.1"), Weight: 250, Used: true}}})
	if all.Key.Protocol != ProtoAny || all.Encap != EncapL3DSR || all.Backends[0].Weight != MaxWeight {
		t.Fatalf("all-port: %+v", all)
	}
}

func TestRetvalAndTransport(t *testing.T) {
	if err := retvalError(&lb.LbConfReply{Retval: -81}); !errors.Is(wrapVPP(err), ErrExists) {
		t.Fatalf("retval -81: %v", err)
	}
	if err := retvalError(&lb.LbConfReply{}); err != nil {
		t.Fatalf("retval 0: %v", err)
	}
	if err := retvalError(&lb.LbConf{}); err != nil {
		t.Fatalf("no retval field: %v", err)
	}
	tests := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{ErrNotConnected, true},
		{fmt.Errorf("x: %w", api.VPPApiError(-81)), false},
		{wrapVPP(api.VPPApiError(-6)), false},
		{fmt.Errorf("ping: %w", context.DeadlineExceeded), true},
		{errors.New("write unix @->/run/vpp/api.sock: write: broken pipe"), true},
		{errors.New("vpp cli: parse error: 'x'"), false},
	}
	for _, tc := range tests {
		if got := isTransport(tc.err); got != tc.want {
			t.Errorf("isTransport(%v) = %v", tc.err, got)
		}
	}
}
