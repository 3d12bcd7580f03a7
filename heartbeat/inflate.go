package heartbeat

import (
	"encoding/binary"
	"hash/adler32"
	"math/bits"
	"strconv"
	"sync"
)

// A zlib (RFC 1950) and deflate (RFC 1951) decoder for one whole payload in
// memory. compress/zlib reads its input a byte at a time through an
// io.ByteReader and decodes Huffman symbols a bit at a time; for a 1 KB
// heartbeat that was more than half the cost of opening it. This decoder
// keeps 64 bits of input in a register, decodes most symbols with one table
// lookup and copies matches with copy(). It is tested against compress/zlib
// on every vector and by differential fuzzing (FuzzInflate).
//
// github.com/klauspost/compress/zlib was measured against it: 20-40% more
// CPU per heartbeat, an allocation per payload, and no stricter (no stream
// that one of them, compress/zlib or Python's zlib refuses and another
// accepts was found; docs/performance.md), so the codec keeps to the
// standard library.

const (
	maxCodeLen      = 15
	numLitLen       = 288 // 286 usable, 2 reserved that fixed codes still assign
	numDist         = 32  // 30 usable, 2 reserved
	litLenFastBits  = 10
	distFastBits    = 8
	precodeFastBits = 7
)

// huffman decodes one canonical Huffman code. Codes up to fastBits long
// resolve with one lookup of the next fastBits input bits; longer ones walk
// the canonical code length by length (rare in practice).
type huffman struct {
	fastBits uint
	// fast holds symbol<<4 | length; 0 marks a longer or unused code.
	fast   [1 << litLenFastBits]uint16
	count  [maxCodeLen + 1]uint16
	symbol [numLitLen]uint16
}

// build prepares the code from per-symbol code lengths. As zlib does, it
// refuses an over-subscribed code, and an incomplete one unless it is the
// degenerate single code of length 1. A code with no symbols at all builds,
// and then fails on first use.
func (h *huffman) build(lengths []uint8, fastBits uint) bool {
	h.fastBits = fastBits
	// Lengths are at most 15 (the code-length code cannot express more), so
	// masking with 15 only spares the bounds checks.
	// Four tallies, summed after, because runs of equal lengths would
	// otherwise wait on one counter's previous increment at every step.
	var tally [4][maxCodeLen + 1]uint16
	i := 0
	for ; i+4 <= len(lengths); i += 4 {
		tally[0][lengths[i]&15]++
		tally[1][lengths[i+1]&15]++
		tally[2][lengths[i+2]&15]++
		tally[3][lengths[i+3]&15]++
	}
	for ; i < len(lengths); i++ {
		tally[0][lengths[i]&15]++
	}
	var count [maxCodeLen + 1]uint16
	for l := 1; l <= maxCodeLen; l++ {
		count[l] = tally[0][l] + tally[1][l] + tally[2][l] + tally[3][l]
	}
	h.count = count
	left, maxLen := 1, 0
	for l := 1; l <= maxCodeLen; l++ {
		left = left<<1 - int(h.count[l])
		if left < 0 {
			return false // over-subscribed
		}
		if h.count[l] > 0 {
			maxLen = l
		}
	}
	if left > 0 && maxLen > 1 {
		return false // incomplete
	}
	var offset [maxCodeLen + 1]uint16
	for l := 1; l < maxCodeLen; l++ {
		offset[l+1] = offset[l] + count[l]
	}
	symbols := h.symbol[:]
	for sym, l := range lengths {
		if l != 0 {
			symbols[offset[l&15]%numLitLen] = uint16(sym)
			offset[l&15]++
		}
	}
	// Fill the fast table length by length, in canonical order (h.symbol
	// is sorted by length, then symbol). Deflate sends codes most
	// significant bit first into an LSB-first stream, so entries sit at the
	// reversed code. A table for lengths up to l doubles into one for l+1
	// by copying itself: that writes every shorter code's replicas, and the
	// new length's codes then take one store each.
	table := h.fast[:2]
	table[0], table[1] = 0, 0
	code, index := 0, 0
	for l := uint(1); l <= fastBits; l++ {
		if l > 1 {
			table = h.fast[:1<<l]
			copy(table[1<<(l-1):], table[:1<<(l-1)])
		}
		for n := int(h.count[l]); n > 0; n-- {
			table[bits.Reverse16(uint16(code))>>(16-l)] = h.symbol[index]<<4 | uint16(l)
			code++
			index++
		}
		code <<= 1
	}
	return true
}

