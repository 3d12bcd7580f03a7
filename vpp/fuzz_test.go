package vpp

import (
	"encoding/binary"
	"math"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"go.fd.io/govpp/adapter"

	"github.com/octavia-vpp/health/vpp/internal/lbcli"
)

// FuzzStatusOf parses arbitrary `show lb vips verbose` text and converts
// every VIP into our vocabulary, as readVIPs and the state report do. The
// key must be normalised (masked prefix, ProtoAny on all-port VIPs),
// weights must stay within MaxWeight with an in-use AS of the
// weightless layout at full weight, and backends must come sorted.
func FuzzStatusOf(f *testing.F) {
	for _, name := range []string{"show_lb_vips_verbose_master.txt", "show_lb_vips_verbose_2606.txt"} {
		raw, err := os.ReadFile("internal/lbcli/testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(raw))
	}
	f.Add(" ip4-l3dsr [3] 192.0.2.1/24\n  new_size:1024\n  protocol:6 port:0\n    10.0.0.1 weight:255 buckets:1 flows:1 dpo:1 used\n")
	f.Add(" ip6-gre4 [0] ::ffff:1.2.3.4/128\n    10.0.0.1 3 buckets   0 flows  dpo:1 used\n    ::1 3 buckets   0 flows  dpo:1 removed\n")
	f.Fuzz(func(t *testing.T, text string) {
		for _, v := range lbcli.ParseVIPs(text) {
			st := statusOf(v)
			if !st.Key.Prefix.IsValid() || st.Key.Prefix != st.Key.Prefix.Masked() {
				t.Fatalf("key prefix %v from %v", st.Key.Prefix, v.Prefix)
			}
			// (A per-port VIP printed with protocol 255 keeps it: that key
			// matches no VIP of ours, which is right for text VPP never prints.)
			if st.Key.Port == 0 && st.Key.Protocol != ProtoAny {
				t.Fatalf("all-port key %v without ProtoAny", st.Key)
			}
			if len(st.Backends) != len(v.ASes) {
				t.Fatalf("%d backends from %d ASes", len(st.Backends), len(v.ASes))
			}
			if !slices.IsSortedFunc(st.Backends, func(a, b BackendStatus) int { return CompareAddr(a.Addr, b.Addr) }) {
				t.Fatalf("backends not sorted: %+v", st.Backends)
			}
			for _, as := range v.ASes {
				i := slices.IndexFunc(st.Backends, func(b BackendStatus) bool {
					return b.Addr == as.Addr && b.Active == as.Used && b.Flows == as.Flows
				})
				if i < 0 {
					t.Fatalf("AS %+v lost: %+v", as, st.Backends)
				}
				b := st.Backends[i]
				want := uint8(min(max(as.Weight, 0), MaxWeight))
				if as.Weight < 0 && as.Used {
					want = MaxWeight
				}
				if b.Weight != want {
					t.Fatalf("AS %+v became weight %d, want %d", as, b.Weight, want)
				}
			}
		}
	})
}

// FuzzScrapeCounters builds stats-segment dumps of arbitrary shape (ragged
// or missing per-thread vectors, wrong data types under the known names,
// any indices) and scrapes them in sequence, as the dataplane does. It
// must never panic, and every total it reports must never go backwards.
func FuzzScrapeCounters(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a"))
	f.Add([]byte(strings.Repeat("\xff\x00\x80\x7f", 40)))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := &byteSource{data: data}
		keys := []VIPKey{
			{Prefix: netip.MustParsePrefix("192.0.2.10/32"), Protocol: ProtoTCP, Port: 80},
			{Prefix: netip.MustParsePrefix("2001:db8::10/128"), Protocol: ProtoAny},
		}
		tr := newCounterTracker()
		last := map[VIPKey]VIPCounters{}
		for scrape := 0; scrape < 4 && !r.done(); scrape++ {
			s := pickStats(r.entries())
			if bt := bootTimeOf(s.bootTime); !bt.IsZero() && (bt.Before(time.Unix(0, 0)) || bt.After(time.Unix(0, math.MaxInt64))) {
				t.Fatalf("boot time %v from %g", bt, s.bootTime)
			}
			var obs []vipObs
			for _, k := range keys {
				if r.next()%4 == 0 {
					continue // the VIP is gone in this scrape
				}
				obs = append(obs, vipObs{key: k,
					lbIndex: int(int8(r.next())), epoch: uint64(r.next() % 3), lbKnown: r.next()%5 != 0,
					routeIndex: int(int8(r.next())), routeKnown: r.next()%5 != 0,
					bootTime: time.Unix(int64(r.next()%3), 0), lbText: r.next()%3 == 0,
				})
			}
			var text map[VIPKey][4]uint64
			if r.next()%2 == 0 {
				text = map[VIPKey][4]uint64{keys[0]: {r.counter(), r.counter(), r.counter(), r.counter()}}
			}
			snap := tr.snapshotWith(time.Unix(int64(scrape), 0), s, obs, text)
			for _, c := range snap.VIPs {
				if p, ok := last[c.Key]; ok {
					for i, pair := range [][2]uint64{
						{p.NextPackets, c.NextPackets}, {p.FirstPackets, c.FirstPackets},
						{p.UntrackedPackets, c.UntrackedPackets}, {p.NoServerPackets, c.NoServerPackets},
						{p.RoutePackets, c.RoutePackets}, {p.RouteBytes, c.RouteBytes},
					} {
						if pair[1] < pair[0] {
							t.Fatalf("scrape %d, %v: counter %d went from %d to %d", scrape, c.Key, i, pair[0], pair[1])
						}
					}
				}
				last[c.Key] = c
			}
		}
	})
}

