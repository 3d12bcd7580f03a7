package pgstore

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/octavia-vpp/health/healthdb"
)

// randomLB makes a load balancer with ids and statuses of any length and
// content, nil and empty slices both.
func randomLB(r *rand.Rand) *healthdb.LoadBalancer {
	uuid := func() string {
		const hex = "0123456789abcdef"
		b := []byte("xxxxxxxx-xxxx-4xxx-8xxx-xxxxxxxxxxxx")
		for i := range b {
			if b[i] == 'x' {
				b[i] = hex[r.IntN(16)]
			}
		}
		switch r.IntN(6) {
		case 0: // upper case: not the form kept in 16 bytes
			return strings.ToUpper(string(b))
		case 1: // a dash out of place
			b[8], b[9] = b[9], b[8]
		case 2: // not hex
			b[r.IntN(8)] = 'g'
		}
		return string(b)
	}
	str := func() string {
		switch r.IntN(6) {
		case 4, 5:
			return uuid()
		case 0:
			return "" // empty
		case 1: // odd bytes, long enough for a two-byte length
			b := make([]byte, r.IntN(300))
			for i := range b {
				b[i] = byte(r.UintN(256))
			}
			return string(b)
		default:
			return strings.Repeat("x", r.IntN(40)) + string(rune('a'+r.IntN(26)))
		}
	}
	status := func() string {
		if r.IntN(5) == 0 {
			return str()
		}
		return []string{healthdb.StatusOnline, healthdb.StatusOffline, healthdb.StatusError, "ACTIVE", "PENDING_UPDATE"}[r.IntN(5)]
	}
	count := func() (int, bool) { return r.IntN(4), r.IntN(5) == 0 }
	lb := &healthdb.LoadBalancer{ID: str(), Enabled: r.IntN(2) == 0, ProvisioningStatus: status(), OperatingStatus: status()}
	if n, isNil := count(); !isNil {
		lb.Listeners = make([]healthdb.Listener, n)
		for i := range lb.Listeners {
			lb.Listeners[i] = healthdb.Listener{ID: str(), OperatingStatus: status(), Protocol: status(),
				Enabled: r.IntN(2) == 0, DefaultPoolHasEnabledMember: r.IntN(2) == 0}
		}
	}
	if n, isNil := count(); !isNil {
		lb.Pools = make([]healthdb.Pool, n)
		for i := range lb.Pools {
			lb.Pools[i] = healthdb.Pool{ID: str(), OperatingStatus: status()}
			if n, isNil := count(); !isNil {
				lb.Pools[i].Members = make([]healthdb.Member, n*3)
				for j := range lb.Pools[i].Members {
					lb.Pools[i].Members[j] = healthdb.Member{ID: str(), OperatingStatus: status()}
				}
			}
		}
	}
	return lb
}

func TestCompactRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var table codeTable
	for i := range 3000 {
		lb := randomLB(r)
		blob := table.compact(lb)
		if got := blobID(blob); got != lb.ID {
			t.Fatalf("#%d: blobID = %q, want %q", i, got, lb.ID)
		}
		got := table.expand(blob)
		if !reflect.DeepEqual(got, lb) {
			t.Fatalf("#%d: expand(compact(lb)) =\n%#v\nwant\n%#v", i, got, lb)
		}
		// The expansion is the batch's own: changing it leaves the blob
		// as it was.
		got.OperatingStatus = "changed"
		for j := range got.Pools {
			got.Pools[j].Members = append(got.Pools[j].Members, healthdb.Member{ID: "appended"})
		}
		if again := table.expand(blob); !reflect.DeepEqual(again, lb) {
			t.Fatalf("#%d: a changed expansion changed the next one", i)
		}
	}
	if len(table.names) > maxCodes {
		t.Errorf("code table has %d names, bound %d", len(table.names), maxCodes)
	}
}

// TestCompactSize pins the footprint the bound's default is sized for: a
// load balancer of 2 listeners, 2 pools and 20 members with UUIDs.
func TestCompactSize(t *testing.T) {
	id := func(i int) string {
		return "3f2b8c1e-0000-4000-8000-" + strings.Repeat("0", 8) + string(rune('a'+i/6)) + string(rune('a'+i%6)) + "00"
	}
	lb := &healthdb.LoadBalancer{ID: id(0), Enabled: true, ProvisioningStatus: "ACTIVE", OperatingStatus: healthdb.StatusOnline}
	for i := range 2 {
		lb.Listeners = append(lb.Listeners, healthdb.Listener{ID: id(1 + i), OperatingStatus: healthdb.StatusOnline, Protocol: "TCP", Enabled: true})
		p := healthdb.Pool{ID: id(3 + i), OperatingStatus: healthdb.StatusOnline}
		for j := range 10 {
			p.Members = append(p.Members, healthdb.Member{ID: id(5 + 10*i + j), OperatingStatus: healthdb.StatusOnline})
		}
		lb.Pools = append(lb.Pools, p)
	}
	var table codeTable
	blob := table.compact(lb)
	// The load balancer's id as it is, 24 UUIDs in 17 bytes, a status
	// code each and a few more bytes.
	if want := 37 + 24*18 + 20; len(blob) > want {
		t.Errorf("blob of %d bytes, want at most %d", len(blob), want)
	}
	if !reflect.DeepEqual(table.expand(blob), lb) {
		t.Error("round trip")
	}
}

// BenchmarkExpand is the cache's cost per heartbeat besides its version
// check: one load balancer of 2 listeners and 2 pools, with random v4
// UUIDs, expanded from its compact entry.
func BenchmarkExpand(b *testing.B) {
	for _, perPool := range []int{10, 50} {
		b.Run(fmt.Sprintf("members=%d", 2*perPool), func(b *testing.B) {
			r := rand.New(rand.NewPCG(3, 4))
			uuid := func() string {
				var u [16]byte
				for i := range u {
					u[i] = byte(r.UintN(256))
				}
				u[6], u[8] = u[6]&0x0f|0x40, u[8]&0x3f|0x80
				return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
			}
			lb := &healthdb.LoadBalancer{ID: uuid(), Enabled: true, ProvisioningStatus: "ACTIVE", OperatingStatus: healthdb.StatusOnline}
			for range 2 {
				lb.Listeners = append(lb.Listeners, healthdb.Listener{ID: uuid(), OperatingStatus: healthdb.StatusOnline,
					Protocol: "HTTP", Enabled: true, DefaultPoolHasEnabledMember: true})
				p := healthdb.Pool{ID: uuid(), OperatingStatus: healthdb.StatusOnline}
				for range perPool {
					p.Members = append(p.Members, healthdb.Member{ID: uuid(), OperatingStatus: healthdb.StatusOnline})
				}
				lb.Pools = append(lb.Pools, p)
			}
			var table codeTable
			blob := table.compact(lb)
			if got := table.expand(blob); !reflect.DeepEqual(got, lb) {
				b.Fatalf("expand(compact(lb)) = %#v, want %#v", got, lb)
			}
			b.ReportAllocs()
			for b.Loop() {
				table.expand(blob)
			}
		})
	}
}
