package heartbeat

import (
	"bytes"
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
	text := typicalMessage().AppendJSON(nil)
	d, _ := NewDeflater(MaxSealLevel)
	if !bytes.Equal(kr.AppendSealed(nil, text, d), kr.Seal(text)) {
		t.Error("level 9 differs from Seal")
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
