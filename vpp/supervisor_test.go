package vpp

import (
	"context"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.fd.io/govpp/binapi/lb"

	"github.com/octavia-vpp/health/vpp/internal/fakevpp"
	"github.com/octavia-vpp/health/vpp/internal/lbapi"
)

// TestFakeSocketConnectAndDialect drives the real socketclient against the
// fake api.sock. A message missing from VPP's table (an old VPP, or one
// whose CRCs changed) must make the layer fall back to the CLI dialect.
func TestFakeSocketConnectAndDialect(t *testing.T) {
	tests := []struct {
		name        string
		flavor      fakevpp.Flavor
		opts        fakevpp.Options
		wantDialect string
		wantReason  string
		wantVersion string
	}{
		{"released VPP: lb 1.1.0 without weighted messages", fakevpp.Released, fakevpp.Options{}, DialectCLI, "messages missing", "v26.06-release"},
		{"master VPP", fakevpp.Master, fakevpp.Options{}, DialectBinAPI, "lb API 1.2.0", "v26.10-rc0~42-gdb44addb6"},
		{"master with lb_as_set_weight missing from the table", fakevpp.Master, fakevpp.Options{Omit: []string{"lb_as_set_weight"}},
			DialectCLI, "lb_as_set_weight_2d89bdbd", ""},
		{"master with lb_add_del_as_v2 missing from the table", fakevpp.Master, fakevpp.Options{Omit: []string{"lb_add_del_as_v2"}},
			DialectCLI, "lb_add_del_as_v2_2f1d3b0e", ""},
		{"weighted messages present, lb version unknown", fakevpp.Master, fakevpp.Options{NoAPIVersions: true},
			DialectBinAPI, "version unknown", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := startFakeWith(t, fakeSetup{flavor: tc.flavor, opts: tc.opts, wait: true})
			st := e.g.State()
			if st.Dialect != tc.wantDialect || st.Weighted != (tc.wantDialect == DialectBinAPI) {
				t.Fatalf("state %+v, want dialect %s", st, tc.wantDialect)
			}
			if tc.wantVersion != "" && st.Version != tc.wantVersion {
				t.Fatalf("version %q", st.Version)
			}
			if st.LastContact.IsZero() || st.LastError != "" || st.Generation != 1 {
				t.Fatalf("state %+v", st)
			}
			// The choice's reason is logged; check it through the pure function too.
			info, err := e.g.probeForTest()
			if err != nil || !strings.Contains(info.reason, tc.wantReason) {
				t.Fatalf("reason %q (err %v), want it to mention %q", info.reason, err, tc.wantReason)
			}
			// And the dialect works end to end.
			k := VIPKey{Prefix: p("192.0.2.10/32"), Protocol: ProtoTCP, Port: 80}
			if _, err := e.g.SyncVIP(context.Background(), VIP{Key: k, Backends: []Backend{{Addr: a("10.0.0.1"), Weight: 100}}}); err != nil {
				t.Fatal(err)
			}
			var sawCLIWrite, sawAPIWrite bool
			for _, r := range e.srv.Requests() {
				switch m := r.Msg.(type) {
				case *lb.LbAddDelVipV2, *lbapi.LbAddDelAsV2:
					sawAPIWrite = true
				default:
					if c, ok := r.Msg.(interface{ GetMessageName() string }); ok && c.GetMessageName() == "cli_inband" {
						if strings.HasPrefix(cliCmd(m), "lb ") {
							sawCLIWrite = true
						}
					}
				}
			}
			if (tc.wantDialect == DialectCLI) != sawCLIWrite || (tc.wantDialect == DialectBinAPI) != sawAPIWrite {
				t.Fatalf("cli writes %v, api writes %v for dialect %s", sawCLIWrite, sawAPIWrite, tc.wantDialect)
			}
		})
	}
}