// bitReader holds up to 64 bits of input, least significant bit first.
type bitReader struct {
	src   []byte
	pos   int // next byte of src to load
	bits  uint64
	nbits uint
}

// refill tops the buffer up to at least 56 bits, or to the end of input.
func (br *bitReader) refill() {
	if br.pos+8 <= len(br.src) {
		// Load 8 bytes and keep the whole ones that fit. The partial byte
		// above them is reloaded, identically, by the next refill.
		br.bits |= binary.LittleEndian.Uint64(br.src[br.pos:]) << br.nbits
		n := (63 - br.nbits) >> 3
		br.pos += int(n)
		br.nbits += n << 3
		return
	}
	for br.nbits <= 56 && br.pos < len(br.src) {
		br.bits |= uint64(br.src[br.pos]) << br.nbits
		br.pos++
		br.nbits += 8
	}
}

var errTruncated = &Error{Reason: ReasonNotZlib, Detail: "truncated deflate stream"}

// take removes and returns the next n (<= 32) bits.
func (br *bitReader) take(n uint) (uint32, *Error) {
	if br.nbits < n {
		br.refill()
		if br.nbits < n {
			return 0, errTruncated
		}
	}
	v := uint32(br.bits & (1<<n - 1))
	br.bits >>= n
	br.nbits -= n
	return v, nil
}

// decode reads one symbol of code h. The caller keeps at least 15 bits
// buffered unless the input has run out.
func (br *bitReader) decode(h *huffman) (int, *Error) {
	if e := h.fast[br.bits&(1<<h.fastBits-1)]; e != 0 {
		l := uint(e & 15)
		if l > br.nbits {
			return 0, errTruncated
		}
		br.bits >>= l
		br.nbits -= l
		return int(e >> 4), nil
	}
	code, first, index := 0, 0, 0
	b := br.bits
	for l := uint(1); l <= maxCodeLen; l++ {
		code |= int(b & 1)
		b >>= 1
		count := int(h.count[l])
		if code-first < count {
			if l > br.nbits {
				return 0, errTruncated
			}
			br.bits >>= l
			br.nbits -= l
			return int(h.symbol[index+code-first]), nil
		}
		index += count
		first = (first + count) << 1
		code <<= 1
	}
	return 0, notZlib("invalid Huffman code")
}

func notZlib(detail string) *Error { return &Error{Reason: ReasonNotZlib, Detail: detail} }

