package heartbeat

import (
	"compress/zlib"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"
)

// Deflate levels a sender may seal at. Octavia's agent uses 9; the
// manager inflates any level, so the choice only trades the sender's CPU
// against datagram size (docs/performance.md, "Amphora agent").
const (
	MinSealLevel = zlib.BestSpeed
	MaxSealLevel = zlib.BestCompression
)

// sealWriters holds, per level, zlib writers whose window and hash tables
// (about 1 MB at level 9) are reused rather than allocated per message.
var sealWriters [MaxSealLevel + 1]sync.Pool

// sealWriter is a zlib writer bound for good to the buffer it appends to.
type sealWriter struct {
	zw  *zlib.Writer
	out appendBuffer
}

// appendBuffer is an io.Writer appending to a slice the caller owns.
type appendBuffer struct{ b []byte }

func (w *appendBuffer) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// AppendSealed appends to dst the datagram of JSON text compressed at
// level (MinSealLevel to MaxSealLevel) followed by the lowercase hex HMAC
// of the primary key, and returns the extended slice. With a dst of
// enough capacity nothing is allocated.
func (kr *Keyring) AppendSealed(dst, text []byte, level int) ([]byte, error) {
	if level < MinSealLevel || level > MaxSealLevel {
		return dst, fmt.Errorf("zlib level %d not in %d-%d", level, MinSealLevel, MaxSealLevel)
	}
	sw, _ := sealWriters[level].Get().(*sealWriter)
	if sw == nil {
		sw = &sealWriter{}
		// The level is checked above, so this cannot fail.
		sw.zw, _ = zlib.NewWriterLevel(&sw.out, level)
	} else {
		sw.zw.Reset(&sw.out)
	}
	start := len(dst)
	sw.out.b = dst
	// Writes to an appendBuffer cannot fail.
	_, _ = sw.zw.Write(text)
	_ = sw.zw.Close()
	out := sw.out.b
	sw.out.b = nil
	sealWriters[level].Put(sw)
	var sum [sha256.Size]byte
	var hexSum [hexMACLen]byte
	hex.Encode(hexSum[:], kr.keys[0].sum(sum[:0], out[start:]))
	return append(out, hexSum[:]...), nil
}
