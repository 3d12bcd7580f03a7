package lbcli

import (
	"net/netip"
	"os"
	"reflect"
	"testing"
)

var (
	pfx  = netip.MustParsePrefix
	addr = netip.MustParseAddr
)

// golden holds what the two fixtures must parse to. The fixtures were
// written by hand from the format strings of format_lb_vip_detailed in
// VPP's lb.c (v26.06 and master).
var golden = []struct {
	file   string
	layout Layout
	want   []VIP
}{
	{
		file: "testdata/show_lb_vips_verbose_2606.txt", layout: Released,
		want: []VIP{
			{Index: 1, Type: "ip4-gre4", Prefix: pfx("192.0.2.10/32"), NewSize: 1024, Protocol: 6, Port: 80,
				Counters: [4]uint64{150000, 4242, 7, 3},
				ASes: []AS{
					{Addr: addr("10.0.0.5"), Weight: -1, Buckets: 512, Flows: 17, DPO: 14, Used: true},
					{Addr: addr("10.0.0.6"), Weight: -1, Buckets: 512, Flows: 9, DPO: 15, Used: true},
					{Addr: addr("10.0.0.7"), Weight: -1, Buckets: 0, Flows: 4, DPO: 16, Used: false},
				}},
			{Index: 2, Type: "ip4-gre4", Prefix: pfx("192.0.2.10/32"), SrcIPSticky: true, NewSize: 2048, Protocol: 17, Port: 53},
			{Index: 3, Type: "ip6-gre6", Prefix: pfx("2001:db8::10/128"), NewSize: 1024,
				Counters: [4]uint64{18446744073709551615, 1, 0, 0},
				ASes:     []AS{{Addr: addr("2001:db8:1::5"), Weight: -1, Buckets: 1024, Flows: 1, DPO: 21, Used: true}}},
			{Index: 4, Type: "ip4-l3dsr", Prefix: pfx("192.0.2.20/32"), NewSize: 1024, DSCP: 7,
				Counters: [4]uint64{10, 2, 0, 0},
				ASes:     []AS{{Addr: addr("10.0.1.5"), Weight: -1, Buckets: 1024, Flows: 2, DPO: 22, Used: true}}},
			{Index: 6, Type: "ip4-nat4", Prefix: pfx("192.0.2.30/32"), Removed: true, NewSize: 1024, Protocol: 6, Port: 443,
				NATType: "clusterip", TargetPort: 8080, Counters: [4]uint64{5, 1, 0, 0},
				ASes: []AS{{Addr: addr("10.0.2.5"), Weight: -1, DPO: 23}}},
		},
	},
	{
		file: "testdata/show_lb_vips_verbose_master.txt", layout: Master,
		want: []VIP{
			{Index: 1, Type: "ip4-gre4", Prefix: pfx("192.0.2.10/32"), SrcIPSticky: true, NewSize: 1024, Protocol: 6, Port: 80,
				Counters: [4]uint64{991, 37, 0, 12},
				ASes: []AS{
					{Addr: addr("10.0.0.5"), Weight: 100, Buckets: 683, Flows: 20, DPO: 14, Used: true},
					{Addr: addr("10.0.0.6"), Weight: 50, Buckets: 341, Flows: 11, DPO: 15, Used: true},
					{Addr: addr("10.0.0.7"), Weight: 0, Buckets: 0, Flows: 6, DPO: 16, Used: true},
				}},
			{Index: 5, Type: "ip6-gre4", Prefix: pfx("2001:db8::20/128"), NewSize: 4096, Protocol: 17, Port: 5353,
				ASes: []AS{{Addr: addr("10.0.3.5"), Weight: 100, DPO: 30}}},
			{Index: 7, Type: "ip6-nat6", Prefix: pfx("2001:db8::30/128"), NewSize: 1024, Protocol: 6, Port: 8443,
				NATType: "nodeport", TargetPort: 80, Counters: [4]uint64{3, 1, 0, 0},
				ASes: []AS{{Addr: addr("2001:db8:2::5"), Weight: 100, Buckets: 1024, Flows: 1, DPO: 31, Used: true}}},
		},
	},
}

func TestParseGolden(t *testing.T) {
	for _, g := range golden {
		t.Run(g.file, func(t *testing.T) {
			raw, err := os.ReadFile(g.file)
			if err != nil {
				t.Fatal(err)
			}
			got := ParseVIPs(string(raw))
			if !reflect.DeepEqual(got, g.want) {
				t.Fatalf("parse mismatch\n got %+v\nwant %+v", got, g.want)
			}
			// The renderer reproduces the fixture byte for byte, so the fakes
			// speak exactly the layout the parser was checked against.
			if r := Render(g.want, g.layout); r != string(raw) {
				t.Fatalf("render mismatch\n got %q\nwant %q", r, raw)
			}
		})
	}
}

