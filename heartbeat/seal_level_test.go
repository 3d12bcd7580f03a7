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
		for i := 0; i < 50; i++ {
			want := randomMessage(r)
			out, err := kr.AppendSealed(append([]byte(nil), prefix...), want.AppendJSON(nil), level)
			if err != nil {
				t.Fatalf("level %d: %v", level, err)
			}
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
	nine, _ := kr.AppendSealed(nil, text, MaxSealLevel)
	if !bytes.Equal(nine, kr.Seal(text)) {
		t.Error("level 9 differs from Seal")
	}
	for _, bad := range []int{-1, 0, 10} {
		if _, err := kr.AppendSealed(nil, text, bad); err == nil {
			t.Errorf("level %d accepted", bad)
		}
	}
}

func TestAppendSealedReusesCapacity(t *testing.T) {
	kr := keyring(t, "insecure")
	text := typicalMessage().AppendJSON(nil)
	buf := make([]byte, 0, 8<<10)
	buf, _ = kr.AppendSealed(buf[:0], text, 6) // warm the writer pool
	allocs := testing.AllocsPerRun(50, func() {
		buf, _ = kr.AppendSealed(buf[:0], text, 6)
	})
	// The pool may drop a writer at a GC; on average nothing is allocated.
	if allocs > 1 {
		t.Errorf("%.1f allocations per seal into a large enough buffer", allocs)
	}
}
