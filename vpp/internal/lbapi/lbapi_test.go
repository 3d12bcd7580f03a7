package lbapi

import (
	"bytes"
	"encoding/hex"
	"reflect"
	"strings"
	"testing"

	"go.fd.io/govpp/api"
	"go.fd.io/govpp/binapi/ip_types"
	"go.fd.io/govpp/codec"
)

func mustPfx(s string) ip_types.AddressWithPrefix {
	p, err := ip_types.ParseAddressWithPrefix(s)
	if err != nil {
		panic(err)
	}
	return p
}

func mustAddr(s string) ip_types.Address {
	a, err := ip_types.ParseAddress(s)
	if err != nil {
		panic(err)
	}
	return a
}

// hexOf joins hex fragments so the expected layouts read field by field.
func hexOf(parts ...string) []byte {
	b, err := hex.DecodeString(strings.Join(parts, ""))
	if err != nil {
		panic(err)
	}
	return b
}

const (
	v4vip  = "00" + "c000020a000000000000000000000000" + "20" // af=ip4, 192.0.2.10, len 32
	v4as   = "00" + "0a000005000000000000000000000000"        // af=ip4, 10.0.0.5
	v6as   = "01" + "20010db8000000000000000000000005"        // af=ip6, 2001:db8::5
	zeroPf = "00" + "00000000000000000000000000000000" + "00"
)

func TestWireLayouts(t *testing.T) {
	tests := []struct {
		name string
		msg  api.Message
		want []byte
	}{
		{"lb_add_del_as_v2 add", &LbAddDelAsV2{Pfx: mustPfx("192.0.2.10/32"), Protocol: 6, Port: 80, AsAddress: mustAddr("10.0.0.5"), Weight: 100},
			hexOf(v4vip, "06", "0050", v4as, "64", "00", "00")},
		{"lb_add_del_as_v2 del flush", &LbAddDelAsV2{Pfx: mustPfx("192.0.2.10/32"), Protocol: 255, AsAddress: mustAddr("2001:db8::5"), IsDel: true, IsFlush: true},
			hexOf(v4vip, "ff", "0000", v6as, "00", "01", "01")},
		{"lb_as_set_weight", &LbAsSetWeight{Pfx: mustPfx("192.0.2.10/32"), Protocol: 17, Port: 53, AsAddress: mustAddr("10.0.0.5"), Weight: 7, IsFlush: true},
			hexOf(v4vip, "11", "0035", v4as, "07", "01")},
		{"lb_as_v2_dump all", &LbAsV2Dump{}, hexOf(zeroPf, "00", "0000")},
		{"lb_as_v2_details", &LbAsV2Details{VipPfx: mustPfx("192.0.2.10/32"), VipProtocol: 6, VipPort: 443, AppSrv: mustAddr("10.0.0.5"),
			Flags: 1, InUseSince: 0x01020304, Weight: 50, NumBuckets: 512},
			hexOf(v4vip, "06", "01bb", v4as, "01", "01020304", "32", "00000200")},
		{"lb_conf_get", &LbConfGet{}, nil},
		{"lb_conf_get_reply", &LbConfGetReply{Retval: -1, IP4SrcAddress: ip_types.IP4Address{192, 0, 2, 1},
			IP6SrcAddress: ip_types.IP6Address{0x20, 0x01, 0x0d, 0xb8, 15: 1}, StickyBucketsPerCore: 65536, FlowTimeout: 40},
			hexOf("ffffffff", "c0000201", "20010db8000000000000000000000001", "00010000", "00000028")},
		{"lb_add_del_as_v2_reply", &LbAddDelAsV2Reply{Retval: -81}, hexOf("ffffffaf")},
		{"lb_as_set_weight_reply", &LbAsSetWeightReply{Retval: -6}, hexOf("fffffffa")},
		{"control_ping_reply", &ControlPingReply{Retval: 0, ClientIndex: 3, VpePID: 77}, hexOf("00000000", "00000003", "0000004d")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			enc, err := codec.DefaultCodec.EncodeMsg(tc.msg, 0x1234)
			if err != nil {
				t.Fatal(err)
			}
			off := 6
			if tc.msg.GetMessageType() == api.RequestMessage {
				off = 10
			}
			if enc[0] != 0x12 || enc[1] != 0x34 {
				t.Fatalf("message id bytes % x", enc[:2])
			}
			if got := enc[off:]; !bytes.Equal(got, tc.want) {
				t.Fatalf("payload\n got %x\nwant %x", got, tc.want)
			}
			back := reflect.New(reflect.TypeOf(tc.msg).Elem()).Interface().(api.Message)
			if err := codec.DefaultCodec.DecodeMsg(enc, back); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back, tc.msg) {
				t.Fatalf("decode\n got %+v\nwant %+v", back, tc.msg)
			}
		})
	}
}

func TestRegistered(t *testing.T) {
	want := map[string]string{
		"lb_conf_get": "51077d14", "lb_conf_get_reply": "923427ac",
		"lb_add_del_as_v2": "2f1d3b0e", "lb_add_del_as_v2_reply": "e8d4e804",
		"lb_as_set_weight": "2d89bdbd", "lb_as_set_weight_reply": "e8d4e804",
		"lb_as_v2_dump": "1063f819", "lb_as_v2_details": "90064aae",
		"control_ping": "51077d14", "control_ping_reply": "f6b0b8ca",
	}
	reg := api.GetRegisteredMessages()["github.com/octavia-vpp/health/vpp/internal"]
	if len(reg) < len(want) {
		t.Fatalf("registered under our tree: %d messages", len(reg))
	}
	for name, crc := range want {
		if _, ok := reg[name+"_"+crc]; !ok {
			t.Errorf("%s_%s not registered", name, crc)
		}
	}
}
