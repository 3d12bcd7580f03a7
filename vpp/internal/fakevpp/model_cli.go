package fakevpp

import (
	"errors"
	"net/netip"
	"strconv"
	"strings"

	"github.com/octavia-vpp/health/vpp/internal/lbcli"
)

// The CLI side of the model: `lb ...` and `show lb vips` commands parsed
// into model calls, answered with VPP's text.

// cli runs one CLI command against the model and returns its text.
func (m *Model) cli(cmd string) string {
	f := strings.Fields(cmd)
	switch {
	case strings.Join(f, " ") == lbcli.ShowVIPsCmd:
		return m.show()
	case len(f) >= 2 && f[0] == "lb" && f[1] == "conf":
		return m.cliConf(f[2:])
	case len(f) >= 3 && f[0] == "lb" && f[1] == "vip":
		return m.cliVIP(f[2:])
	case len(f) >= 3 && f[0] == "lb" && f[1] == "as":
		return m.cliAS(f[2:])
	}
	return "unknown input `" + cmd + "'"
}

func (m *Model) cliConf(f []string) string {
	ip4, ip6, b, t := m.conf.ip4, m.conf.ip6, m.conf.buckets, m.conf.expiry
	for i := 0; i+1 < len(f); i += 2 {
		var err error
		switch f[i] {
		case "ip4-src-address":
			ip4, err = netip.ParseAddr(f[i+1])
		case "ip6-src-address":
			ip6, err = netip.ParseAddr(f[i+1])
		case "buckets":
			b, err = parseU32(f[i+1])
		case "timeout":
			t, err = parseU32(f[i+1])
		default:
			err = errors.New("x")
		}
		if err != nil {
			return "parse error: '" + strings.Join(f[i:], " ") + "'"
		}
	}
	m.gc()
	if rv := m.setConf(ip4, ip6, b, t); rv != 0 {
		return "lb_conf error " + strconv.Itoa(rv)
	}
	return ""
}

func parseU32(s string) (uint32, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	return uint32(n), err
}

// cliKeyArgs parses "<prefix> [protocol tcp|udp] [port N]" plus the rest.
func cliKeyArgs(f []string) (Key, []string, error) {
	p, err := netip.ParsePrefix(f[0])
	if err != nil {
		return Key{}, nil, err
	}
	k := Key{Prefix: p}
	var rest []string
	for i := 1; i < len(f); i++ {
		switch {
		case f[i] == "protocol" && i+1 < len(f) && (f[i+1] == "tcp" || f[i+1] == "udp"):
			k.Protocol = 6
			if f[i+1] == "udp" {
				k.Protocol = 17
			}
			i++
		case f[i] == "port" && i+1 < len(f):
			n, err := strconv.ParseUint(f[i+1], 10, 16)
			if err != nil {
				return Key{}, nil, err
			}
			k.Port = uint16(n)
			i++
		default:
			rest = append(rest, f[i])
		}
	}
	return k, rest, nil
}

func (m *Model) cliVIP(f []string) string {
	k, rest, err := cliKeyArgs(f)
	if err != nil {
		return "invalid vip prefix: '" + strings.Join(f, " ") + "'"
	}
	a := VIPArgs{Key: k, Encap: "gre4", NewLen: 1024}
	del := false
	for i := 0; i < len(rest); i++ {
		var err error
		switch rest[i] {
		case "del":
			del = true
		case "src_ip_sticky":
			a.Sticky = true
		case "encap":
			i++
			if i < len(rest) {
				a.Encap = rest[i]
			}
		case "new_len":
			i++
			if i < len(rest) {
				a.NewLen, err = parseU32(rest[i])
			}
		case "dscp":
			i++
			if i < len(rest) {
				var d uint32
				d, err = parseU32(rest[i])
				a.DSCP = uint8(d)
			}
		case "type":
			i++
		case "target_port":
			i++
			if i < len(rest) {
				var tp uint32
				tp, err = parseU32(rest[i])
				a.TargetPort = uint16(tp)
			}
		default:
			err = errors.New("x")
		}
		if err != nil {
			return "parse error: '" + strings.Join(rest[i:], " ") + "'"
		}
	}
	if del {
		if rv := m.delVIP(k); rv != 0 {
			return "lb_vip_find_index error " + strconv.Itoa(rv)
		}
		return ""
	}
	idx, rv := m.addVIP(a)
	if rv != 0 {
		return "lb_vip_add error " + strconv.Itoa(rv)
	}
	return "lb_vip_add ok " + strconv.Itoa(idx)
}

func (m *Model) cliAS(f []string) string {
	k, rest, err := cliKeyArgs(f)
	if err != nil {
		return "invalid as address: '" + strings.Join(f, " ") + "'"
	}
	var addrs []netip.Addr
	del, flush := false, false
	for _, w := range rest {
		switch w {
		case "del":
			del = true
		case "flush":
			flush = true
		default:
			a, err := netip.ParseAddr(w)
			if err != nil {
				return "parse error: '" + w + "'"
			}
			addrs = append(addrs, a)
		}
	}
	if _, v := m.find(k); v == nil {
		return "lb_vip_find_index error " + strconv.Itoa(errNoSuchEntry)
	}
	if len(addrs) == 0 {
		return "No AS address provided"
	}
	m.gc()
	for _, a := range addrs {
		if del {
			if rv := m.delAS(k, a, flush); rv != 0 {
				return "lb_vip_del_ass error " + strconv.Itoa(rv)
			}
		} else if rv := m.addAS(k, a, 100); rv != 0 {
			return "lb_vip_add_ass error " + strconv.Itoa(rv)
		}
	}
	return ""
}
