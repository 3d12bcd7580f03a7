package agent

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/octavia-vpp/health/vpp"
)

// FuzzParseLB feeds arbitrary LB descriptions to ParseLB under every
// encap. A rejection must be a ParseError or a SemanticError; an accepted
// description must hold only what docs/agent-lb-config.md promises (ids
// unique, ports and weights in range, monitors whose probe periods and
// timeout are positive durations, expected codes that parse) and must
// survive a JSON round trip unchanged.
func FuzzParseLB(f *testing.F) {
	example, err := os.ReadFile("../etc/amphora-lb.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(example), uint8(0))
	f.Add(validLB, uint8(0))
	for _, s := range []string{
		strings.Replace(validLB, `"delay": 5`, `"delay": 1e-12`, 1),
		strings.Replace(validLB, `"delay": 5`, `"delay": 1e300`, 1),
		strings.Replace(validLB, `"timeout": 3`, `"timeout": 1e-300`, 1),
		strings.Replace(validLB, `"max_retries": 2`, `"max_retries": 2, "fast_delay": 1e-15, "down_delay": 9e18`, 1),
		strings.Replace(validLB, `"10.0.0.1"`, `"2001:db8::1"`, 1),
		strings.Replace(validLB, `"protocol_port": 80}]`, `"protocol_port": 80, "weight": 0, "monitor_address": "fe80::1%eth0", "monitor_port": 65535}]`, 1),
		strings.Replace(validLB, `"type": "TCP"`, `"type": "HTTP", "expected_codes": "200-204,301", "url_path": "/h", "http_method": "HEAD"`, 1),
		`{"loadbalancer_id": "lb", "vip_addresses": ["::ffff:1.2.3.4", "fe80::1%1"]}`,
		`{"loadbalancer_id": "lb", "vip_addresses": ["192.0.2.1"], "listeners": [{"id": "a", "protocol": "UDP", "protocol_port": 53}, {"id": "b", "protocol": "UDP", "protocol_port": 53}]}`,
	} {
		f.Add(s, uint8(0))
	}
	encaps := []vpp.Encap{vpp.EncapGRE4, vpp.EncapGRE6, vpp.EncapL3DSR, vpp.EncapNAT4, vpp.EncapNAT6}
	f.Fuzz(func(t *testing.T, text string, encapIndex uint8) {
		encap := encaps[int(encapIndex)%len(encaps)]
		lb, err := ParseLB([]byte(text), encap)
		if err != nil {
			var pe *ParseError
			var se *SemanticError
			if !errors.As(err, &pe) && !errors.As(err, &se) {
				t.Fatalf("error of type %T: %v", err, err)
			}
			if se != nil && len(se.Problems) == 0 {
				t.Fatal("a semantic error without problems")
			}
			return
		}
		checkAcceptedLB(t, lb)
		out, err := json.Marshal(lb)
		if err != nil {
			t.Fatalf("marshal accepted description: %v", err)
		}
		again, err := ParseLB(out, encap)
		if err != nil {
			t.Fatalf("re-encoded description rejected: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(lb, again) {
			t.Fatalf("round trip differs:\n%+v\n%+v", lb, again)
		}
	})
}

func checkAcceptedLB(t *testing.T, lb *LB) {
	t.Helper()
	if lb.ID == "" || len(lb.VIPs()) == 0 || len(lb.VIPs()) != len(lb.VIPAddresses) {
		t.Fatalf("accepted id %q with VIPs %v from %q", lb.ID, lb.VIPs(), lb.VIPAddresses)
	}
	for _, a := range lb.VIPs() {
		if !a.IsValid() || a.Zone() != "" || a.Is4In6() {
			t.Fatalf("accepted VIP %v", a)
		}
	}
	ids := map[string]bool{}
	for _, p := range lb.Pools {
		if p.ID == "" || ids["pool "+p.ID] {
			t.Fatalf("accepted pool id %q twice or empty", p.ID)
		}
		ids["pool "+p.ID] = true
		for i := range p.Members {
			m := &p.Members[i]
			if m.ID == "" || ids["member "+m.ID] {
				t.Fatalf("accepted member id %q twice or empty", m.ID)
			}
			ids["member "+m.ID] = true
			if !m.Addr().IsValid() || m.ProtocolPort < 1 || m.ProtocolPort > 65535 {
				t.Fatalf("accepted member %s at %v port %d", m.ID, m.Addr(), m.ProtocolPort)
			}
			if w := m.OctaviaWeight(); w < 0 || w > 256 || (w > 0) != (MapWeight(w) > 0) || MapWeight(w) > vpp.MaxWeight {
				t.Fatalf("accepted member %s weight %d (VPP %d)", m.ID, w, MapWeight(w))
			}
			if a, port := m.ProbeTarget(); !a.IsValid() || port < 1 || port > 65535 {
				t.Fatalf("member %s probes %v port %d", m.ID, a, port)
			}
		}
		if hm := p.HealthMonitor; hm != nil {
			iv := hm.Intervals()
			if iv.Delay <= 0 || iv.Fast <= 0 || iv.Down <= 0 || hm.ProbeTimeout() <= 0 {
				t.Fatalf("pool %s monitor: periods %+v, timeout %v from %+v", p.ID, iv, hm.ProbeTimeout(), *hm)
			}
			if hm.Rise() < 1 || hm.Rise() > 10 || hm.Fall() < 1 || hm.Fall() > 10 {
				t.Fatalf("pool %s monitor: rise %d, fall %d", p.ID, hm.Rise(), hm.Fall())
			}
			if hm.Type == MonitorHTTP || hm.Type == MonitorHTTPS {
				if _, err := ExpectedCodes(hm.ExpectedCodes); err != nil {
					t.Fatalf("pool %s monitor: %v", p.ID, err)
				}
			}
		}
	}
	used := map[string]bool{}
	for _, l := range lb.Listeners {
		if l.ID == "" || ids["listener "+l.ID] {
			t.Fatalf("accepted listener id %q twice or empty", l.ID)
		}
		ids["listener "+l.ID] = true
		proto, ok := VPPProtocol(l.Protocol)
		if !ok || l.ProtocolPort < 1 || l.ProtocolPort > 65535 {
			t.Fatalf("accepted listener %s: %s port %d", l.ID, l.Protocol, l.ProtocolPort)
		}
		key := proto.String() + "/" + strconv.Itoa(l.ProtocolPort)
		if used[key] {
			t.Fatalf("accepted two listeners on %s %d", l.Protocol, l.ProtocolPort)
		}
		used[key] = true
		if l.DefaultPoolID != "" && lb.Pool(l.DefaultPoolID) == nil {
			t.Fatalf("accepted listener %s with pool %s", l.ID, l.DefaultPoolID)
		}
	}
}
