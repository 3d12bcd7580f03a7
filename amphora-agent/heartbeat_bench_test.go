package agent

import (
	"context"
	crand "crypto/rand"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/octavia-vpp/health/heartbeat"
	"github.com/octavia-vpp/health/vpp"
	"github.com/octavia-vpp/health/vpp/sim"
)

// randomUUID is a version-4 UUID, as Octavia's ids are: random ids
// compress as badly as real ones do.
func randomUUID() string {
	var b [16]byte
	_, _ = crand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// benchLB describes one VIP with listeners listeners, each with a pool of
// perPool TCP-monitored members, every id a random UUID.
func benchLB(listeners, perPool int) []byte {
	type member struct {
		ID      string `json:"id"`
		Address string `json:"address"`
		Port    int    `json:"protocol_port"`
		Weight  int    `json:"weight"`
	}
	type monitor struct {
		Type    string  `json:"type"`
		Delay   float64 `json:"delay"`
		Timeout float64 `json:"timeout"`
		Retries int     `json:"max_retries"`
		Down    int     `json:"max_retries_down"`
	}
	type pool struct {
		ID      string   `json:"id"`
		Members []member `json:"members"`
		Monitor monitor  `json:"healthmonitor"`
	}
	type listener struct {
		ID       string `json:"id"`
		Protocol string `json:"protocol"`
		Port     int    `json:"protocol_port"`
		Pool     string `json:"default_pool_id"`
	}
	lb := struct {
		ID        string     `json:"loadbalancer_id"`
		VIPs      []string   `json:"vip_addresses"`
		Listeners []listener `json:"listeners"`
		Pools     []pool     `json:"pools"`
	}{ID: randomUUID(), VIPs: []string{"192.0.2.10"}}
	n := 0
	for i := range listeners {
		p := pool{ID: randomUUID(), Monitor: monitor{Type: MonitorTCP, Delay: 5, Timeout: 1, Retries: 3, Down: 3}}
		for range perPool {
			n++
			p.Members = append(p.Members, member{ID: randomUUID(), Address: fmt.Sprintf("10.%d.%d.%d", n>>16&255, n>>8&255, n&255), Port: 8080, Weight: 1})
		}
		lb.Pools = append(lb.Pools, p)
		lb.Listeners = append(lb.Listeners, listener{ID: randomUUID(), Protocol: "TCP", Port: 80 + i, Pool: p.ID})
	}
	b, err := json.Marshal(lb)
	if err != nil {
		panic(err)
	}
	return b
}

// processCPU is the CPU time the process has used, user and system.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the process's CPU per operation since start: on a
// shared machine it moves much less than wall-clock time, and waiting on
// the disk costs none.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(processCPU(b)-start)/float64(b.N), "cpu-ns/op")
}

// publishedCounters is the simulator with its counters read once, as
// vpp.Govpp publishes a snapshot per scrape: what the simulator spends
// sorting backends to count flows would otherwise be most of the cost.
// Unless unknownBoot, each VIP carries a base with VPP's boot time, as
// vpp.Govpp's do with a stats socket (the simulator has none), so that the
// counter file is written as in production.
type publishedCounters struct {
	*sim.Sim
	snap *vpp.Counters
}

func (p *publishedCounters) Counters() *vpp.Counters { return p.snap }

// traffic counts one more flow of 800 bytes on every VIP, as the next
// scrape would, so that each heartbeat reports deltas and writes the
// counter file. The agent reads the snapshot only while a heartbeat is
// built, which the benchmarks do one at a time.
func (p *publishedCounters) traffic() {
	for i := range p.snap.VIPs {
		v := &p.snap.VIPs[i]
		v.FirstPackets++
		v.RoutePackets++
		v.RouteBytes += 800
		if v.Base.LB.Seen {
			v.Base.LB.Raw[1]++
			v.Base.LB.Total[1]++
			v.Base.Route.Raw[0]++
			v.Base.Route.Total[0]++
			v.Base.Route.Raw[1] += 800
			v.Base.Route.Total[1] += 800
		}
	}
}

