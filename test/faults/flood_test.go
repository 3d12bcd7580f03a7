//go:build faults

package faults

import (
	"bytes"
	"compress/zlib"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/octavia-vpp/health/healthdb/failover/failovertest"
	"github.com/octavia-vpp/health/test/pgtest"
)

const (
	floodAmphorae = 200
	// floodRate is the target for invalid datagrams per second
	// (FAULTS_FLOOD_RATE overrides it); the figures report what the
	// generator achieved.
	floodRate     = 100_000
	floodDuration = 15 * time.Second
	floodSenders  = 2
	// floodRSSBound is the peak resident memory allowed. The receive queue
	// alone may hold queue_size/8 = 2,048 datagrams of up to 64 KiB (128
	// MiB); the rest of the manager needs tens of MiB.
	floodRSSBound = 256 << 20
)

// garbage is one kind of invalid datagram and its share of the flood.
type garbage struct {
	kind   string
	reason string // the rejection reason the manager must count
	weight int
	make   func(r *rand.Rand) []byte
}

func randomBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// hexMAC seals payload as an amphora does, with key.
func hexMAC(key string, payload []byte) []byte {
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write(payload)
	return append(append([]byte(nil), payload...), hex.EncodeToString(mac.Sum(nil))...)
}

// zipBomb is one zlib stream of n zero bytes: about a thousandth of n.
func zipBomb(n int) []byte {
	var buf bytes.Buffer
	w, _ := zlib.NewWriterLevel(&buf, zlib.BestCompression)
	zeros := make([]byte, 1<<20)
	for ; n > 0; n -= len(zeros) {
		_, _ = w.Write(zeros[:min(n, len(zeros))])
	}
	_ = w.Close()
	return buf.Bytes()
}

// garbageKinds is the flood's mix; weights are per 2,000 datagrams.
func garbageKinds(valid []byte) []garbage {
	// 8 MiB of zeros, twice max_heartbeat_bytes, in about 8 KB.
	bomb := zipBomb(8 << 20)
	deflate := func(text []byte) []byte {
		var buf bytes.Buffer
		w := zlib.NewWriter(&buf)
		_, _ = w.Write(text)
		_ = w.Close()
		return buf.Bytes()
	}
	return []garbage{
		{"random", "bad_mac", 1200, func(r *rand.Rand) []byte { return randomBytes(r, 64+r.IntN(1400)) }},
		{"short", "short", 200, func(r *rand.Rand) []byte { return randomBytes(r, r.IntN(32)) }},
		{"bad_mac", "bad_mac", 400, func(r *rand.Rand) []byte {
			d := append([]byte(nil), valid...)
			d[len(d)-1-r.IntN(64)] ^= 0x01
			return d
		}},
		{"bomb_wrong_key", "bad_mac", 100, func(*rand.Rand) []byte { return hexMAC("not-"+heartbeatKey, bomb) }},
		{"bomb_unkeyed", "bad_mac", 60, func(*rand.Rand) []byte { return hexMAC("", bomb) }},
		{"oversized", "bad_mac", 20, func(r *rand.Rand) []byte { return randomBytes(r, 65_000) }},
		{"signed_not_utf8", "not_utf8", 19, func(r *rand.Rand) []byte { return hexMAC(heartbeatKey, deflate(randomBytes(r, 200))) }},
		// A bomb with the right key (a leaked key) is inflated up to
		// max_heartbeat_bytes and no further.
		{"bomb_signed", "too_large", 1, func(*rand.Rand) []byte { return hexMAC(heartbeatKey, bomb) }},
	}
}

