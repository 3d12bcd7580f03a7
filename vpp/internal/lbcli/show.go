// Package lbcli holds the pure text side of VPP's lb plugin CLI: the parser
// for `show lb vips verbose` (both the released <= 26.06 layout and the
// master layout), a renderer of the same text (used by the fakes), and the
// builder of `lb conf`, `lb vip` and `lb as` commands. Nothing here does I/O.
package lbcli

import (
	"bufio"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
)

// Counter names as VPP prints them, in its order: next, first, untracked,
// no-server. They are also the stats-segment entry names.
var CounterNames = [4]string{
	"packet from existing sessions",
	"first session packet",
	"untracked packet",
	"no server configured",
}

// VIPTypes are VPP's internal VIP types, as printed, in enum order.
var VIPTypes = [...]string{"ip6-gre6", "ip6-gre4", "ip4-gre6", "ip4-gre4", "ip4-l3dsr", "ip4-nat4", "ip6-nat6"}

// VIP is one block of `show lb vips verbose`.
type VIP struct {
	Index       uint32       // pool index: the index of the VIP's counters
	Type        string       // one of VIPTypes
	Prefix      netip.Prefix // as printed (IPv4 with its IPv4 length)
	SrcIPSticky bool
	Removed     bool
	NewSize     uint32 // new-flow table length
	Protocol    uint8  // per-port VIPs only, else 0
	Port        uint16 // per-port VIPs only, else 0
	DSCP        uint8  // L3DSR only
	NATType     string // "clusterip" or "nodeport", NAT only
	TargetPort  uint16 // NAT only (already swapped back to host order)
	Counters    [4]uint64
	ASes        []AS
}

// AS is one application-server line.
type AS struct {
	Addr    netip.Addr
	Weight  int // -1 in the <= 26.06 layout, which has no weights
	Buckets uint32
	Flows   uint64
	DPO     uint32
	Used    bool
}

var (
	reHeader   = regexp.MustCompile(`^\s*(ip[0-9]-[a-z0-9]+)\s+\[(\d+)\]\s+(\S+)((?:\s+[a-z_]+)*)\s*$`)
	reNewSize  = regexp.MustCompile(`^\s*new_size:(\d+)\s*$`)
	reProtoPt  = regexp.MustCompile(`^\s*protocol:(\d+)\s+port:(\d+)\s*$`)
	reDSCP     = regexp.MustCompile(`^\s*dscp:(\d+)\s*$`)
	reNAT      = regexp.MustCompile(`^\s*type:(clusterip|nodeport)\s+port:(\d+)\s+target_port:(\d+)\s*$`)
	reCounter  = regexp.MustCompile(`^\s*(packet from existing sessions|first session packet|untracked packet|no server configured):\s*(\d+)\s*$`)
	reASOld    = regexp.MustCompile(`^\s*(\S+)\s+(\d+)\s+buckets\s+(\d+)\s+flows\s+dpo:(\d+)\s+(used|removed)\s*$`)
	reASMaster = regexp.MustCompile(`^\s*(\S+)\s+weight:(\d+)\s+buckets:(\d+)\s+flows:(\d+)\s+dpo:(\d+)\s+(used|removed)\s*$`)
)

// ParseVIPs parses the output of `show lb vips verbose`. It keys on the
// "<type> [<index>] <prefix>" header, accepts both AS-line layouts, splits
// the NAT line that VPP prints without a newline, and ignores lines it does
// not know. Lines before the first header are ignored too.
func ParseVIPs(out string) []VIP {
	var vips []VIP
	var cur *VIP
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		for _, line := range splitJoined(sc.Text()) {
			t := strings.TrimSpace(line)
			if t == "" {
				continue
			}
			if strings.HasPrefix(t, "ip") && strings.Contains(t, "[") {
				// A header we cannot use also ends the previous block, so
				// its body is not attributed to the wrong VIP.
				cur = nil
				if m := reHeader.FindStringSubmatch(line); m != nil {
					if v, ok := parseHeader(m); ok {
						vips = append(vips, v)
						cur = &vips[len(vips)-1]
					}
				}
				continue
			}
			if cur != nil {
				parseBodyLine(cur, line)
			}
		}
	}
	return vips
}

// splitJoined undoes VPP's NAT line join: "  type:... target_port:N  counters:".
func splitJoined(line string) []string {
	i := strings.Index(line, "counters:")
	if i <= 0 || strings.TrimSpace(line[:i]) == "" {
		return []string{line}
	}
	return []string{line[:i], line[i:]}
}

func parseHeader(m []string) (VIP, bool) {
	v := VIP{Type: m[1]}
	known := false
	for _, t := range VIPTypes {
		if t == m[1] {
			known = true
		}
	}
	if !known {
		return v, false
	}
	idx, err := strconv.ParseUint(m[2], 10, 32)
	if err != nil {
		return v, false
	}
	p, err := netip.ParsePrefix(m[3])
	if err != nil {
		return v, false
	}
	v.Index, v.Prefix = uint32(idx), p
	for _, f := range strings.Fields(m[4]) {
		switch f {
		case "src_ip_sticky":
			v.SrcIPSticky = true
		case "removed":
			v.Removed = true
		}
	}
	return v, true
}