// benchAgent is a warm agent (not running its loops) with every member
// probed UP, VIPs pushed to the simulator, and traffic counted on each,
// as after the first heartbeats (the benchmarks add a flow per VIP before
// each heartbeat, publishedCounters.traffic). The counter file is on
// disk; with unknownBoot its records lack VPP's boot time, so each
// advancing heartbeat syncs it.
func benchAgent(b *testing.B, listeners, perPool int, unknownBoot bool, tune func(*Config)) (*Agent, *publishedCounters) {
	b.Helper()
	dir := b.TempDir()
	cfg := DefaultConfig()
	cfg.AmphoraID, cfg.HeartbeatKey = randomUUID(), "insecure-bench-key"
	cfg.BasePath, cfg.SpoolDir = dir, filepath.Join(dir, "marks")
	cfg.VPP.Dataplane, cfg.VPP.LBConfigFile = "sim", filepath.Join(dir, "lb.json")
	cfg.VPP.StartupMinDelay, cfg.VPP.StartupMaxDelay = 0, 0
	if tune != nil {
		tune(&cfg)
	}
	if err := os.WriteFile(cfg.VPP.LBConfigFile, benchLB(listeners, perPool), 0o600); err != nil {
		b.Fatal(err)
	}
	dp := &publishedCounters{Sim: sim.New(sim.Config{Logger: quietLogger()})}
	dp.snap = dp.Sim.Counters()
	a, err := New(Options{Config: &cfg, Dataplane: dp, Logger: quietLogger(), Registry: prometheus.NewRegistry(),
		Prober: func(context.Context, ProbeSpec) error { return nil }})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	a.mu.Lock()
	a.runCtx = ctx
	a.mu.Unlock()
	if err := a.loadLB(false); err != nil {
		b.Fatal(err)
	}
	a.configure(ctx)
	deadline := time.Now().Add(30 * time.Second)
	for {
		a.sync(ctx, true)
		if a.isWarm() && allProbed(a) {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("agent not warm with every member probed after 30s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, st := range mustVIPs(b, dp.Sim) {
		if err := dp.SendFlows(st.Key, 1000, 10, 800); err != nil {
			b.Fatal(err)
		}
	}
	dp.snap = dp.Sim.Counters()
	if !unknownBoot {
		boot := time.Unix(1_700_000_000, 0)
		for i := range dp.snap.VIPs {
			v := &dp.snap.VIPs[i]
			v.Base.LB = vpp.SourceBase{Seen: true, BootTime: boot, Index: i, Raw: [4]uint64{0, v.FirstPackets, 0, v.NoServerPackets},
				Total: [4]uint64{0, v.FirstPackets, 0, v.NoServerPackets}}
			v.Base.Route = vpp.SourceBase{Seen: true, BootTime: boot, Index: i, Raw: [4]uint64{v.RoutePackets, v.RouteBytes},
				Total: [4]uint64{v.RoutePackets, v.RouteBytes}}
		}
	}
	return a, dp
}

func allProbed(a *Agent) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, ms := range a.members {
		if !ms.health.Probed {
			return false
		}
	}
	return true
}

func mustVIPs(b *testing.B, dp *sim.Sim) []vpp.VIPStatus {
	b.Helper()
	sts, err := dp.VIPs(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	return sts
}

var benchShapes = []struct {
	name               string
	listeners, perPool int
}{
	{"members=100", 10, 10},
	{"members=1000", 10, 100},
}

// BenchmarkHeartbeatBuildSeal is what each heartbeat costs the agent before
// the datagram goes out: the message built from the plan and counters, the
// counter file written, JSON, zlib and HMAC. With counters=tmpfs the file
// is in /dev/shm, where a sync costs nothing: what is left is the agent's
// CPU. counters=disk-unknown-boot is a dataplane that does not give VPP's
// boot time (no stats socket), where the file is synced every time.
// wire-bytes is the datagram's size.
func BenchmarkHeartbeatBuildSeal(b *testing.B) {
	for _, s := range benchShapes {
		for _, where := range []string{"disk", "tmpfs", "disk-unknown-boot"} {
			b.Run(s.name+"/counters="+where, func(b *testing.B) {
				a, dp := benchAgent(b, s.listeners, s.perPool, where == "disk-unknown-boot", func(c *Config) {
					if where == "tmpfs" {
						c.BasePath = shmDir(b)
					}
				})
				var size int
				b.ReportAllocs()
				b.ResetTimer()
				cpu := processCPU(b)
				for range b.N {
					dp.traffic()
					a.hbMu.Lock()
					_, datagram := a.sealHeartbeat()
					size = len(datagram)
					a.hbMu.Unlock()
				}
				reportCPU(b, cpu)
				b.ReportMetric(float64(size), "wire-bytes")
			})
		}
	}
}

// shmDir is a temporary directory in /dev/shm, or skips the benchmark.
func shmDir(b *testing.B) string {
	b.Helper()
	dir, err := os.MkdirTemp("/dev/shm", "agent-bench-")
	if err != nil {
		b.Skip("no /dev/shm:", err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// BenchmarkHeartbeatSend is one whole heartbeat as the loop sends it, to a
// loopback UDP socket.
func BenchmarkHeartbeatSend(b *testing.B) {
	for _, s := range benchShapes {
		b.Run(s.name, func(b *testing.B) {
			pc, err := net.ListenPacket("udp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer pc.Close()
			go func() {
				buf := make([]byte, 65536)
				for {
					if _, _, err := pc.ReadFrom(buf); err != nil {
						return
					}
				}
			}()
			a, dp := benchAgent(b, s.listeners, s.perPool, false, func(c *Config) {
				c.Controllers = []string{pc.LocalAddr().String()}
			})
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			cpu := processCPU(b)
			for range b.N {
				dp.traffic()
				a.heartbeat(ctx)
			}
			b.StopTimer()
			reportCPU(b, cpu)
			if got := a.sensor.Record(); got.LastSend.IsZero() {
				b.Fatal("no heartbeat was sent")
			}
		})
	}
}

// BenchmarkHeartbeatBuild is the message alone, without advancing the
// counters (no counter file write) or sealing.
func BenchmarkHeartbeatBuild(b *testing.B) {
	for _, s := range benchShapes {
		b.Run(s.name, func(b *testing.B) {
			a, _ := benchAgent(b, s.listeners, s.perPool, false, nil)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := a.BuildHeartbeat(false); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSealLevels seals one agent heartbeat at every zlib level:
// JSON, deflate, HMAC. wire-bytes is the datagram's size.
func BenchmarkSealLevels(b *testing.B) {
	for _, s := range benchShapes {
		a, _ := benchAgent(b, s.listeners, s.perPool, false, nil)
		msg, err := a.BuildHeartbeat(false)
		if err != nil {
			b.Fatal(err)
		}
		for level := heartbeat.MinSealLevel; level <= heartbeat.MaxSealLevel; level++ {
			b.Run(fmt.Sprintf("%s/level=%d", s.name, level), func(b *testing.B) {
				d, err := heartbeat.NewDeflater(level)
				if err != nil {
					b.Fatal(err)
				}
				var text, out []byte
				b.ReportAllocs()
				for range b.N {
					text = msg.AppendJSON(text[:0])
					out = a.keyring.AppendSealed(out[:0], text, d)
				}
				b.ReportMetric(float64(len(out)), "wire-bytes")
				b.ReportMetric(float64(len(text)), "json-bytes")
			})
		}
	}
}