func TestParseTolerance(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []VIP
	}{
		{"empty", "", nil},
		{"non-verbose output of old VPP is nothing", "\n", nil},
		{"body before any header is ignored", "  new_size:1024\n    10.0.0.1 1 buckets   0 flows  dpo:1 used\n", nil},
		{"unknown type is skipped with its body", " ip9-foo [3] 192.0.2.1/32\n  new_size:8\n", nil},
		{"unknown type after a good VIP does not leak its body into it",
			" ip4-gre4 [1] 192.0.2.1/32\n  new_size:8\n ip9-foo [3] 192.0.2.2/32\n  new_size:16\n    10.0.0.1 1 buckets   0 flows  dpo:1 used\n",
			[]VIP{{Index: 1, Type: "ip4-gre4", Prefix: pfx("192.0.2.1/32"), NewSize: 8}}},
		{"bad prefix skipped", " ip4-gre4 [3] 192.0.2.300/32\n  new_size:8\n", nil},
		{"index overflow skipped", " ip4-gre4 [99999999999] 192.0.2.1/32\n", nil},
		{"CRLF and unknown lines", " ip4-gre4 [3] 192.0.2.1/32\r\n  new_size:8\r\n  Vrf (ip table: 0 fib index: 0)\r\n  weird line\r\n",
			[]VIP{{Index: 3, Type: "ip4-gre4", Prefix: pfx("192.0.2.1/32"), NewSize: 8}}},
		{"counter overflow saturates", " ip4-gre4 [3] 192.0.2.1/32\n    first session packet: 99999999999999999999999\n",
			[]VIP{{Index: 3, Type: "ip4-gre4", Prefix: pfx("192.0.2.1/32"), Counters: [4]uint64{0, 1<<64 - 1, 0, 0}}}},
		{"bad AS address ignored", " ip4-gre4 [3] 192.0.2.1/32\n    10.0.0.x 1 buckets   0 flows  dpo:1 used\n",
			[]VIP{{Index: 3, Type: "ip4-gre4", Prefix: pfx("192.0.2.1/32")}}},
		{"API-created IPv4 VIP on old VPP shows as IPv6", " ip6-gre6 [1] ::/32\n  new_size:0\n",
			[]VIP{{Index: 1, Type: "ip6-gre6", Prefix: pfx("::/32")}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ParseVIPs(tc.in)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestRenderRoundTrip(t *testing.T) {
	for _, g := range golden {
		for _, layout := range []Layout{Released, Master} {
			want := g.want
			got := ParseVIPs(Render(want, layout))
			for i := range want {
				if layout == Released {
					for j := range got[i].ASes {
						got[i].ASes[j].Weight = want[i].ASes[j].Weight
					}
				} else {
					for j := range got[i].ASes {
						if want[i].ASes[j].Weight < 0 {
							got[i].ASes[j].Weight = -1
						}
					}
				}
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%s layout %d: round trip\n got %+v\nwant %+v", g.file, layout, got, want)
			}
		}
	}
}

func TestCommands(t *testing.T) {
	k80 := Key{Prefix: pfx("192.0.2.10/32"), Protocol: 6, Port: 80}
	kAll := Key{Prefix: pfx("2001:db8::10/128"), Protocol: 255}
	tests := []struct{ got, want string }{
		{ConfCmd(addr("192.0.2.1"), addr("2001:db8::1"), 65536, 40),
			"lb conf ip4-src-address 192.0.2.1 ip6-src-address 2001:db8::1 buckets 65536 timeout 40"},
		{AddVIPCmd(VIPArgs{Key: k80, Encap: "gre4", NewLen: 1024}),
			"lb vip 192.0.2.10/32 protocol tcp port 80 encap gre4 new_len 1024"},
		{AddVIPCmd(VIPArgs{Key: Key{Prefix: pfx("192.0.2.10/32"), Protocol: 17, Port: 53}, Encap: "gre4", NewLen: 2048, SrcIPSticky: true}),
			"lb vip 192.0.2.10/32 protocol udp port 53 encap gre4 new_len 2048 src_ip_sticky"},
		{AddVIPCmd(VIPArgs{Key: kAll, Encap: "gre6", NewLen: 1024}), "lb vip 2001:db8::10/128 encap gre6 new_len 1024"},
		{AddVIPCmd(VIPArgs{Key: Key{Prefix: pfx("192.0.2.20/32"), Protocol: 255}, Encap: "l3dsr", DSCP: 7, NewLen: 1024}),
			"lb vip 192.0.2.20/32 encap l3dsr dscp 7 new_len 1024"},
		{AddVIPCmd(VIPArgs{Key: Key{Prefix: pfx("192.0.2.30/32"), Protocol: 6, Port: 443}, Encap: "nat4", TargetPort: 8443, NewLen: 1024}),
			"lb vip 192.0.2.30/32 protocol tcp port 443 encap nat4 type clusterip target_port 8443 new_len 1024"},
		{DelVIPCmd(k80), "lb vip 192.0.2.10/32 protocol tcp port 80 del"},
		{AddASCmd(k80, addr("10.0.0.5")), "lb as 192.0.2.10/32 protocol tcp port 80 10.0.0.5"},
		{DelASCmd(k80, addr("10.0.0.5"), false), "lb as 192.0.2.10/32 protocol tcp port 80 10.0.0.5 del"},
		{DelASCmd(kAll, addr("2001:db8:1::5"), true), "lb as 2001:db8::10/128 2001:db8:1::5 del flush"},
		{FlushVIPCmd(k80), "lb flush vip 192.0.2.10/32 protocol tcp port 80"},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("got  %q\nwant %q", tc.got, tc.want)
		}
	}
}

func TestResult(t *testing.T) {
	tests := []struct {
		reply   string
		index   int64
		code    int
		wantErr bool
	}{
		{"", -1, 0, false},
		{"\n", -1, 0, false},
		{"lb_vip_add ok 7\n", 7, 0, false},
		{"lb_vip_add error -81\n", -1, -81, true},
		{"lb_vip_find_index error -6", -1, -6, true},
		{"lb_vip_add_ass error -97", -1, -97, true},
		{"parse error: 'bogus'", -1, 0, true},
		{"unknown input `lb vip'", -1, 0, true},
	}
	for _, tc := range tests {
		idx, code, err := Result(tc.reply)
		if idx != tc.index || code != tc.code || (err != nil) != tc.wantErr {
			t.Errorf("Result(%q) = %d, %d, %v; want %d, %d, err=%v", tc.reply, idx, code, err, tc.index, tc.code, tc.wantErr)
		}
	}
}

// FuzzParseVIPs checks that the parser never panics and that whatever it
// extracts survives a render/parse round trip in the master layout.
func FuzzParseVIPs(f *testing.F) {
	for _, g := range golden {
		raw, err := os.ReadFile(g.file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(raw))
	}
	f.Add(" ip4-nat4 [1] 1.2.3.4/32\n  type:clusterip port:1 target_port:2  counters:\n")
	f.Add(" ip6-gre6 [0] ::/0 removed src_ip_sticky\n    :: 0 buckets   0 flows  dpo:0  removed\n")
	f.Fuzz(func(t *testing.T, in string) {
		vips := ParseVIPs(in)
		for _, v := range vips {
			if !v.Prefix.IsValid() {
				t.Fatalf("invalid prefix parsed from %q", in)
			}
			for _, a := range v.ASes {
				if !a.Addr.IsValid() {
					t.Fatalf("invalid AS address parsed from %q", in)
				}
			}
		}
		again := ParseVIPs(Render(vips, Master))
		for i := range vips {
			for j := range vips[i].ASes {
				if vips[i].ASes[j].Weight < 0 {
					again[i].ASes[j].Weight = -1
				}
			}
			if vips[i].Port == 0 {
				// Render omits the protocol line of all-port VIPs.
				again[i].Protocol = vips[i].Protocol
			}
			if (vips[i].Type == "ip4-nat4" || vips[i].Type == "ip6-nat6") && vips[i].NATType == "" {
				again[i].NATType = ""
			}
			if vips[i].Type != "ip4-nat4" && vips[i].Type != "ip6-nat6" {
				again[i].TargetPort, again[i].NATType = vips[i].TargetPort, vips[i].NATType
			}
			if vips[i].Type != "ip4-l3dsr" {
				again[i].DSCP = vips[i].DSCP
			}
		}
		if len(vips) > 0 && !reflect.DeepEqual(vips, again) {
			t.Fatalf("round trip of %q\n got %+v\nwant %+v", in, again, vips)
		}
	})
}

func BenchmarkParseVIPs(b *testing.B) {
	var vips []VIP
	for i := range 100 {
		v := VIP{Index: uint32(i + 1), Type: "ip4-gre4", Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}), 32),
			NewSize: 1024, Protocol: 6, Port: 80}
		for j := range 8 {
			v.ASes = append(v.ASes, AS{Addr: netip.AddrFrom4([4]byte{10, 0, byte(i), byte(j)}), Weight: 100, Buckets: 128, Flows: 7, DPO: 3, Used: true})
		}
		vips = append(vips, v)
	}
	out := Render(vips, Master)
	b.SetBytes(int64(len(out)))
	b.ReportAllocs()
	for b.Loop() {
		if got := ParseVIPs(out); len(got) != 100 {
			b.Fatal(len(got))
		}
	}
}
