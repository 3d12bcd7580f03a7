package heartbeat

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
)

// randomUUID is a version 4 UUID from r: real ids share no prefixes, which
// matters to hashing and to comparisons that stop at the first byte.
func randomUUID(r *rand.Rand) string {
	hi, lo := r.Uint64(), r.Uint64()
	hi = hi&^0xf000 | 0x4000     // version 4
	lo = lo&^(0xc<<60) | 0x8<<60 // variant 10
	return fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", hi>>32, hi>>16&0xffff, hi&0xffff, lo>>48, lo&0xffffffffffff)
}

// scaledMessage is a V3 message with two listeners and one pool per
// listener, members split between the pools, with random UUIDs and the
// status mix of a real fleet.
func scaledMessage(members int) *Message {
	r := rand.New(rand.NewPCG(uint64(members), 20))
	m := &Message{AmphoraID: randomUUID(r), Seq: 123456, HasSeq: true, Version: 3, HasVersion: true}
	statuses := []string{"UP", "UP", "UP", "UP", "DOWN", "no check", "DRAIN", "UP"}
	for l := 0; l < 2; l++ {
		lid := randomUUID(r)
		m.Listeners = append(m.Listeners, Listener{
			ID: lid, Status: "OPEN", HasStats: true,
			Stats: Stats{TX: 123456789, RX: 98765432, Conns: 42, TotConns: 1234, EReq: 3},
		})
		p := Pool{Key: randomUUID(r) + ":" + lid, Status: "UP"}
		n := members / 2
		if l == 0 {
			n += members % 2
		}
		for i := 0; i < n; i++ {
			p.Members = append(p.Members, Member{ID: randomUUID(r), Status: statuses[i%len(statuses)]})
		}
		m.Pools = append(m.Pools, p)
	}
	return m
}

// BenchmarkOpenMembers is the whole receive path (MAC, inflate, decode) as
// the message grows; ns/op divided by the member count is the per-member
// cost of decoding.
func BenchmarkOpenMembers(b *testing.B) {
	kr := keyring(b, "insecure")
	for _, n := range []int{4, 20, 100, 1000} {
		datagram := kr.SealMessage(scaledMessage(n))
		b.Run("members="+strconv.Itoa(n), func(b *testing.B) {
			b.SetBytes(int64(len(datagram)))
			b.ReportAllocs()
			start := processCPU()
			for b.Loop() {
				if _, _, err := kr.Open(datagram); err != nil {
					b.Fatal(err)
				}
			}
			cpuPerOp(b, start)
		})
	}
}

// BenchmarkDecodeMembers is the JSON decode alone as the message grows.
func BenchmarkDecodeMembers(b *testing.B) {
	for _, n := range []int{4, 20, 100, 1000} {
		text := scaledMessage(n).AppendJSON(nil)
		b.Run("members="+strconv.Itoa(n), func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			b.ReportAllocs()
			start := processCPU()
			for b.Loop() {
				if _, err := DecodeMessage(text); err != nil {
					b.Fatal(err)
				}
			}
			cpuPerOp(b, start)
		})
	}
}

// BenchmarkInflateMembers is the zlib step alone.
func BenchmarkInflateMembers(b *testing.B) {
	kr := keyring(b, "insecure")
	for _, n := range []int{10, 1000} {
		datagram := kr.SealMessage(scaledMessage(n))
		payload := datagram[:len(datagram)-hexMACLen]
		b.Run("members="+strconv.Itoa(n), func(b *testing.B) {
			b.SetBytes(int64(len(payload)))
			b.ReportAllocs()
			start := processCPU()
			for b.Loop() {
				if _, err := inflate(payload, DefaultMaxInflatedBytes); err != nil {
					b.Fatal(err)
				}
			}
			cpuPerOp(b, start)
		})
	}
}
