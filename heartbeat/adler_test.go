package heartbeat

import (
	"hash/adler32"
	"math/rand/v2"
	"testing"
)

func TestAdler32MatchesStdlib(t *testing.T) {
	r := rand.New(rand.NewPCG(32, 32))
	sizes := []int{0, 1, 7, 8, 9, 15, 16, 17, 1000, 5551, 5552, 5553, 65535, 65536, 65537, 200_000}
	for _, n := range sizes {
		for _, fill := range []string{"random", "0xff", "zero"} {
			p := make([]byte, n)
			for i := range p {
				switch fill {
				case "random":
					p[i] = byte(r.Uint32())
				case "0xff":
					p[i] = 0xff
				}
			}
			if got, want := adler32Sum(p), adler32.Checksum(p); got != want {
				t.Errorf("%d bytes of %s: %08x, want %08x", n, fill, got, want)
			}
		}
	}
}

func FuzzAdler32(f *testing.F) {
	f.Add([]byte("heartbeat"))
	f.Fuzz(func(t *testing.T, p []byte) {
		if got, want := adler32Sum(p), adler32.Checksum(p); got != want {
			t.Fatalf("%08x, want %08x", got, want)
		}
	})
}