// Invalid datagrams arrive far faster than heartbeats (bad MACs, random
// bytes, zip bombs, oversized ones) while 200 amphorae heartbeat as usual.
// Every valid heartbeat is applied, each kind of garbage is counted under
// its rejection reason, and the manager's memory stays bounded.
func TestGarbageFlood(t *testing.T) {
	srv := pgtest.NewServer(t)
	d := db{t, srv.URL()}
	fake := failovertest.New(t)
	f := newFleet(t, srv.URL(), floodAmphorae)
	hm := startHM(t, "hm", writeConfig(t, hmConfig{database: srv.URL(), fake: fake,
		extra: "sock_rlimit = 4194304\n"}))
	f.setTargets(hm.udp)
	f.start()
	waitUntil(t, 30*time.Second, "every amphora's health row", func() bool {
		rows, _ := d.healthRows(time.Time{})
		return rows == floodAmphorae
	})
	// The watcher armed: a lost heartbeat could now cause a failover.
	time.Sleep(heartbeatTimeout)
	before := hm.scrape()
	validBefore := f.totalSent()
	rate := floodRate
	if v := os.Getenv("FAULTS_FLOOD_RATE"); v != "" {
		var err error
		if rate, err = strconv.Atoi(v); err != nil || rate <= 0 {
			t.Fatalf("FAULTS_FLOOD_RATE=%q: want datagrams per second", v)
		}
	}

	// A pool of prepared datagrams, weighted by kind, sent round and round.
	r := rand.New(rand.NewPCG(11, 12))
	var pool [][]byte
	var kindOf []int
	kinds := garbageKinds(f.datagrams[0])
	for k, g := range kinds {
		for i := 0; i < g.weight; i++ {
			pool = append(pool, g.make(r))
			kindOf = append(kindOf, k)
		}
	}
	r.Shuffle(len(pool), func(i, j int) {
		pool[i], pool[j] = pool[j], pool[i]
		kindOf[i], kindOf[j] = kindOf[j], kindOf[i]
	})
	perKind := make([]atomic.Int64, len(kinds))
	var garbageSent atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), floodDuration)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for s := 0; s < floodSenders; s++ {
		wg.Add(1)
		go func(s int) {
			defer wg.Done()
			floodSender(ctx, t, hm.udp, float64(rate)/floodSenders, s, pool, kindOf, perKind, &garbageSent)
		}(s)
	}
	wg.Wait()
	floodTime := time.Since(start)
	peakDuringFlood := hm.peakRSS()
	// The valid load runs on a little past the flood, then stops.
	time.Sleep(2 * time.Second)
	f.stop()
	validSent := f.totalSent() - validBefore

	var after metrics
	waitUntil(t, 30*time.Second, "the manager to drain its queues", func() bool {
		after = hm.scrape()
		return after.get("octavia_hm_queue_length") == 0
	})
	time.Sleep(time.Second) // a last stats flush
	after = hm.scrape()
	delta := func(name string, labelPairs ...string) float64 {
		return after.get(name, labelPairs...) - before.get(name, labelPairs...)
	}
	applied := delta("octavia_hm_heartbeats_applied_total", "outcome", "written")
	accepted := delta("octavia_hm_heartbeats_accepted_total")
	received := delta("octavia_hm_datagrams_received_total")
	kernelDropped := delta("octavia_hm_queue_dropped_total", "queue", "socket")
	receiveDropped := delta("octavia_hm_queue_dropped_total", "queue", "receive")
	suppressed := delta("octavia_hm_health_checks_suppressed_total", "reason", "health_queue_dropping")
	validLost := float64(validSent) - applied
	// Datagrams sent that the manager neither read nor saw counted as
	// dropped by the kernel: 0 (or a few heartbeats sent before the first
	// scrape and read after it, negative) in all runs but one, which had
	// 0.14 %. Reported, not asserted.
	allSent := float64(garbageSent.Load() + validSent)
	unaccounted := allSent - (received + kernelDropped)
	// listener_statistics holds the deltas of every heartbeat the manager
	// verified, since it started.
	want := f.expected(int64(after.get("octavia_hm_heartbeats_accepted_total")))
	got := d.stats()
	sentBy := ""
	for k, g := range kinds {
		sentBy += g.kind + ":" + itoa(perKind[k].Load()) + ","
	}
	fault(t, "garbage_flood", "duration_s", floodTime.Seconds(), "target_per_s", rate,
		"garbage_sent", garbageSent.Load(), "achieved_per_s", float64(garbageSent.Load())/floodTime.Seconds(),
		"sent_by_kind", sentBy[:len(sentBy)-1], "received", received, "read_per_s", received/floodTime.Seconds(),
		"kernel_dropped", kernelDropped, "receive_queue_dropped", receiveDropped, "unaccounted", unaccounted,
		"valid_sent", validSent, "valid_verified", accepted, "valid_applied", applied,
		"valid_too_late", delta("octavia_hm_heartbeats_applied_total", "outcome", "too_late"), "valid_lost", validLost,
		"stats_exact_for_verified", got == want,
		"rejected", after.byLabel("octavia_hm_heartbeats_rejected_total", "reason"),
		"suppressed_checks", suppressed, "failovers", len(fake.Failovers()),
		"peak_rss_mib", float64(peakDuringFlood>>20), "rss_bound_mib", floodRSSBound>>20)

	// A datagram the kernel or the receive queue drops is lost before
	// anyone knows whether it was valid: past the rate the manager can
	// read, valid heartbeats are lost with the garbage. What must hold is
	// that no valid heartbeat is lost once read, that every loss is
	// counted, and that losses stop failovers instead of causing them.
	// Verified heartbeats may still wait too long for a starved CPU: they
	// are dropped as too_late (or by a full health queue), counted, and
	// suppress failovers like the others.
	// Totals since the manager started: a heartbeat verified before the
	// flood may be applied during it.
	verifiedTotal := after.get("octavia_hm_heartbeats_accepted_total")
	appliedTotal := after.get("octavia_hm_heartbeats_applied_total", "outcome", "written")
	lateTotal := after.get("octavia_hm_heartbeats_applied_total", "outcome", "too_late") +
		after.get("octavia_hm_queue_dropped_total", "queue", "health")
	if appliedTotal+lateTotal != verifiedTotal {
		t.Errorf("%.0f valid heartbeats verified but %.0f applied and %.0f counted late or dropped",
			verifiedTotal, appliedTotal, lateTotal)
	}
	if validLost > kernelDropped+receiveDropped {
		t.Errorf("%.0f valid heartbeats lost but only %.0f datagrams counted as dropped", validLost, kernelDropped+receiveDropped)
	}
	if validLost > 0 && suppressed == 0 {
		t.Errorf("%.0f valid heartbeats lost and no health check suppressed", validLost)
	}
	if got != want {
		t.Errorf("listener_statistics %+v; want the deltas of the %.0f heartbeats verified, %+v",
			got, after.get("octavia_hm_heartbeats_accepted_total"), want)
	}
	for k, g := range kinds {
		if perKind[k].Load() > 0 && delta("octavia_hm_heartbeats_rejected_total", "reason", g.reason) == 0 {
			t.Errorf("%s garbage sent but no %s rejection counted", g.kind, g.reason)
		}
	}
	if peakDuringFlood > floodRSSBound {
		t.Errorf("peak RSS %d MiB; want at most %d MiB", peakDuringFlood>>20, floodRSSBound>>20)
	}
	if n := len(fake.Failovers()); n != 0 {
		t.Errorf("%d failovers under a garbage flood: %v", n, fake.Failovers())
	}
	hm.stop()
}

// floodSender sends the pool round and round at rate datagrams per
// second, until ctx ends.
func floodSender(ctx context.Context, t *testing.T, to netip.AddrPort, rate float64, s int, pool [][]byte, kindOf []int,
	perKind []atomic.Int64, sent *atomic.Int64) {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Error(err)
		return
	}
	defer conn.Close()
	_ = conn.SetWriteBuffer(4 << 20)
	start := time.Now()
	var n int64
	for i := s * 7919 % len(pool); ctx.Err() == nil; {
		due := int64(rate*time.Since(start).Seconds()) + 1
		if n >= due {
			time.Sleep(200 * time.Microsecond)
			continue
		}
		for ; n < due && ctx.Err() == nil; n++ {
			if _, err := conn.WriteToUDPAddrPort(pool[i], to); err == nil {
				perKind[kindOf[i]].Add(1)
				sent.Add(1)
			}
			i = (i + 1) % len(pool)
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
