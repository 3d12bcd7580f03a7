package lbcli

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Key selects a VIP on the CLI: prefix plus, for per-port VIPs, protocol
// (6 or 17) and port.
type Key struct {
	Prefix   netip.Prefix
	Protocol uint8
	Port     uint16
}

func (k Key) selector() string {
	s := k.Prefix.String()
	if k.Port != 0 {
		p := "tcp"
		if k.Protocol == 17 {
			p = "udp"
		}
		s += " protocol " + p + " port " + strconv.Itoa(int(k.Port))
	}
	return s
}

// VIPArgs are the arguments of `lb vip` when adding.
type VIPArgs struct {
	Key
	Encap       string // gre4, gre6, l3dsr, nat4, nat6
	DSCP        uint8  // l3dsr only
	TargetPort  uint16 // nat only
	NewLen      uint32 // always sent explicitly
	SrcIPSticky bool
}

// ConfCmd builds `lb conf`. Every value is explicit.
func ConfCmd(ip4, ip6 netip.Addr, buckets, timeoutSeconds uint32) string {
	return fmt.Sprintf("lb conf ip4-src-address %s ip6-src-address %s buckets %d timeout %d", ip4, ip6, buckets, timeoutSeconds)
}

// AddVIPCmd builds `lb vip ...` for an add.
func AddVIPCmd(a VIPArgs) string {
	var b strings.Builder
	b.WriteString("lb vip " + a.selector() + " encap " + a.Encap)
	switch a.Encap {
	case "l3dsr":
		b.WriteString(" dscp " + strconv.Itoa(int(a.DSCP)))
	case "nat4", "nat6":
		b.WriteString(" type clusterip target_port " + strconv.Itoa(int(a.TargetPort)))
	}
	b.WriteString(" new_len " + strconv.FormatUint(uint64(a.NewLen), 10))
	if a.SrcIPSticky {
		b.WriteString(" src_ip_sticky")
	}
	return b.String()
}

// DelVIPCmd builds `lb vip ... del`.
func DelVIPCmd(k Key) string { return "lb vip " + k.selector() + " del" }

// AddASCmd builds `lb as ...` for an add (or the revival of a removed AS).
func AddASCmd(k Key, as netip.Addr) string { return "lb as " + k.selector() + " " + as.String() }

// DelASCmd builds `lb as ... del [flush]`. Without flush the AS drains:
// existing flows continue, new ones avoid it.
func DelASCmd(k Key, as netip.Addr, flush bool) string {
	s := "lb as " + k.selector() + " " + as.String() + " del"
	if flush {
		s += " flush"
	}
	return s
}

// FlushVIPCmd builds `lb flush vip ...`.
func FlushVIPCmd(k Key) string { return "lb flush vip " + k.selector() }

// ShowVIPsCmd is the command ParseVIPs understands.
const ShowVIPsCmd = "show lb vips verbose"

var (
	reOK    = regexp.MustCompile(`^lb_vip_add ok (\d+)$`)
	reError = regexp.MustCompile(`error (-?\d+)`)
)

// Result interprets the text a configuration command printed. VPP reports
// CLI errors as text with retval 0, so anything but silence or
// "lb_vip_add ok <index>" is an error. code is the VPP API error number
// when the text carries one (0 otherwise); index is the new VIP's pool
// index after a successful add (-1 otherwise).
func Result(reply string) (index int64, code int, err error) {
	t := strings.TrimSpace(reply)
	if t == "" {
		return -1, 0, nil
	}
	// A pool index is a u32 and an error number an i32: text beyond those
	// is not VPP's, and is reported as an error without a code.
	if m := reOK.FindStringSubmatch(t); m != nil {
		if n, err := strconv.ParseUint(m[1], 10, 32); err == nil {
			return int64(n), 0, nil
		}
	}
	if m := reError.FindStringSubmatch(t); m != nil {
		if n, err := strconv.ParseInt(m[1], 10, 32); err == nil {
			code = int(n)
		}
	}
	return -1, code, fmt.Errorf("vpp cli: %s", firstLine(t))
}

// firstLine keeps the first line, cut to 200 bytes on a character
// boundary.
func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 200 {
		n := 200
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		s = s[:n]
	}
	return s
}
