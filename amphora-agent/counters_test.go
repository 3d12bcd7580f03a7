package agent

import (
	"bytes"
	"encoding/json"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/octavia-vpp/health/vpp"
	"github.com/octavia-vpp/health/vpp/sim"
)

var (
	key4 = vpp.VIPKey{Prefix: netip.MustParsePrefix("192.0.2.10/32"), Protocol: vpp.ProtoTCP, Port: 80}
	key6 = vpp.VIPKey{Prefix: netip.MustParsePrefix("2001:db8::10/128"), Protocol: vpp.ProtoTCP, Port: 80}
	key2 = vpp.VIPKey{Prefix: netip.MustParsePrefix("192.0.2.20/32"), Protocol: vpp.ProtoTCP, Port: 443}
	key3 = vpp.VIPKey{Prefix: netip.MustParsePrefix("192.0.2.30/32"), Protocol: vpp.ProtoAny}
)

// vipTotals is one VIP in a test snapshot: first packets (stot), route
// bytes (bin), no-server packets (ereq).
type vipTotals struct {
	key               vpp.VIPKey
	first, bytes, nos uint64
}

func snapOf(vs ...vipTotals) *vpp.Counters {
	c := &vpp.Counters{Taken: time.Unix(1, 0)}
	for _, v := range vs {
		c.VIPs = append(c.VIPs, vpp.VIPCounters{Key: v.key, FirstPackets: v.first, RouteBytes: v.bytes, NoServerPackets: v.nos,
			Base: vpp.CounterBase{LB: vpp.SourceBase{Seen: true, Index: 1, Raw: [4]uint64{0, v.first, 0, v.nos}, Total: [4]uint64{0, v.first, 0, v.nos}}}})
	}
	// snapshots are sorted by key
	for i := 1; i < len(c.VIPs); i++ {
		for j := i; j > 0 && c.VIPs[j].Key.Compare(c.VIPs[j-1].Key) < 0; j-- {
			c.VIPs[j], c.VIPs[j-1] = c.VIPs[j-1], c.VIPs[j]
		}
	}
	return c
}

// adopted marks every VIP of a snapshot as found in VPP rather than
// created by this process.
func adopted(c *vpp.Counters) *vpp.Counters {
	for i := range c.VIPs {
		c.VIPs[i].Adopted = true
	}
	return c
}

