package heartbeat

import (
	"encoding/json"
	"fmt"
	"testing"
)

// typicalMessage is the shape the performance targets name: V3, two
// listeners, two pools (one per listener), ten members, UUID ids.
func typicalMessage() *Message {
	uuid := func(kind, i int) string {
		return fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", 0x1000000*kind+i, kind, i, i, 0xabcdef0000+i)
	}
	m := &Message{AmphoraID: uuid(1, 1), Seq: 123456, HasSeq: true, Version: 3, HasVersion: true}
	statuses := []string{"UP", "UP", "UP", "DOWN", "no check"}
	for l := 0; l < 2; l++ {
		lid := uuid(2, l)
		m.Listeners = append(m.Listeners, Listener{
			ID: lid, Status: "OPEN", HasStats: true,
			Stats: Stats{TX: 123456789, RX: 98765432, Conns: 42, TotConns: 1234, EReq: 3},
		})
		p := Pool{Key: uuid(3, l) + ":" + lid, Status: "UP"}
		for i := 0; i < 5; i++ {
			p.Members = append(p.Members, Member{ID: uuid(4, 10*l+i), Status: statuses[i]})
		}
		m.Pools = append(m.Pools, p)
	}
	return m
}

// BenchmarkOpenTypical is the whole receive path for one datagram: MAC,
// inflate, UTF-8 check, JSON parse and mapping to Message.
func BenchmarkOpenTypical(b *testing.B) {
	kr := keyring(b, "insecure")
	datagram := kr.SealMessage(typicalMessage())
	b.SetBytes(int64(len(datagram)))
	b.ReportAllocs()
	start := processCPU()
	for b.Loop() {
		if _, _, err := kr.Open(datagram); err != nil {
			b.Fatal(err)
		}
	}
	cpuPerOp(b, start)
}

// BenchmarkOpenTypicalRawMAC is a legacy datagram: the hex attempt fails
// first, so it costs one more HMAC.
func BenchmarkOpenTypicalRawMAC(b *testing.B) {
	kr := keyring(b, "insecure")
	text := typicalMessage().AppendJSON(nil)
	datagram := sealWith("insecure", text, MACRaw, 9)
	b.ReportAllocs()
	start := processCPU()
	for b.Loop() {
		if _, _, err := kr.Open(datagram); err != nil {
			b.Fatal(err)
		}
	}
	cpuPerOp(b, start)
}

// BenchmarkOpenBadMAC is the cost of a forged datagram: two HMACs and no
// inflation.
func BenchmarkOpenBadMAC(b *testing.B) {
	kr := keyring(b, "insecure")
	datagram := keyring(b, "other").SealMessage(typicalMessage())
	b.ReportAllocs()
	start := processCPU()
	for b.Loop() {
		if _, _, err := kr.Open(datagram); ReasonOf(err) != ReasonBadMAC {
			b.Fatal(err)
		}
	}
	cpuPerOp(b, start)
}

// The decode step alone, with our decoder and with encoding/json, which is
// what the custom decoder was chosen against (docs/performance.md).
func BenchmarkDecodeTypical(b *testing.B) {
	text := typicalMessage().AppendJSON(nil)
	// DecodeMessage keeps every odd shape Octavia tolerates (the Message
	// records it), which is what the receiver runs unless
	// strict_heartbeats is on.
	b.Run("tree", func(b *testing.B) {
		b.ReportAllocs()
		start := processCPU()
		for b.Loop() {
			if _, err := DecodeMessage(text); err != nil {
				b.Fatal(err)
			}
		}
		cpuPerOp(b, start)
	})
	// encoding/json cannot give the datagram's key order or Python's
	// duplicate-key positions, so this is a lower bound on what a stdlib
	// decoder would cost.
	type stdStats struct{ TX, RX, Conns, TotConns, EReq json.Number }
	type stdListener struct {
		Status string
		Stats  *stdStats
	}
	type stdPool struct {
		Status  string
		Members map[string]string
	}
	type stdMessage struct {
		ID        string
		Seq       *json.Number
		Ver       *json.Number
		Listeners map[string]stdListener
		Pools     map[string]stdPool
	}
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var m stdMessage
			if err := json.Unmarshal(text, &m); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json-generic", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var m map[string]any
			if err := json.Unmarshal(text, &m); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkSealTypical(b *testing.B) {
	kr := keyring(b, "insecure")
	m := typicalMessage()
	b.ReportAllocs()
	for b.Loop() {
		kr.SealMessage(m)
	}
}

func BenchmarkAppendJSONTypical(b *testing.B) {
	m := typicalMessage()
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		buf = m.AppendJSON(buf[:0])
	}
}
