package heartbeat

import (
	"bytes"
	"compress/zlib"
	"io"
	"math/rand/v2"
	"reflect"
	"testing"
)

func TestAppendSealedEveryLevelOpens(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	kr := keyring(t, "levels")
	prefix := []byte("kept")
	for level := MinSealLevel; level <= MaxSealLevel; level++ {
		d, err := NewDeflater(level)
		if err != nil {
			t.Fatalf("level %d: %v", level, err)
		}
		for i := 0; i < 50; i++ {
			want := randomMessage(r)
			out := kr.AppendSealed(append([]byte(nil), prefix...), want.AppendJSON(nil), d)
			if !bytes.HasPrefix(out, prefix) {
				t.Fatalf("level %d: dst overwritten", level)
			}
			got, v, err := kr.Open(out[len(prefix):])
			if err != nil {
				t.Fatalf("level %d message %d: %v", level, i, err)
			}
			if v != (Verified{0, MACHex}) || !reflect.DeepEqual(canonical(got), canonical(want)) {
				t.Fatalf("level %d message %d: round trip differs (verified %+v)", level, i, v)
			}
		}
	}
	// The sender's deflater (klauspost/compress) makes streams of its own;
	// the standard library's inflater, as strict as zlib's, reads them
	// back at every level.
	text := typicalMessage().AppendJSON(nil)
	for level := MinSealLevel; level <= MaxSealLevel; level++ {
		d, _ := NewDeflater(level)
		sealed := kr.AppendSealed(nil, text, d)
		zr, err := zlib.NewReader(bytes.NewReader(sealed[:len(sealed)-hexMACLen]))
		if err != nil {
			t.Fatalf("level %d: %v", level, err)
		}
		if got, err := io.ReadAll(zr); err != nil || !bytes.Equal(got, text) {
			t.Fatalf("level %d: compress/zlib reads %d bytes, %v", level, len(got), err)
		}
	}
	for _, bad := range []int{-2, -1, 0, 10} {
		if _, err := NewDeflater(bad); err == nil {
			t.Errorf("level %d accepted", bad)
		}
	}
}

func TestAppendSealedAllocatesNothing(t *testing.T) {
	if sealRace {
		t.Skip("allocation counts under the race detector")
	}
	kr := keyring(t, "insecure")
	text := typicalMessage().AppendJSON(nil)
	d, _ := NewDeflater(1)
	buf := make([]byte, 0, 8<<10)
	allocs := testing.AllocsPerRun(50, func() {
		buf = kr.AppendSealed(buf[:0], text, d)
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per seal into a large enough buffer", allocs)
	}
}
