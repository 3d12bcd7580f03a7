package heartbeat

import (
	"github.com/klauspost/compress/zlib"
	"encoding/hex"
	"fmt"
)

// Deflate levels a sender may seal at. Octavia's agent uses 9; the
// manager inflates any level, so the choice only trades the sender's CPU
// against datagram size (docs/performance.md, "Amphora agent").
const (
	MinSealLevel = zlib.BestSpeed
	MaxSealLevel = zlib.BestCompression
)

// Deflater is a zlib writer kept by one sender for all its messages: its
// window and hash tables (about 0.9 MB at level 1, 1.4 MB at 9) are
// allocated once instead of per message, which a sync.Pool emptied by
// every GC between two heartbeats would do. It is not safe for concurrent
// use. It is klauspost/compress's deflater: at level 1 it takes about a
// third of the standard library's CPU for a slightly smaller datagram
// (docs/performance.md, "Amphora agent"); any zlib inflater reads it.
type Deflater struct {
	zw  *zlib.Writer
	out appendBuffer
}

// NewDeflater returns a deflater at level (MinSealLevel to MaxSealLevel).
func NewDeflater(level int) (*Deflater, error) {
	if level < MinSealLevel || level > MaxSealLevel {
		return nil, fmt.Errorf("zlib level %d not in %d-%d", level, MinSealLevel, MaxSealLevel)
	}
	d := &Deflater{}
	var err error
	d.zw, err = zlib.NewWriterLevel(&d.out, level)
	return d, err
}

// appendBuffer is an io.Writer appending to a slice the caller owns.
type appendBuffer struct{ b []byte }

func (w *appendBuffer) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// AppendSealed appends to dst the datagram of JSON text compressed by d
// followed by the lowercase hex HMAC of the primary key, and returns the
// extended slice. With a dst of enough capacity nothing is allocated.
func (kr *Keyring) AppendSealed(dst, text []byte, d *Deflater) []byte {
	start := len(dst)
	d.out.b = dst
	d.zw.Reset(&d.out)
	// Writes to an appendBuffer cannot fail.
	_, _ = d.zw.Write(text)
	_ = d.zw.Close()
	out := d.out.b
	d.out.b = nil
	var hexSum [hexMACLen]byte
	sum := kr.keys[0].sum(out[start:])
	hex.Encode(hexSum[:], sum[:])
	return append(out, hexSum[:]...)
}
