package agent

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/octavia-vpp/health/vpp"
)

func TestExampleLBDescriptionIsValid(t *testing.T) {
	lb, err := LoadLB("../etc/amphora-lb.json", vpp.EncapGRE4)
	if err != nil {
		t.Fatal(err)
	}
	if len(lb.Listeners) != 2 || len(lb.Pools) != 2 || len(lb.VIPs()) != 1 {
		t.Errorf("parsed %+v", lb)
	}
	m := lb.Pools[0].Members[4]
	if a, p := m.ProbeTarget(); a.String() != "10.0.2.15" || p != 9090 {
		t.Errorf("monitor override: %v %d", a, p)
	}
	if a, p := lb.Pools[0].Members[0].ProbeTarget(); a.String() != "10.0.1.11" || p != 8080 {
		t.Errorf("probe target: %v %d", a, p)
	}
	hm := lb.Pools[1].HealthMonitor
	if hm.Rise() != 3 || hm.Fall() != 3 || hm.Intervals() != (Intervals{Delay: 10 * time.Second, Fast: 5 * time.Second, Down: 20 * time.Second}) {
		t.Errorf("monitor defaults: rise %d fall %d %+v", hm.Rise(), hm.Fall(), hm.Intervals())
	}
}

const validLB = `{"loadbalancer_id": "lb", "vip_addresses": ["192.0.2.10"],
 "listeners": [{"id": "l1", "protocol": "TCP", "protocol_port": 80, "default_pool_id": "p1"}],
 "pools": [{"id": "p1", "members": [{"id": "m1", "address": "10.0.0.1", "protocol_port": 80}],
   "healthmonitor": {"type": "TCP", "delay": 5, "timeout": 3, "max_retries": 2}}]}`

func TestParseLBErrors(t *testing.T) {
	for _, c := range []struct {
		name  string
		json  string
		parse bool     // a ParseError (exit 1); otherwise a SemanticError (exit 2)
		want  []string // substrings of the error
	}{
		{"not json", `{"loadbalancer_id": `, true, nil},
		{"trailing data", validLB + `{}`, true, []string{"trailing"}},
		{"unknown field", `{"loadbalancer_id": "lb", "vips": []}`, true, []string{"vips"}},
		{"wrong type", `{"loadbalancer_id": 5}`, true, nil},
		{"empty", `{}`, false, []string{"loadbalancer_id is empty", "vip_addresses is empty"}},
		{"bad vip", strings.Replace(validLB, "192.0.2.10", "192.0.2.300", 1), false, []string{"192.0.2.300"}},
		{"unknown pool", strings.Replace(validLB, `"default_pool_id": "p1"`, `"default_pool_id": "p9"`, 1), false, []string{"p9 is not a pool"}},
		{"sctp", strings.Replace(validLB, `"TCP", "protocol_port"`, `"SCTP", "protocol_port"`, 1), false, []string{"SCTP"}},
		{"bad weight", strings.Replace(validLB, `"protocol_port": 80}]`, `"protocol_port": 80, "weight": 300}]`, 1), false, []string{"weight 300"}},
		{"bad monitor", strings.Replace(validLB, `"type": "TCP"`, `"type": "SMTP"`, 1), false, []string{"SMTP"}},
		{"bad rise", strings.Replace(validLB, `"max_retries": 2`, `"max_retries": 0`, 1), false, []string{"max_retries 0"}},
		{"wrong family for gre4", strings.Replace(validLB, `"10.0.0.1"`, `"2001:db8::1"`, 1), false, []string{"wrong family"}},
		{"persistence", strings.Replace(validLB, `"members"`, `"session_persistence": {"type": "HTTP_COOKIE"}, "members"`, 1), false, []string{"HTTP_COOKIE"}},
		{"bad expected codes", strings.Replace(validLB, `"type": "TCP"`, `"type": "HTTP", "expected_codes": "2xx"`, 1), false, []string{"expected_codes"}},
	} {
		_, err := ParseLB([]byte(c.json), vpp.EncapGRE4)
		var pe *ParseError
		var se *SemanticError
		switch {
		case err == nil:
			t.Errorf("%s: no error", c.name)
			continue
		case c.parse && !errors.As(err, &pe):
			t.Errorf("%s: %v is not a parse error", c.name, err)
		case !c.parse && !errors.As(err, &se):
			t.Errorf("%s: %v is not a semantic error", c.name, err)
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q does not mention %q", c.name, err, w)
			}
		}
	}
	if _, err := ParseLB([]byte(validLB), vpp.EncapGRE4); err != nil {
		t.Errorf("valid: %v", err)
	}
}

func TestExpectedCodes(t *testing.T) {
	for _, c := range []struct {
		spec string
		pass []int
		fail []int
	}{
		{"", []int{200}, []int{201, 500}},
		{"200,202", []int{200, 202}, []int{201}},
		{"200-204", []int{200, 203, 204}, []int{199, 205}},
		{"200, 301-302", []int{200, 301, 302}, []int{303}},
	} {
		ok, err := ExpectedCodes(c.spec)
		if err != nil {
			t.Fatalf("%q: %v", c.spec, err)
		}
		for _, code := range c.pass {
			if !ok(code) {
				t.Errorf("%q rejects %d", c.spec, code)
			}
		}
		for _, code := range c.fail {
			if ok(code) {
				t.Errorf("%q accepts %d", c.spec, code)
			}
		}
	}
	for _, bad := range []string{"2xx", "204-200", "99", "200-", "600"} {
		if _, err := ExpectedCodes(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