func parseBodyLine(v *VIP, line string) {
	// Cheap prefix checks first: the regexps only confirm the shape.
	t := strings.TrimSpace(line)
	switch {
	case strings.HasPrefix(t, "new_size:"), strings.HasPrefix(t, "protocol:"), strings.HasPrefix(t, "dscp:"),
		strings.HasPrefix(t, "type:"), strings.Contains(t, "buckets"):
	case strings.HasPrefix(t, "packet from") || strings.HasPrefix(t, "first session") ||
		strings.HasPrefix(t, "untracked") || strings.HasPrefix(t, "no server"):
	default:
		return
	}
	if m := reNewSize.FindStringSubmatch(line); m != nil {
		v.NewSize = uint32(atou(m[1], 32))
	} else if m := reProtoPt.FindStringSubmatch(line); m != nil {
		v.Protocol, v.Port = uint8(atou(m[1], 8)), uint16(atou(m[2], 16))
	} else if m := reDSCP.FindStringSubmatch(line); m != nil {
		v.DSCP = uint8(atou(m[1], 8))
	} else if m := reNAT.FindStringSubmatch(line); m != nil {
		// VPP prints these ports through ntohs of a host-order value.
		v.NATType = m[1]
		v.TargetPort = swap16(uint16(atou(m[3], 16)))
	} else if m := reCounter.FindStringSubmatch(line); m != nil {
		for i, n := range CounterNames {
			if n == m[1] {
				v.Counters[i] = atou(m[2], 64)
			}
		}
	} else if m := reASMaster.FindStringSubmatch(line); m != nil {
		if a, err := netip.ParseAddr(m[1]); err == nil {
			v.ASes = append(v.ASes, AS{Addr: a, Weight: int(atou(m[2], 8)), Buckets: uint32(atou(m[3], 32)),
				Flows: atou(m[4], 64), DPO: uint32(atou(m[5], 32)), Used: m[6] == "used"})
		}
	} else if m := reASOld.FindStringSubmatch(line); m != nil {
		if a, err := netip.ParseAddr(m[1]); err == nil {
			v.ASes = append(v.ASes, AS{Addr: a, Weight: -1, Buckets: uint32(atou(m[2], 32)),
				Flows: atou(m[3], 64), DPO: uint32(atou(m[4], 32)), Used: m[5] == "used"})
		}
	}
	// "counters:", "#as:N" and anything unknown carry nothing we need.
}

// atou parses a decimal that the regexp already vetted; values that do not
// fit saturate instead of failing.
func atou(s string, bits int) uint64 {
	n, err := strconv.ParseUint(s, 10, bits)
	if err != nil {
		return 1<<bits - 1
	}
	return n
}

func swap16(x uint16) uint16 { return x<<8 | x>>8 }

// Layout selects the text layout Render produces.
type Layout int

const (
	// Released is the layout of every released VPP up to 26.06.
	Released Layout = iota
	// Master is the layout of VPP master with lb API 1.2.0 (weights).
	Master
)

// Render prints vips the way VPP's `show lb vips verbose` does in the given
// layout, including the NAT line join and the byte-swapped NAT ports. It
// exists for the fakes and the tests.
func Render(vips []VIP, layout Layout) string {
	var b strings.Builder
	for _, v := range vips {
		b.WriteString(" " + v.Type + " [" + strconv.FormatUint(uint64(v.Index), 10) + "] " + v.Prefix.String())
		if v.SrcIPSticky {
			b.WriteString(" src_ip_sticky")
		}
		if v.Removed {
			b.WriteString(" removed")
		}
		b.WriteString("\n  new_size:" + strconv.FormatUint(uint64(v.NewSize), 10) + "\n")
		if v.Port != 0 {
			b.WriteString("  protocol:" + strconv.Itoa(int(v.Protocol)) + " port:" + strconv.Itoa(int(v.Port)) + "\n")
		}
		switch v.Type {
		case "ip4-l3dsr":
			b.WriteString("  dscp:" + strconv.Itoa(int(v.DSCP)) + "\n")
		case "ip4-nat4", "ip6-nat6":
			t := v.NATType
			if t == "" {
				t = "clusterip"
			}
			// No newline: VPP's format string lacks it.
			b.WriteString("  type:" + t + " port:" + strconv.Itoa(int(swap16(v.Port))) +
				" target_port:" + strconv.Itoa(int(swap16(v.TargetPort))))
		}
		b.WriteString("  counters:\n")
		for i, n := range CounterNames {
			b.WriteString("    " + n + ": " + strconv.FormatUint(v.Counters[i], 10) + "\n")
		}
		b.WriteString("  #as:" + strconv.Itoa(len(v.ASes)) + "\n")
		for _, a := range v.ASes {
			state := "used"
			if !a.Used {
				state = "removed"
			}
			if layout == Master {
				w := a.Weight
				if w < 0 {
					w = 100
				}
				b.WriteString("    " + a.Addr.String() + " weight:" + strconv.Itoa(w) +
					" buckets:" + strconv.FormatUint(uint64(a.Buckets), 10) +
					" flows:" + strconv.FormatUint(a.Flows, 10) + " dpo:" + strconv.FormatUint(uint64(a.DPO), 10) + " " + state + "\n")
			} else {
				if !a.Used {
					state = " removed"
				}
				b.WriteString("    " + a.Addr.String() + " " + strconv.FormatUint(uint64(a.Buckets), 10) + " buckets   " +
					strconv.FormatUint(a.Flows, 10) + " flows  dpo:" + strconv.FormatUint(uint64(a.DPO), 10) + " " + state + "\n")
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}