// byteSource draws from fuzz bytes; an exhausted input reads as zeros.
type byteSource struct {
	data []byte
	pos  int
}

func (r *byteSource) done() bool { return r.pos >= len(r.data) }

func (r *byteSource) next() byte {
	if r.done() {
		return 0
	}
	r.pos++
	return r.data[r.pos-1]
}

// counter is a counter value below 2^40: VPP's 64-bit counters never come
// near wrapping, and sums of a few of them must not wrap either.
func (r *byteSource) counter() uint64 {
	var b [8]byte
	for i := range 5 {
		b[i] = r.next()
	}
	return binary.LittleEndian.Uint64(b[:])
}

func (r *byteSource) entries() []adapter.StatEntry {
	names := append(lbcli.CounterNames[:], statRouteTo, statBootTime, "/net/route/to/extra")
	var out []adapter.StatEntry
	for range r.next() % 8 {
		name := names[int(r.next())%len(names)]
		var data adapter.Stat
		switch r.next() % 4 {
		case 0:
			var s adapter.SimpleCounterStat
			for range r.next() % 4 {
				var thread []adapter.Counter
				if r.next()%5 != 0 {
					thread = []adapter.Counter{}
				}
				for range r.next() % 6 {
					thread = append(thread, adapter.Counter(r.counter()))
				}
				s = append(s, thread)
			}
			data = s
		case 1:
			var s adapter.CombinedCounterStat
			for range r.next() % 4 {
				var thread []adapter.CombinedCounter
				for range r.next() % 6 {
					thread = append(thread, adapter.CombinedCounter{r.counter(), r.counter()})
				}
				s = append(s, thread)
			}
			data = s
		case 2:
			scalars := []float64{0, -1, 1.7e9, math.NaN(), math.Inf(1), 1e300}
			data = adapter.ScalarStat(scalars[int(r.next())%len(scalars)])
		case 3:
			data = nil
		}
		out = append(out, adapter.StatEntry{StatIdentifier: adapter.StatIdentifier{Name: []byte(name)}, Data: data})
	}
	return out
}

// FuzzSelectDialect checks the dialect choice for any mode, lb API version
// and set of missing messages: the binary API only when VPP has every lb
// 1.2.0 message, and in auto mode only when VPP does not report an older
// lb API; an error only for an unknown mode or a forced binary API that
// VPP cannot serve.
func FuzzSelectDialect(f *testing.F) {
	f.Add("auto", true, uint32(1), uint32(1), uint32(0), "lb_as_set_weight_2d89bdbd")
	f.Add("", true, uint32(1), uint32(2), uint32(0), "")
	f.Add("binapi", false, uint32(0), uint32(0), uint32(0), "a,b")
	f.Add("cli", true, uint32(4294967295), uint32(0), uint32(0), "")
	f.Add("grpc", false, uint32(0), uint32(0), uint32(0), "")
	f.Fuzz(func(t *testing.T, mode string, known bool, major, minor, patch uint32, missingList string) {
		var ver *apiVersion
		if known {
			ver = &apiVersion{major, minor, patch}
		}
		var missing []string
		if missingList != "" {
			missing = strings.Split(missingList, ",")
		}
		got, err := selectDialect(mode, ver, missing)
		valid := mode == "" || mode == "auto" || mode == DialectCLI || mode == DialectBinAPI
		if err != nil {
			if valid && !(mode == DialectBinAPI && len(missing) > 0) {
				t.Fatalf("mode %q, version %v, missing %q: %v", mode, ver, missing, err)
			}
			return
		}
		if !valid || got.reason == "" {
			t.Fatalf("mode %q accepted: %+v", mode, got)
		}
		switch got.dialect {
		case DialectCLI:
			if mode == DialectBinAPI {
				t.Fatalf("binapi configured, cli chosen: %+v", got)
			}
			if mode != DialectCLI && len(missing) == 0 && (ver == nil || ver.atLeast(lbWeighted)) {
				t.Fatalf("cli chosen though VPP serves lb 1.2.0 (version %v): %+v", ver, got)
			}
		case DialectBinAPI:
			if mode == DialectCLI || len(missing) > 0 || (mode != DialectBinAPI && ver != nil && !ver.atLeast(lbWeighted)) {
				t.Fatalf("binapi chosen: mode %q, version %v, missing %q", mode, ver, missing)
			}
		default:
			t.Fatalf("dialect %q", got.dialect)
		}
	})
}