// TestFakeSocketConfiguredBinapiOnOldVPP: forcing the binary dialect onto
// a VPP without the messages fails the connection with a clear reason and
// keeps retrying.
func TestFakeSocketConfiguredBinapiOnOldVPP(t *testing.T) {
	e := startFakeWith(t, fakeSetup{flavor: fakevpp.Released, dialect: DialectBinAPI})
	deadline := time.Now().Add(5 * time.Second)
	for {
		st := e.g.State()
		if strings.Contains(st.LastError, "lb_add_del_as_v2") && !st.Connected {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("state %+v", st)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestFakeSocketRestart removes the socket (VPP exits), recreates it (a
// fresh VPP with empty lb state) and checks the reconnect and the full,
// ordered re-push.
func TestFakeSocketRestart(t *testing.T) {
	k80 := VIPKey{Prefix: p("192.0.2.10/32"), Protocol: ProtoTCP, Port: 80}
	k6 := VIPKey{Prefix: p("2001:db8::10/128"), Protocol: ProtoUDP, Port: 53}
	for _, tc := range []struct {
		flavor fakevpp.Flavor
		want   []string // what the fresh VPP receives, in order
	}{
		{fakevpp.Released, []string{
			"cli_inband: lb conf ip4-src-address 192.0.2.1 ip6-src-address 2001:db8::1 buckets 65536 timeout 30",
			"cli_inband: show lb vips verbose",
			"cli_inband: lb vip 192.0.2.10/32 protocol tcp port 80 encap gre4 new_len 1024",
			"cli_inband: lb as 192.0.2.10/32 protocol tcp port 80 10.0.0.1",
			"cli_inband: lb as 192.0.2.10/32 protocol tcp port 80 10.0.0.3",
			"cli_inband: lb vip 2001:db8::10/128 protocol udp port 53 encap gre6 new_len 2048 src_ip_sticky",
			"cli_inband: lb as 2001:db8::10/128 protocol udp port 53 2001:db8:1::1",
		}},
		{fakevpp.Master, []string{
			"lb_conf",
			"cli_inband: show lb vips verbose",
			"lb_add_del_vip_v2",
			"lb_add_del_as_v2 10.0.0.1 weight 100",
			"lb_add_del_as_v2 10.0.0.2 weight 0",
			"lb_add_del_as_v2 10.0.0.3 weight 40",
			"lb_add_del_vip_v2",
			"lb_add_del_as_v2 2001:db8:1::1 weight 100",
		}},
	} {
		t.Run(map[fakevpp.Flavor]string{fakevpp.Released: "released", fakevpp.Master: "master"}[tc.flavor], func(t *testing.T) {
			e := startFake(t, tc.flavor, true)
			ctx := context.Background()
			must := func(err error) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
			}
			must(e.g.Configure(ctx, Conf{IP4Src: a("192.0.2.1"), IP6Src: a("2001:db8::1"), StickyBucketsPerWorker: 65536, FlowTimeout: 30 * time.Second}))
			// Synced in reverse key order: the re-push must still be in key order.
			_, err := e.g.SyncVIP(ctx, VIP{Key: k6, Encap: EncapGRE6, SrcIPSticky: true, FlowTableLength: 2048,
				Backends: []Backend{{Addr: a("2001:db8:1::1"), Weight: 100}}})
			must(err)
			_, err = e.g.SyncVIP(ctx, VIP{Key: k80, Backends: []Backend{{Addr: a("10.0.0.3"), Weight: 100},
				{Addr: a("10.0.0.1"), Weight: 100}, {Addr: a("10.0.0.2"), Weight: 100}}})
			must(err)
			// 10.0.0.2 drained with a flush, 10.0.0.3 reweighted.
			drained := VIP{Key: k80, Backends: []Backend{{Addr: a("10.0.0.3"), Weight: 40},
				{Addr: a("10.0.0.1"), Weight: 100}, {Addr: a("10.0.0.2"), Weight: 0, Flush: true}}}
			_, err = e.g.SyncVIP(ctx, drained)
			must(err)
			before, err := e.g.VIPs(ctx)
			must(err)
			if err := e.srv.Model().SendFlows(fakevpp.Key{Prefix: k80.Prefix, Protocol: 6, Port: 80}, 10, 3, 100); err != nil {
				t.Fatal(err)
			}
			e.scrapeNow()
			c1, _ := e.g.Counters().VIP(k80)

			e.srv.Stop()
			// While VPP is away: disconnected, calls fail fast, desired state is still taken.
			deadline := time.Now().Add(5 * time.Second)
			for e.g.State().Connected {
				if time.Now().After(deadline) {
					t.Fatal("never noticed VPP went away")
				}
				time.Sleep(5 * time.Millisecond)
			}
			if _, err := e.g.SyncVIP(ctx, drained); !errors.Is(err, ErrNotConnected) {
				t.Fatalf("sync while down: %v", err)
			}
			time.Sleep(100 * time.Millisecond) // a few failed reconnects
			if st := e.g.State(); st.LastError == "" || st.Connected {
				t.Fatalf("state while down %+v", st)
			}
			e.srv.ResetRequests()
			if err := e.srv.Start(); err != nil {
				t.Fatal(err)
			}
			st := e.waitConnected(2)
			if st.Generation != 2 || st.BootTime.IsZero() {
				t.Fatalf("state %+v", st)
			}
			var got []string
			for _, r := range e.srv.Requests() {
				if s := describe(r); s != "" {
					got = append(got, s)
				}
			}
			// The first scrape right after the re-push may or may not have run yet.
			for len(got) > 0 && got[len(got)-1] == "cli_inband: show lb vips verbose" {
				got = got[:len(got)-1]
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("re-push\n got %q\nwant %q", got, tc.want)
			}
			after, err := e.g.VIPs(ctx)
			must(err)
			if !sameEffective(before, after) {
				t.Fatalf("state after restart\n got %+v\nwant %+v", after, before)
			}
			ip4, _, buckets, timeout := e.srv.Model().Conf()
			if ip4 != a("192.0.2.1") || buckets != 65536 || timeout != 30 {
				t.Fatalf("conf not re-pushed: %v %d %d", ip4, buckets, timeout)
			}
			// Counters restarted at zero in VPP but stay monotonic for us.
			if err := e.srv.Model().SendFlows(fakevpp.Key{Prefix: k80.Prefix, Protocol: 6, Port: 80}, 2, 1, 100); err != nil {
				t.Fatal(err)
			}
			e.scrapeNow()
			c2, _ := e.g.Counters().VIP(k80)
			if c2.FirstPackets != c1.FirstPackets+2 || c2.NextPackets != c1.NextPackets || c2.RouteBytes != c1.RouteBytes+200 {
				t.Fatalf("counters before %+v after %+v", c1, c2)
			}
			if tel := e.g.Telemetry(); tel.Connects["ok"] != 2 || tel.Connects["error"] == 0 || tel.Disconnects != 1 || tel.Repushes != 2 {
				t.Fatalf("telemetry %+v", tel)
			}
		})
	}
}

// TestFakeRebootBehindSocket: VPP restarted but the connection survived;
// the changed boot time in the stats segment triggers the re-push.
func TestFakeRebootBehindSocket(t *testing.T) {
	e := startFake(t, fakevpp.Master, true)
	k := VIPKey{Prefix: p("192.0.2.10/32"), Protocol: ProtoTCP, Port: 80}
	if _, err := e.g.SyncVIP(context.Background(), VIP{Key: k, Backends: []Backend{{Addr: a("10.0.0.1"), Weight: 100}}}); err != nil {
		t.Fatal(err)
	}
	boot := e.g.State().BootTime
	e.srv.Reboot()
	st := e.waitConnected(2)
	if !st.BootTime.After(boot) {
		t.Fatalf("boot time %v after %v", st.BootTime, boot)
	}
	vips, err := e.g.VIPs(context.Background())
	if err != nil || len(vips) != 1 || len(vips[0].Backends) != 1 {
		t.Fatalf("not re-pushed: %+v %v", vips, err)
	}
}

// TestFakeCountersWithoutStats: without a stats socket the packet counters
// come from the CLI text; route counters are unavailable.
func TestFakeCountersWithoutStats(t *testing.T) {
	e := startFake(t, fakevpp.Released, false)
	k := VIPKey{Prefix: p("192.0.2.10/32"), Protocol: ProtoTCP, Port: 80}
	if _, err := e.g.SyncVIP(context.Background(), VIP{Key: k, Backends: []Backend{{Addr: a("10.0.0.1"), Weight: 100}}}); err != nil {
		t.Fatal(err)
	}
	if err := e.srv.Model().SendFlows(fakevpp.Key{Prefix: k.Prefix, Protocol: 6, Port: 80}, 4, 3, 100); err != nil {
		t.Fatal(err)
	}
	e.scrapeNow()
	c, ok := e.g.Counters().VIP(k)
	if !ok || c.FirstPackets != 4 || c.NextPackets != 8 || c.RouteBytes != 0 || c.Flows[a("10.0.0.1")] != 4 {
		t.Fatalf("counters %+v", c)
	}
}

// TestFakeStatsBusyAndPatterns: busy reads are retried, and every pattern
// sent to the stats segment is anchored.
func TestFakeStatsBusyAndPatterns(t *testing.T) {
	e := startFake(t, fakevpp.Master, true)
	k := VIPKey{Prefix: p("192.0.2.10/32"), Protocol: ProtoTCP, Port: 80}
	if _, err := e.g.SyncVIP(context.Background(), VIP{Key: k, Backends: []Backend{{Addr: a("10.0.0.1"), Weight: 100}}}); err != nil {
		t.Fatal(err)
	}
	if err := e.srv.Model().SendFlows(fakevpp.Key{Prefix: k.Prefix, Protocol: 6, Port: 80}, 3, 1, 10); err != nil {
		t.Fatal(err)
	}
	e.mu.Lock()
	st := e.stats[len(e.stats)-1]
	e.mu.Unlock()
	st.Busy(2)
	e.scrapeNow()
	c, ok := e.g.Counters().VIP(k)
	if !ok || c.FirstPackets != 3 || c.RoutePackets != 3 || c.RouteBytes != 30 {
		t.Fatalf("counters %+v", c)
	}
	for _, ps := range st.PatternsSeen() {
		for _, pt := range ps {
			if !strings.HasPrefix(pt, "^") || !strings.HasSuffix(pt, "$") {
				t.Fatalf("unanchored stats pattern %q", pt)
			}
		}
	}
}

func cliCmd(m any) string {
	v := reflect.ValueOf(m)
	if v.Kind() == reflect.Pointer {
		if f := v.Elem().FieldByName("Cmd"); f.IsValid() {
			return f.String()
		}
	}
	return ""
}

// describe renders the configuration requests of a re-push; connection
// and ping traffic render as "".
func describe(r fakevpp.Request) string {
	switch m := r.Msg.(type) {
	case *lbapi.LbAddDelAsV2:
		return r.Name + " " + m.AsAddress.String() + " weight " + strconv.Itoa(int(m.Weight))
	case *lb.LbConf, *lb.LbAddDelVipV2:
		return r.Name
	}
	if c := cliCmd(r.Msg); c != "" {
		return r.Name + ": " + c
	}
	return ""
}

// sameEffective compares two VIP lists by what new flows see.
func sameEffective(x, y []VIPStatus) bool {
	if len(x) != len(y) {
		return false
	}
	eff := func(v VIPStatus) map[string]uint8 {
		m := map[string]uint8{}
		for _, b := range v.Backends {
			if b.Active && b.Weight > 0 {
				m[b.Addr.String()] = b.Weight
			}
		}
		return m
	}
	for i := range x {
		if x[i].Key != y[i].Key || x[i].Encap != y[i].Encap || x[i].SrcIPSticky != y[i].SrcIPSticky ||
			x[i].FlowTableLength != y[i].FlowTableLength || !reflect.DeepEqual(eff(x[i]), eff(y[i])) {
			return false
		}
	}
	return true
}

// TestFakeSocketReconnectKeepsState: the connection drops but VPP keeps
// running. Changes made meanwhile (a removal, a weight) are applied on
// reconnect, and nothing else is rewritten.
func TestFakeSocketReconnectKeepsState(t *testing.T) {
	e := startFake(t, fakevpp.Master, true)
	ctx := context.Background()
	k80 := VIPKey{Prefix: p("192.0.2.10/32"), Protocol: ProtoTCP, Port: 80}
	k443 := VIPKey{Prefix: p("192.0.2.10/32"), Protocol: ProtoTCP, Port: 443}
	for _, k := range []VIPKey{k80, k443} {
		if _, err := e.g.SyncVIP(ctx, VIP{Key: k, Backends: []Backend{{Addr: a("10.0.0.1"), Weight: 100}}}); err != nil {
			t.Fatal(err)
		}
	}
	e.srv.Stop()
	for deadline := time.Now().Add(5 * time.Second); e.g.State().Connected; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("never noticed the disconnect")
		}
	}
	if err := e.g.RemoveVIP(ctx, k443); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("remove while down: %v", err)
	}
	if _, err := e.g.SyncVIP(ctx, VIP{Key: k80, Backends: []Backend{{Addr: a("10.0.0.1"), Weight: 30}}}); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("reweigh while down: %v", err)
	}
	e.srv.ResetRequests()
	if err := e.srv.Resume(); err != nil {
		t.Fatal(err)
	}
	e.waitConnected(2)
	vips, err := e.g.VIPs(ctx)
	if err != nil || len(vips) != 1 || vips[0].Key != k80 || vips[0].Backends[0].Weight != 30 {
		t.Fatalf("after reconnect: %+v %v", vips, err)
	}
	var writes []string
	for _, r := range e.srv.Requests() {
		if s := describe(r); s != "" && !strings.HasPrefix(s, "cli_inband: show") {
			writes = append(writes, s)
		}
		if r.Name == "lb_as_set_weight" {
			writes = append(writes, "lb_as_set_weight")
		}
	}
	want := []string{"lb_add_del_as_v2 10.0.0.1 weight 0", "lb_add_del_vip_v2", "lb_as_set_weight"}
	if !reflect.DeepEqual(writes, want) {
		t.Fatalf("writes on reconnect %q, want %q", writes, want)
	}
}