var (
	lengthBase  = [29]uint16{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	lengthExtra = [29]uint8{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	distBase    = [30]uint16{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	distExtra   = [30]uint8{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}
	// The order in which a dynamic block sends the code-length code.
	precodeOrder = [19]uint8{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}
)

var fixedCodes = sync.OnceValue(func() *[2]huffman {
	var h [2]huffman
	var lengths [numLitLen]uint8
	for i := range lengths {
		switch {
		case i < 144:
			lengths[i] = 8
		case i < 256:
			lengths[i] = 9
		case i < 280:
			lengths[i] = 7
		default:
			lengths[i] = 8
		}
	}
	h[0].build(lengths[:], litLenFastBits)
	var dist [numDist]uint8
	for i := range dist {
		dist[i] = 5
	}
	h[1].build(dist[:], distFastBits)
	return &h
})

// inflateState is reused across payloads: its tables are 3 KB.
type inflateState struct {
	litLen, dist, precode huffman
	lengths               [numLitLen + numDist]uint8
}

var inflateStates = sync.Pool{New: func() any { return new(inflateState) }}

// inflateZlib decodes the zlib stream at the start of src, appending the
// data to dst. It fails with too_large past limit output bytes. Bytes after
// the stream's Adler-32 are ignored, as Python's zlib.decompress ignores them.
func inflateZlib(dst, src []byte, limit int) ([]byte, *Error) {
	if len(src) < 2 {
		return dst, notZlib("payload too short for a zlib header")
	}
	cmf, flg := src[0], src[1]
	if cmf&0x0f != 8 || cmf>>4 > 7 || (uint16(cmf)<<8|uint16(flg))%31 != 0 {
		return dst, notZlib("bad zlib header")
	}
	if flg&0x20 != 0 {
		return dst, notZlib("zlib stream needs a preset dictionary")
	}
	st := inflateStates.Get().(*inflateState)
	defer inflateStates.Put(st)
	br := bitReader{src: src, pos: 2}
	start := len(dst)
	dst, err := st.inflate(&br, dst, start+limit)
	if err != nil {
		if err.Reason == ReasonTooLarge {
			err = tooLarge(limit)
		}
		return dst, err
	}
	// The Adler-32 follows the last block, byte-aligned, most significant
	// byte first. Whole bytes still in the bit buffer go back to the input.
	br.pos -= int(br.nbits >> 3)
	if br.pos+4 > len(src) {
		return dst, notZlib("zlib stream ends before its Adler-32")
	}
	if binary.BigEndian.Uint32(src[br.pos:]) != adler32.Checksum(dst[start:]) {
		return dst, notZlib("zlib Adler-32 mismatch")
	}
	return dst, nil
}

func (st *inflateState) inflate(br *bitReader, out []byte, limit int) ([]byte, *Error) {
	fixed := fixedCodes()
	for {
		header, err := br.take(3)
		if err != nil {
			return out, err
		}
		var litLen, dist *huffman
		switch header >> 1 {
		case 0:
			if out, err = storedBlock(br, out, limit); err != nil {
				return out, err
			}
		case 1:
			litLen, dist = &fixed[0], &fixed[1]
		case 2:
			if err := st.readDynamicCodes(br); err != nil {
				return out, err
			}
			litLen, dist = &st.litLen, &st.dist
		default:
			return out, notZlib("invalid deflate block type")
		}
		if litLen != nil {
			if out, err = huffmanBlock(br, out, limit, litLen, dist); err != nil {
				return out, err
			}
		}
		if header&1 != 0 {
			return out, nil
		}
	}
}

func storedBlock(br *bitReader, out []byte, limit int) ([]byte, *Error) {
	br.bits >>= br.nbits & 7
	br.nbits -= br.nbits & 7
	lengths, err := br.take(32)
	if err != nil {
		return out, err
	}
	n, check := lengths&0xffff, lengths>>16
	if n != ^check&0xffff {
		return out, notZlib("stored block length check failed")
	}
	// Give the whole bytes still buffered back to the input, then copy.
	br.pos -= int(br.nbits >> 3)
	br.bits, br.nbits = 0, 0
	if br.pos+int(n) > len(br.src) {
		return out, errTruncated
	}
	if len(out)+int(n) > limit {
		return out, tooLarge(limit)
	}
	out = append(out, br.src[br.pos:br.pos+int(n)]...)
	br.pos += int(n)
	return out, nil
}

func tooLarge(limit int) *Error {
	return reject(ReasonTooLarge, "payload inflates beyond "+strconv.Itoa(limit)+" bytes")
}

func (st *inflateState) readDynamicCodes(br *bitReader) *Error {
	counts, err := br.take(14)
	if err != nil {
		return err
	}
	nLitLen, nDist, nPrecode := int(counts&31)+257, int(counts>>5&31)+1, int(counts>>10)+4
	if nLitLen > 286 || nDist > 30 {
		return notZlib("too many length or distance codes")
	}
	var precodeLengths [19]uint8
	for i := 0; i < nPrecode; i++ {
		l, err := br.take(3)
		if err != nil {
			return err
		}
		precodeLengths[precodeOrder[i]] = uint8(l)
	}
	if !st.precode.build(precodeLengths[:], precodeFastBits) || st.precode.count == [maxCodeLen + 1]uint16{} {
		return notZlib("invalid code-length code")
	}
	lengths := st.lengths[:nLitLen+nDist]
	for i := 0; i < len(lengths); {
		if br.nbits < maxCodeLen+7 {
			br.refill()
		}
		// Code-length codes are at most 7 bits, so the fast table holds
		// every valid one.
		var sym int
		if e := st.precode.fast[br.bits&(1<<precodeFastBits-1)]; e != 0 && uint(e&15) <= br.nbits {
			br.bits >>= e & 15
			br.nbits -= uint(e & 15)
			sym = int(e >> 4)
		} else {
			s, err := br.decode(&st.precode)
			if err != nil {
				return err
			}
			sym = s
		}
		if sym < 16 {
			lengths[i] = uint8(sym)
			i++
			continue
		}
		var repeat uint32
		var value uint8
		switch sym {
		case 16:
			if i == 0 {
				return notZlib("repeated code length with no previous length")
			}
			value = lengths[i-1]
			repeat, err = br.take(2)
			repeat += 3
		case 17:
			repeat, err = br.take(3)
			repeat += 3
		default:
			repeat, err = br.take(7)
			repeat += 11
		}
		if err != nil {
			return err
		}
		if i+int(repeat) > len(lengths) {
			return notZlib("code lengths overflow their table")
		}
		for ; repeat > 0; repeat-- {
			lengths[i] = value
			i++
		}
	}
	if lengths[256] == 0 {
		return notZlib("literal/length code has no end-of-block symbol")
	}
	if !st.litLen.build(lengths[:nLitLen], litLenFastBits) {
		return notZlib("invalid literal/length code")
	}
	if !st.dist.build(lengths[nLitLen:], distFastBits) {
		return notZlib("invalid distance code")
	}
	return nil
}

func huffmanBlock(br *bitReader, out []byte, limit int, litLen, dist *huffman) ([]byte, *Error) {
	// The bit buffer lives in locals here, where almost all the time goes,
	// and is written back around the calls that need the reader.
	bitBuf, nbits := br.bits, br.nbits
	for {
		// A literal/length code is at most 15 bits. Refilling only then,
		// to 56 bits or more, decodes several literals per refill.
		if nbits < maxCodeLen {
			br.bits, br.nbits = bitBuf, nbits
			br.refill()
			bitBuf, nbits = br.bits, br.nbits
		}
		// The common case: a code the fast table resolves, indexed with a
		// constant mask.
		var sym int
		if e := litLen.fast[bitBuf&(1<<litLenFastBits-1)]; e != 0 && uint(e&15) <= nbits {
			bitBuf >>= e & 15
			nbits -= uint(e & 15)
			sym = int(e >> 4)
		} else {
			br.bits, br.nbits = bitBuf, nbits
			s, err := br.decode(litLen)
			if err != nil {
				return out, err
			}
			bitBuf, nbits = br.bits, br.nbits
			sym = s
		}
		if sym < 256 {
			if len(out) >= limit {
				return out, tooLarge(limit)
			}
			out = append(out, byte(sym))
			continue
		}
		if sym == 256 {
			br.bits, br.nbits = bitBuf, nbits
			return out, nil
		}
		sym -= 257
		if sym >= len(lengthBase) {
			return out, notZlib("invalid length symbol")
		}
		// The rest of the pair is at most 5+15+13 = 33 bits. With that
		// buffered, the extra bits and the distance code are there unless
		// the input ended; the checks below catch that.
		if nbits < 33 {
			br.bits, br.nbits = bitBuf, nbits
			br.refill()
			bitBuf, nbits = br.bits, br.nbits
		}
		n := uint(lengthExtra[sym])
		if nbits < n {
			return out, errTruncated
		}
		length := int(lengthBase[sym]) + int(bitBuf&(1<<n-1))
		bitBuf >>= n
		nbits -= n
		var dsym int
		if e := dist.fast[bitBuf&(1<<distFastBits-1)]; e != 0 && uint(e&15) <= nbits {
			bitBuf >>= e & 15
			nbits -= uint(e & 15)
			dsym = int(e >> 4)
		} else {
			br.bits, br.nbits = bitBuf, nbits
			s, err := br.decode(dist)
			if err != nil {
				return out, err
			}
			bitBuf, nbits = br.bits, br.nbits
			dsym = s
		}
		if dsym >= len(distBase) {
			return out, notZlib("invalid distance symbol")
		}
		n = uint(distExtra[dsym])
		if nbits < n {
			return out, errTruncated
		}
		distance := int(distBase[dsym]) + int(bitBuf&(1<<n-1))
		bitBuf >>= n
		nbits -= n
		have := len(out)
		if distance > have {
			return out, notZlib("distance " + strconv.Itoa(distance) + " reaches before the start of the data")
		}
		end := have + length
		if end > limit {
			return out, tooLarge(limit)
		}
		if end > cap(out) {
			grown := make([]byte, have, 2*cap(out)+length)
			copy(grown, out)
			out = grown
		}
		out = out[:end]
		from := have - distance
		// An overlapping match repeats its pattern; each copy doubles it.
		for to := have; to < end; {
			to += copy(out[to:end], out[from:to])
		}
	}
}