// TestCounterFileAdvance: deltas are computed VIP by VIP, so a VIP
// missing from one scrape neither drops the listener's sum (which the
// old per-listener reset rule took for a reset) nor comes back as news.
func TestCounterFileAdvance(t *testing.T) {
	dual := []ListenerVIPs{{ID: "L1", VIPs: []vpp.VIPKey{key4, key6}}, {ID: "L2", VIPs: []vpp.VIPKey{key2}}}
	type step struct {
		snap      *vpp.Counters
		want      map[string]Sample
		wantLost  map[string][]vpp.VIPKey
		listeners []ListenerVIPs // dual when nil
	}
	tests := []struct {
		name      string
		untrusted string
		steps     []step
	}{
		{"first start: everything VPP counted is news", "", []step{
			{snapOf(vipTotals{key4, 5, 500, 1}, vipTotals{key6, 2, 200, 0}), map[string]Sample{"L1": {Bin: 700, Stot: 7, EReq: 1}}, nil, nil},
			{snapOf(vipTotals{key4, 6, 600, 1}, vipTotals{key6, 2, 250, 0}), map[string]Sample{"L1": {Bin: 150, Stot: 1}}, nil, nil},
		}},
		{"dual-stack VIP missing from one scrape keeps its totals", "", []step{
			{snapOf(vipTotals{key4, 100, 10000, 0}, vipTotals{key6, 50, 5000, 0}), map[string]Sample{"L1": {Bin: 15000, Stot: 150}}, nil, nil},
			// the IPv6 VIP is missing: only the IPv4 increase is news
			{snapOf(vipTotals{key4, 110, 11000, 0}), map[string]Sample{"L1": {Bin: 1000, Stot: 10}}, nil, nil},
			// back, having counted 5 more meanwhile
			{snapOf(vipTotals{key4, 110, 11000, 0}, vipTotals{key6, 55, 5500, 0}), map[string]Sample{"L1": {Bin: 500, Stot: 5}}, nil, nil},
		}},
		{"listener without any VIP in the snapshot has no delta", "", []step{
			{snapOf(vipTotals{key4, 1, 1, 0}), map[string]Sample{"L1": {Bin: 1, Stot: 1}}, nil, nil},
			{snapOf(), map[string]Sample{}, nil, nil},
			{snapOf(vipTotals{key4, 1, 1, 0}), map[string]Sample{"L1": {}}, nil, nil},
		}},
		{"a new VIP later is news", "", []step{
			{snapOf(vipTotals{key4, 1, 100, 0}), map[string]Sample{"L1": {Bin: 100, Stot: 1}}, nil, nil},
			{snapOf(vipTotals{key4, 1, 100, 0}, vipTotals{key2, 3, 300, 0}), map[string]Sample{"L1": {}, "L2": {Bin: 300, Stot: 3}}, nil, nil},
		}},
		{"totals going backwards are a new baseline, counted as lost", "", []step{
			{snapOf(vipTotals{key4, 100, 10000, 0}), map[string]Sample{"L1": {Bin: 10000, Stot: 100}}, nil, nil},
			{snapOf(vipTotals{key4, 10, 1000, 0}), map[string]Sample{"L1": {}}, map[string][]vpp.VIPKey{LossBackwards: {key4}}, nil},
			{snapOf(vipTotals{key4, 12, 1200, 0}), map[string]Sample{"L1": {Bin: 200, Stot: 2}}, nil, nil},
		}},
		{"old-format file: first reading of each VIP is a baseline", LossOldFile, []step{
			{snapOf(vipTotals{key4, 100, 10000, 0}), map[string]Sample{"L1": {}}, map[string][]vpp.VIPKey{LossOldFile: {key4}}, nil},
			// key6 was not read at the first step, but it was recorded as
			// needing a baseline: its history is just as unknown.
			{snapOf(vipTotals{key4, 101, 10100, 0}, vipTotals{key6, 50, 5000, 0}), map[string]Sample{"L1": {Bin: 100, Stot: 1}}, map[string][]vpp.VIPKey{LossOldFile: {key6}}, nil},
			// key2 (listener L2) was in the description too: a baseline.
			{snapOf(vipTotals{key4, 101, 10100, 0}, vipTotals{key6, 51, 5100, 0}, vipTotals{key2, 7, 700, 0}), map[string]Sample{"L1": {Bin: 100, Stot: 1}, "L2": {}}, map[string][]vpp.VIPKey{LossOldFile: {key2}}, nil},
			// A listener created since is news: the file is trusted again.
			{snapOf(vipTotals{key4, 101, 10100, 0}, vipTotals{key3, 4, 400, 0}), map[string]Sample{"L1": {}, "L3": {Bin: 400, Stot: 4}}, nil,
				append(slices.Clone(dual), ListenerVIPs{ID: "L3", VIPs: []vpp.VIPKey{key3}})},
		}},
		{"corrupt file: same, with its own reason", LossCorrupt, []step{
			{snapOf(vipTotals{key4, 100, 10000, 0}, vipTotals{key2, 1, 1, 0}), map[string]Sample{"L1": {}, "L2": {}}, map[string][]vpp.VIPKey{LossCorrupt: {key4, key2}}, nil},
			{snapOf(vipTotals{key4, 105, 10500, 0}, vipTotals{key2, 1, 1, 0}), map[string]Sample{"L1": {Bin: 500, Stot: 5}, "L2": {}}, nil, nil},
		}},
		{"no file, VIPs this process created: a first start, all of it is news", LossNoFile, []step{
			{snapOf(vipTotals{key4, 5, 500, 0}), map[string]Sample{"L1": {Bin: 500, Stot: 5}}, nil, nil},
			// key6 and key2 were not read yet; created later, they are news too
			{snapOf(vipTotals{key4, 6, 600, 0}, vipTotals{key6, 2, 20, 0}, vipTotals{key2, 1, 1, 0}), map[string]Sample{"L1": {Bin: 120, Stot: 3}, "L2": {Bin: 1, Stot: 1}}, nil, nil},
		}},
		{"no file, VIPs VPP already had: a lost file, baselined", LossNoFile, []step{
			{adopted(snapOf(vipTotals{key4, 100, 10000, 0})), map[string]Sample{"L1": {}}, map[string][]vpp.VIPKey{LossNoFile: {key4}}, nil},
			{adopted(snapOf(vipTotals{key4, 101, 10100, 0}, vipTotals{key6, 50, 5000, 0})), map[string]Sample{"L1": {Bin: 100, Stot: 1}}, map[string][]vpp.VIPKey{LossNoFile: {key6}}, nil},
			{adopted(snapOf(vipTotals{key4, 102, 10200, 0}, vipTotals{key6, 50, 5000, 0}, vipTotals{key3, 9, 900, 0})), map[string]Sample{"L1": {Bin: 100, Stot: 1}, "L3": {Bin: 900, Stot: 9}}, nil,
				append(slices.Clone(dual), ListenerVIPs{ID: "L3", VIPs: []vpp.VIPKey{key3}})},
		}},
		{"untrusted stays until a step with listeners", LossCorrupt, []step{
			{snapOf(vipTotals{key4, 100, 10000, 0}), map[string]Sample{}, nil, []ListenerVIPs{}},
			{snapOf(vipTotals{key4, 100, 10000, 0}), map[string]Sample{"L1": {}}, map[string][]vpp.VIPKey{LossCorrupt: {key4}}, nil},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := NewCounterFile()
			f.Untrusted = tc.untrusted
			totals := Counters{}
			for i, s := range tc.steps {
				ls := s.listeners
				if ls == nil {
					ls = dual
				}
				// A dry run (heartbeat --print) changes nothing.
				before, _ := f.marshal()
				dry := f.Advance(s.snap, ls, false)
				if after, _ := f.marshal(); string(before) != string(after) {
					t.Fatalf("step %d: dry run changed the file", i)
				}
				got := f.Advance(s.snap, ls, true)
				if !reflect.DeepEqual(dry, got) {
					t.Fatalf("step %d: dry run %+v, real %+v", i, dry, got)
				}
				if !reflect.DeepEqual(got.Deltas, s.want) {
					t.Fatalf("step %d: deltas %+v, want %+v", i, got.Deltas, s.want)
				}
				wantLost := s.wantLost
				if wantLost == nil {
					wantLost = map[string][]vpp.VIPKey{}
				}
				for _, ks := range wantLost {
					for j := 1; j < len(ks); j++ {
						for k := j; k > 0 && ks[k].Compare(ks[k-1]) < 0; k-- {
							ks[k], ks[k-1] = ks[k-1], ks[k]
						}
					}
				}
				if !reflect.DeepEqual(got.Lost, wantLost) {
					t.Fatalf("step %d: lost %v, want %v", i, got.Lost, wantLost)
				}
				for id, d := range got.Deltas {
					totals[id] = totals[id].add(d)
				}
				if !reflect.DeepEqual(f.Listeners, totals) {
					t.Fatalf("step %d: listener totals %+v, want the sum of the deltas %+v", i, f.Listeners, totals)
				}
				// Every step survives a save and a load.
				b, err := f.marshal()
				if err != nil {
					t.Fatal(err)
				}
				g, err := parseCounterFile(b)
				if err != nil {
					t.Fatalf("step %d: reload: %v", i, err)
				}
				if !reflect.DeepEqual(f, g) {
					t.Fatalf("step %d: reload\n got %+v\nwant %+v", i, g, f)
				}
			}
		})
	}
}

