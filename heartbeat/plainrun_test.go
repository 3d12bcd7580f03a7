package heartbeat

import (
	"math/rand/v2"
	"testing"
)

// plainRun must stop exactly where a byte-at-a-time scan stops.
func TestPlainRunMatchesByteScan(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	alphabet := []byte("ab09-\"\\\x00\x1f\x20\x7f\x80\xff\xe9")
	for round := 0; round < 20000; round++ {
		b := make([]byte, r.IntN(40))
		for i := range b {
			if r.IntN(6) == 0 {
				b[i] = alphabet[r.IntN(len(alphabet))]
			} else {
				b[i] = byte('a' + r.IntN(26))
			}
		}
		text := string(b)
		for start := 0; start <= len(text); start++ {
			want := start
			for want < len(text) && !stringStop[text[want]] {
				want++
			}
			if got := plainRun(text, start); got != want {
				t.Fatalf("plainRun(%q, %d) = %d, want %d", text, start, got, want)
			}
		}
	}
}

// asciiRun must stop exactly where a byte-at-a-time scan for a string's
// end, an escape, a control byte or a byte from 0x80 on stops.
func TestASCIIRunMatchesByteScan(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for round := 0; round < 20000; round++ {
		b := make([]byte, r.IntN(40))
		for i := range b {
			if r.IntN(6) == 0 {
				b[i] = byte(r.IntN(256))
			} else {
				b[i] = byte(' ' + r.IntN(0x60))
			}
		}
		text := string(b)
		for start := 0; start <= len(text); start++ {
			want := start
			for want < len(text) && !stringStop[text[want]] && text[want] < 0x80 {
				want++
			}
			if got := asciiRun(text, start); got != want {
				t.Fatalf("asciiRun(%q, %d) = %d, want %d", text, start, got, want)
			}
		}
	}
}
