package heartbeat

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkOpenRandomGarbage is the commonest datagram of a flood: random
// bytes, whose tail is no hex digest, so only the raw form is hashed.
func BenchmarkOpenRandomGarbage(b *testing.B) {
	kr := keyring(b, "insecure", "previous")
	r := rand.New(rand.NewPCG(1, 2))
	datagram := make([]byte, 800)
	for i := range datagram {
		datagram[i] = byte(r.Uint32())
	}
	b.SetBytes(int64(len(datagram)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := kr.Open(datagram); ReasonOf(err) != ReasonBadMAC {
			b.Fatal(err)
		}
	}
}