func TestCounterFileOnDisk(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, CounterFileName)
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	// Missing: a first start, or a lost file (see LossNoFile).
	f, err := LoadCounterFile(path)
	if err != nil || f.Untrusted != LossNoFile || len(f.Listeners) != 0 || len(f.VIPs) != 0 {
		t.Fatalf("missing file: %+v %v", f, err)
	}
	f.Advance(snapOf(vipTotals{key4, 5, 500, 1}), []ListenerVIPs{{ID: "L1", VIPs: []vpp.VIPKey{key4}}}, true)
	if err := SaveCounterFile(path, f); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("file mode %v, %v", fi.Mode(), err)
	}
	// Octavia's entries are where Octavia reads them; ours sit beside.
	raw, _ := os.ReadFile(path)
	var generic map[string]json.RawMessage
	if err := json.Unmarshal(raw, &generic); err != nil || len(generic) != 2 {
		t.Fatalf("file content %s", raw)
	}
	var l1 map[string]int64
	if err := json.Unmarshal(generic["L1"], &l1); err != nil || !reflect.DeepEqual(l1, map[string]int64{"bin": 500, "bout": 0, "ereq": 1, "stot": 5}) {
		t.Errorf("listener entry %s (Octavia's format expected)", generic["L1"])
	}
	if !strings.Contains(string(generic["_vpp"]), `"format":1`) {
		t.Errorf("our entry %s", generic["_vpp"])
	}
	again, err := LoadCounterFile(path)
	if err != nil || !reflect.DeepEqual(again, f) {
		t.Fatalf("reload %+v %v, want %+v", again, err, f)
	}
	if c, err := LoadCounters(path); err != nil || c["L1"] != (Sample{Bin: 500, EReq: 1, Stot: 5}) {
		t.Errorf("LoadCounters %+v %v", c, err)
	}

	for _, tc := range []struct {
		name, content string
		untrusted     string
		err           bool
		listeners     Counters
	}{
		{"older agent's file", `{"L1": {"bin": 9, "bout": 0, "ereq": 1, "stot": 3}}`, LossOldFile, false, Counters{"L1": {Bin: 9, EReq: 1, Stot: 3}}},
		{"empty object", `{}`, "", false, Counters{}},
		{"not json", `{not json`, LossCorrupt, true, Counters{}},
		{"truncated", string(raw[:len(raw)/2]), LossCorrupt, true, Counters{}},
		{"listener entry of the wrong type", `{"L1": [1,2]}`, LossCorrupt, true, Counters{}},
		{"unknown format", `{"_vpp": {"format": 7, "vips": []}}`, LossCorrupt, true, Counters{}},
		{"bad prefix", `{"_vpp": {"format": 1, "vips": [{"prefix": "nope", "lb": {"raw":[0,0,0,0],"total":[0,0,0,0]}, "route": {"raw":[0,0],"total":[0,0]}}]}}`, LossCorrupt, true, Counters{}},
		{"short raw vector", `{"_vpp": {"format": 1, "vips": [{"prefix": "192.0.2.10/32", "lb": {"raw":[0],"total":[0,0,0,0]}, "route": {"raw":[0,0],"total":[0,0]}}]}}`, LossCorrupt, true, Counters{}},
		{"untrusted marker carried over", `{"L1": {"bin": 1}, "_vpp": {"format": 1, "untrusted": "old_file", "vips": []}}`, LossOldFile, false, Counters{"L1": {Bin: 1}}},
		{"unknown untrusted marker", `{"_vpp": {"format": 1, "untrusted": "whatever", "vips": []}}`, LossCorrupt, true, Counters{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			write(tc.content)
			f, err := LoadCounterFile(path)
			if (err != nil) != tc.err || f == nil || f.Untrusted != tc.untrusted || !reflect.DeepEqual(f.Listeners, tc.listeners) {
				t.Fatalf("got %+v %v", f, err)
			}
		})
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("temporary files left behind: %v", ents)
	}
}

