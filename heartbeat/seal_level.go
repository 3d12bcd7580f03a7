package heartbeat

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/adler32"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/zlib"
)

// Deflate levels a sender may seal at. Octavia's agent uses 9; the
// manager inflates any level, so the choice only trades the sender's CPU
// against datagram size (docs/performance.md, "Amphora agent").
const (
	MinSealLevel = zlib.BestSpeed
	MaxSealLevel = zlib.BestCompression
)

// Deflater compresses one sender's messages with klauspost/compress: at
// level 1 it takes about a third of the standard library's CPU for a
// slightly smaller datagram (docs/performance.md, "Amphora agent"); any
// zlib inflater reads it. At level 1 it keeps no state between messages
// (a stateless deflate, whose buffers are the library's, borrowed per
// message): a sender idle between heartbeats then holds no compressor.
// At levels 2 to 9 it keeps a zlib writer, whose window and hash tables
// (about 1 MB) are allocated once instead of per message, which a
// sync.Pool emptied by every GC between two heartbeats would do. It is
// not safe for concurrent use.
type Deflater struct {
	zw  *zlib.Writer // nil at level 1
	out appendBuffer
}

// NewDeflater returns a deflater at level (MinSealLevel to MaxSealLevel).
func NewDeflater(level int) (*Deflater, error) {
	if level < MinSealLevel || level > MaxSealLevel {
		return nil, fmt.Errorf("zlib level %d not in %d-%d", level, MinSealLevel, MaxSealLevel)
	}
	d := &Deflater{}
	if level == MinSealLevel {
		return d, nil
	}
	var err error
	d.zw, err = zlib.NewWriterLevel(&d.out, level)
	return d, err
}

// deflate appends text's zlib stream to d.out.
func (d *Deflater) deflate(text []byte) {
	// Writes to an appendBuffer cannot fail.
	if d.zw != nil {
		d.zw.Reset(&d.out)
		_, _ = d.zw.Write(text)
		_ = d.zw.Close()
		return
	}
	// RFC 1950: deflate with a 32 KiB window, "fastest" level, no
	// dictionary; the Adler-32 of the text after the stream.
	d.out.b = append(d.out.b, 0x78, 0x01)
	_ = flate.StatelessDeflate(&d.out, text, true, nil)
	d.out.b = binary.BigEndian.AppendUint32(d.out.b, adler32.Checksum(text))
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
	d.deflate(text)
	out := d.out.b
	d.out.b = nil
	var hexSum [hexMACLen]byte
	sum := kr.keys[0].sum(out[start:])
	hex.Encode(hexSum[:], sum[:])
	return append(out, hexSum[:]...)
}