// TestStatsSocketLateAndLost: a stats socket that is unavailable at connect
// time, or lost later, is dialled again by the scrape; meanwhile counters
// come from the CLI text.
func TestStatsSocketLateAndLost(t *testing.T) {
	var (
		mu    sync.Mutex
		srv   *fakevpp.Server
		dials int
	)
	e := startFakeWith(t, fakeSetup{flavor: fakevpp.Master, wait: true, tweak: func(c *GovppConfig) {
		c.Stats = func(context.Context) (StatsSource, error) {
			mu.Lock()
			defer mu.Unlock()
			dials++
			if srv == nil {
				return nil, errors.New("no stats socket yet")
			}
			return srv.Stats(), nil
		}
	}})
	k := VIPKey{Prefix: p("192.0.2.10/32"), Protocol: ProtoTCP, Port: 80}
	if _, err := e.g.SyncVIP(context.Background(), VIP{Key: k, Backends: []Backend{{Addr: a("10.0.0.1"), Weight: 100}}}); err != nil {
		t.Fatal(err)
	}
	if err := e.srv.Model().SendFlows(fakevpp.Key{Prefix: k.Prefix, Protocol: 6, Port: 80}, 2, 1, 50); err != nil {
		t.Fatal(err)
	}
	e.scrapeNow()
	if c, _ := e.g.Counters().VIP(k); c.FirstPackets != 2 || c.RouteBytes != 0 {
		t.Fatalf("without stats: %+v", c)
	}
	mu.Lock()
	srv = e.srv
	mu.Unlock()
	e.scrapeNow()
	if c, _ := e.g.Counters().VIP(k); c.FirstPackets != 2 || c.RouteBytes != 100 {
		t.Fatalf("after late stats: %+v", c)
	}
	e.g.mu.Lock()
	_ = e.g.stats.Disconnect() // the fake then answers ErrStatsDisconnected
	e.g.mu.Unlock()
	e.scrapeNow() // falls back to text, drops the source
	e.scrapeNow() // dials again
	e.g.mu.Lock()
	has := e.g.stats != nil
	e.g.mu.Unlock()
	mu.Lock()
	n := dials
	mu.Unlock()
	if !has || n < 3 {
		t.Fatalf("stats source %v after %d dials", has, n)
	}
	if c, _ := e.g.Counters().VIP(k); c.FirstPackets != 2 || c.RouteBytes != 100 {
		t.Fatalf("after re-dial: %+v", c)
	}
}