func FuzzParseCounterFile(f *testing.F) {
	f.Add([]byte(`{"L1": {"bin": 9, "bout": 0, "ereq": 1, "stot": 3}}`))
	f.Add([]byte(`{"L1": {"bin": 1}, "_vpp": {"format": 1, "untrusted": "old_file", "vips": [{"prefix": "192.0.2.10/32", "protocol": 6, "port": 80, "reported": {"bin": 1}, "lb": {"seen": true, "boot_time_ns": 5, "index": 1, "raw":[1,2,3,4],"total":[5,6,7,8]}, "route": {"raw":[0,0],"total":[0,0]}}]}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := parseCounterFile(b)
		if err != nil {
			return
		}
		// What was accepted writes out and reads back the same, and the
		// encoder written for the heartbeat's path renders what
		// encoding/json does.
		out, err := c.marshal()
		if err != nil {
			t.Fatal(err)
		}
		if fast, _, _ := c.appendFile(nil, nil, nil); !bytes.Equal(fast, out) {
			t.Fatalf("appendFile differs from encoding/json\n got %s\nwant %s", fast, out)
		}
		again, err := parseCounterFile(out)
		if err != nil {
			t.Fatalf("own output refused: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(c, again) {
			t.Fatalf("round trip\n got %+v\nwant %+v", again, c)
		}
	})
}

// TestAgentOldCounterFileLosesOneIntervalAtMost: an agent upgraded over an
// older agent's counter file (listener totals only) cannot tell what of
// VPP's counts was reported: the first reading is a baseline, counted in
// amphora_agent_stats_baselines_total, and what follows is exact.
func TestAgentOldCounterFileLosesOneIntervalAtMost(t *testing.T) {
	for _, tc := range []struct {
		name, content, reason string
	}{
		{"older agent", `{"l1": {"bin": 123456, "bout": 0, "ereq": 0, "stot": 999}}`, LossOldFile},
		{"corrupt", `{"l1": {"bin": 12`, LossCorrupt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newFakeProber()
			p.set("10.0.0.1", "pass")
			p.set("10.0.0.2", "pass")
			dp := sim.New(sim.Config{Logger: quietLogger()})
			hm, err := net.ListenPacket("udp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer hm.Close()
			ta := newTestAgent(t, agentLB, dp, p, func(c *Config) {
				c.Controllers = []string{hm.LocalAddr().String()}
				c.HeartbeatInterval = time.Hour // the warm-up heartbeat only
				if err := os.WriteFile(c.CounterFile(), []byte(tc.content), 0o640); err != nil {
					t.Fatal(err)
				}
			})
			eventually(t, "the VIP", func() bool { return backendWeights(t, dp, vip80) != nil })
			eventually(t, "the first heartbeat", func() bool { return !ta.Sensor().Record().LastSend.IsZero() })
			if n := testutil.ToFloat64(ta.m.statsLost.WithLabelValues(tc.reason)); n != 1 {
				t.Fatalf("baselines{%s} = %v, want 1 (one VIP)", tc.reason, n)
			}
			if err := dp.SendFlows(vip80, 4, 1, 100); err != nil {
				t.Fatal(err)
			}
			msg, err := ta.BuildHeartbeat(true)
			if err != nil {
				t.Fatal(err)
			}
			if s := msg.Listeners[0].Stats; s.RX != 400 || s.TotConns != 4 {
				t.Fatalf("stats after the baseline %+v", s)
			}
			f, err := LoadCounterFile(ta.cfg.CounterFile())
			if err != nil || f.Untrusted != "" || len(f.VIPs) != 1 {
				t.Fatalf("file after the baseline: %+v %v", f, err)
			}
		})
	}
}
