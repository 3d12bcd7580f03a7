package heartbeat

import (
	"encoding/binary"
	"math/bits"
	"strconv"
	"sync"
)

// A zlib (RFC 1950) and deflate (RFC 1951) decoder for one whole payload in
// memory. compress/zlib reads its input a byte at a time through an
// io.ByteReader and decodes Huffman symbols a bit at a time; for a 1 KB
// heartbeat that was more than half the cost of opening it. This decoder
// keeps 64 bits of input in a register, decodes most symbols, and most
// pairs of literals, with one table lookup, and copies matches eight bytes
// at a time. It is tested against compress/zlib on every vector and by
// differential fuzzing (FuzzInflate).
//
// github.com/klauspost/compress/zlib was measured against it: 20-40% more
// CPU per heartbeat, an allocation per payload, and no stricter (no stream
// that one of them, compress/zlib or Python's zlib refuses and another
// accepts was found; docs/performance.md), so the codec keeps to the
// standard library.

const (
	maxCodeLen = 15
	numLitLen  = 288 // 286 usable, 2 reserved that fixed codes still assign
	numDist    = 32  // 30 usable, 2 reserved
	// litLenTableBits is the width of the literal/length lookup: wide
	// enough for two literals of the five-bit codes that the hex digits of
	// UUIDs get, narrow enough to build cheaply once per block.
	litLenTableBits  = 10
	distTableBits    = 8
	precodeTableBits = 7
)

// canonicalCode is a canonical Huffman code: how many codes each length has,
// and the symbols in code order. It decodes any code, a bit at a time;
// the lookup tables built from it resolve the short codes at once.
type canonicalCode struct {
	count  [maxCodeLen + 1]uint16
	symbol [numLitLen]uint16
}

// setup reads per-symbol code lengths. As zlib does, it refuses an
// over-subscribed code, and an incomplete one unless it is the degenerate
// single code of length 1. A code with no symbols at all sets up, and
// then fails on first use.
func (c *canonicalCode) setup(lengths []uint8) bool {
	// Lengths are at most 15 (the code-length code cannot express more), so
	// masking with 15 only spares the bounds checks. A heartbeat uses few
	// of the 256 byte values, so most lengths are zero, eight at a time.
	var count [maxCodeLen + 1]uint16
	i := 0
	for ; i+8 <= len(lengths); i += 8 {
		group := lengths[i : i+8 : i+8]
		if binary.LittleEndian.Uint64(group) == 0 {
			continue
		}
		for _, l := range group {
			count[l&15]++
		}
	}
	for _, l := range lengths[i:] {
		count[l&15]++
	}
	offset, ok := c.firstSlots(&count)
	if !ok {
		return false
	}
	symbols := c.symbol[:]
	for i := 0; i < len(lengths); i += 8 {
		group := lengths[i:min(i+8, len(lengths))]
		if len(group) == 8 && binary.LittleEndian.Uint64(group) == 0 {
			continue
		}
		for j, l := range group {
			if l != 0 {
				symbols[offset[l&15]%numLitLen] = uint16(i + j)
				offset[l&15]++
			}
		}
	}
	return true
}

// firstSlots checks and keeps the tally of code lengths (setCounts) and
// returns where each length's symbols start in the canonical order.
func (c *canonicalCode) firstSlots(count *[maxCodeLen + 1]uint16) (offset [maxCodeLen + 1]uint16, ok bool) {
	if !c.setCounts(count) {
		return offset, false
	}
	for l := 1; l < maxCodeLen; l++ {
		offset[l+1] = offset[l] + count[l]
	}
	return offset, true
}

// setupListed is setup for lengths whose non-zero entries the caller has
// listed, in increasing order, in used: the code-length decoder of a
// dynamic block lists them as it goes, so the tally and the canonical sort
// visit the 60-odd symbols a heartbeat uses rather than all 288 lengths.
// It accepts and refuses exactly what setup does.
func (c *canonicalCode) setupListed(lengths []uint8, used []uint16) bool {
	var count [maxCodeLen + 1]uint16
	for _, s := range used {
		count[lengths[s]&15]++
	}
	offset, ok := c.firstSlots(&count)
	if !ok {
		return false
	}
	symbols := c.symbol[:]
	for _, s := range used {
		l := lengths[s] & 15
		symbols[offset[l]%numLitLen] = s
		offset[l]++
	}
	return true
}

// setCounts keeps the tally of code lengths (count[0], the unused
// symbols, is dropped) if it makes a valid code: as zlib does, it refuses
// an over-subscribed code, and an incomplete one unless it is the
// degenerate single code of length 1.
func (c *canonicalCode) setCounts(count *[maxCodeLen + 1]uint16) bool {
	count[0] = 0
	c.count = *count
	left, maxLen := 1, 0
	for l := 1; l <= maxCodeLen; l++ {
		left = left<<1 - int(count[l])
		if left < 0 {
			return false // over-subscribed
		}
		if count[l] > 0 {
			maxLen = l
		}
	}
	return left == 0 || maxLen <= 1 // else incomplete
}

// reversed is code, l bits long, in the order deflate sends it: codes go
// most significant bit first into a stream read least significant bit
// first, so table entries sit at the reversed code.
func reversed(code int, l uint) uint32 {
	return uint32(bits.Reverse16(uint16(code)) >> (16 - l))
}

// Entries of the literal/length table. Zero sends the decoder to the
// canonical code: a code longer than the table, end of block, the two
// reserved symbols, or a bit pattern that is no code.
//
// The layout keeps the fast loop's work per entry to a shift each: the
// bits to consume are the low bits, the literals are the next sixteen
// (one 16-bit store writes both, or the one and a byte the next write
// covers), and the number of literals is the top two bits.
const (
	// entryBits: the bits the entry consumes, both codes of a pair.
	entryBits = 63
	// entryLiteralShift: bits 30-31 hold how many literals (1 or 2) the
	// entry yields, in bits 8-15 and 16-23; bits 24-27 hold the first
	// literal's own code length. Any other entry has zero there.
	entryLiteralShift = 30
	// entryLength: a length symbol; bits 8-11 hold its extra bits, bits
	// 12-20 its base length and bits 21-25 its index in lengthBase.
	entryLength = 1 << 29
)

// litLenCode is a literal/length code with its lookup table. An entry
// resolves up to litLenTableBits bits: one symbol, or two literals whose
// codes fit together. UUIDs are incompressible hex text, so most of a
// heartbeat is literals; resolving two per lookup halves the chain of
// dependent lookups that bounds the decoder's speed.
type litLenCode struct {
	canonicalCode
	table [1 << litLenTableBits]uint32
	// litRev and litSym list the literal codes shorter than the table, in
	// code order: scratch for pairing them.
	litRev, litSym [256]uint32
}

// shortCode is a code of distances or code lengths, with a table of
// len | symbol<<16 entries; zero means a longer code or no code.
type shortCode struct {
	canonicalCode
	table [1 << distTableBits]uint32
}

func (h *litLenCode) build(lengths []uint8) bool {
	if !h.setup(lengths) {
		return false
	}
	h.fill()
	return true
}

// fill builds the lookup table of a code that is set up.
func (h *litLenCode) fill() {
	// The table for codes up to l bits doubles into the one for l+1 by
	// copying itself: that replicates every shorter entry, and the codes of
	// length l+1, then the pairs of literals l+1 bits long together, take
	// one store each. A pair overwrites its first literal's entry.
	var litsFrom, litsTo [litLenTableBits + 1]uint
	nlits := uint(0)
	const width = litLenTableBits
	const mask = 1<<width - 1
	t := &h.table
	t[0], t[1] = 0, 0
	code, index := 0, 0
	for l := uint(1); l <= width; l++ {
		if l > 1 {
			copy(t[1<<(l-1):1<<l], t[:1<<(l-1)])
		}
		litsFrom[l] = nlits
		for n := int(h.count[l]); n > 0; n-- {
			sym := uint32(h.symbol[index])
			r := reversed(code, l)
			var e uint32
			switch {
			case sym < 256:
				e = uint32(l) | sym<<8 | uint32(l)<<24 | 1<<entryLiteralShift
				h.litRev[nlits&255], h.litSym[nlits&255] = r, sym
				nlits++
			case sym > 256 && sym < 257+uint32(len(lengthBase)):
				i := sym - 257
				e = uint32(l) | uint32(lengthExtra[i])<<8 | uint32(lengthBase[i])<<12 | i<<21 | entryLength
			}
			t[r&mask] = e
			code++
			index++
		}
		litsTo[l] = nlits
		code <<= 1
		for l1 := uint(1); l1 < l; l1++ {
			l2 := l - l1
			bFrom, bTo := litsFrom[l2], litsTo[l2]
			if bFrom == bTo {
				continue
			}
			for a := litsFrom[l1]; a < litsTo[l1]; a++ {
				e := uint32(l) | h.litSym[a&255]<<8 | uint32(l1)<<24 | 2<<entryLiteralShift
				ra := h.litRev[a&255]
				for b := bFrom; b < bTo; b++ {
					t[(ra|h.litRev[b&255]<<l1)&mask] = e | h.litSym[b&255]<<16
				}
			}
		}
	}
}

func (h *shortCode) build(lengths []uint8, width uint) bool {
	if !h.setup(lengths) {
		return false
	}
	h.fill(width)
	return true
}

// fill builds the lookup table, width bits wide, of a code that is set up.
func (h *shortCode) fill(width uint) {
	table := h.table[:2]
	table[0], table[1] = 0, 0
	code, index := 0, 0
	for l := uint(1); l <= width; l++ {
		if l > 1 {
			table = h.table[:1<<l]
			copy(table[1<<(l-1):], table[:1<<(l-1)])
		}
		for n := int(h.count[l]); n > 0; n-- {
			table[reversed(code, l)&(1<<l-1)] = uint32(h.symbol[index])<<16 | uint32(l)
			code++
			index++
		}
		code <<= 1
	}
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

// consume removes an l-bit code that was looked up in the buffer.
func (br *bitReader) consume(l uint) *Error {
	if l > br.nbits {
		return errTruncated
	}
	br.bits >>= l
	br.nbits -= l
	return nil
}

// walk reads one symbol of c bit by bit. The caller keeps at least 15
// bits buffered unless the input has run out.
func (br *bitReader) walk(c *canonicalCode) (int, *Error) {
	code, first, index := 0, 0, 0
	b := br.bits
	for l := uint(1); l <= maxCodeLen; l++ {
		code |= int(b & 1)
		b >>= 1
		count := int(c.count[l])
		if code-first < count {
			if err := br.consume(l); err != nil {
				return 0, err
			}
			return int(c.symbol[index+code-first]), nil
		}
		index += count
		first = (first + count) << 1
		code <<= 1
	}
	return 0, notZlib("invalid Huffman code")
}

// litLenSymbol reads one literal/length symbol, 0-287.
func (br *bitReader) litLenSymbol(h *litLenCode) (int, *Error) {
	e := h.table[br.bits&(1<<litLenTableBits-1)]
	switch {
	case e>>entryLiteralShift != 0:
		return int(e >> 8 & 0xff), br.consume(uint(e >> 24 & 15))
	case e&entryLength != 0:
		return 257 + int(e>>21&31), br.consume(uint(e & entryBits))
	}
	return br.walk(&h.canonicalCode)
}

// symbol reads one symbol of a distance or code-length code.
func (br *bitReader) symbol(h *shortCode, width uint) (int, *Error) {
	if e := h.table[br.bits&(1<<width-1)]; e != 0 {
		return int(e >> 16), br.consume(uint(e & entryBits))
	}
	return br.walk(&h.canonicalCode)
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

// fixedCode is the fixed literal/length and distance code of block type 1.
type fixedCode struct {
	litLen litLenCode
	dist   shortCode
}

var fixedCodes = sync.OnceValue(func() *fixedCode {
	h := new(fixedCode)
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
	h.litLen.build(lengths[:])
	var dist [numDist]uint8
	for i := range dist {
		dist[i] = 5
	}
	h.dist.build(dist[:], distTableBits)
	return h
})

// inflateState is reused across payloads: its tables are 7 KB.
type inflateState struct {
	litLen        litLenCode
	dist, precode shortCode
	lengths       [numLitLen + numDist]uint8
	// used lists the symbols of lengths with a non-zero length, in order.
	// It is a power of two long, so that masking spares the bounds checks.
	used [512]uint16
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
	dst, err := st.inflate(&br, dst, start, start+limit)
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
	if binary.BigEndian.Uint32(src[br.pos:]) != adler32Sum(dst[start:]) {
		return dst, notZlib("zlib Adler-32 mismatch")
	}
	return dst, nil
}

// inflate decodes the blocks, appending to out; start is where this
// stream's output begins in out, limit where it must end.
func (st *inflateState) inflate(br *bitReader, out []byte, start, limit int) ([]byte, *Error) {
	fixed := fixedCodes()
	for {
		header, err := br.take(3)
		if err != nil {
			return out, err
		}
		var litLen *litLenCode
		var dist *shortCode
		switch header >> 1 {
		case 0:
			if out, err = storedBlock(br, out, limit); err != nil {
				return out, err
			}
		case 1:
			litLen, dist = &fixed.litLen, &fixed.dist
		case 2:
			if err := st.readDynamicCodes(br); err != nil {
				return out, err
			}
			litLen, dist = &st.litLen, &st.dist
		default:
			return out, notZlib("invalid deflate block type")
		}
		if litLen != nil {
			if out, err = huffmanBlock(br, out, start, limit, litLen, dist); err != nil {
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
	// From here the bit buffer lives in locals (about 120 symbols per
	// heartbeat), not in br's fields, whose every update would be a store
	// and a load on the loop's dependency chain; it goes back to br around
	// the calls that need it. The up to 19 three-bit lengths of the
	// code-length code are read as take(3) would.
	var precodeLengths [19]uint8
	bitBuf, nbits := br.bits, br.nbits
	for i := 0; i < nPrecode; i++ {
		if nbits < 3 {
			br.bits, br.nbits = bitBuf, nbits
			br.refill()
			bitBuf, nbits = br.bits, br.nbits
			if nbits < 3 {
				return errTruncated
			}
		}
		precodeLengths[precodeOrder[i]] = uint8(bitBuf & 7)
		bitBuf >>= 3
		nbits -= 3
	}
	if !st.precode.build(precodeLengths[:], precodeTableBits) || st.precode.count == [maxCodeLen + 1]uint16{} {
		return notZlib("invalid code-length code")
	}
	lengths := st.lengths[:nLitLen+nDist]
	used, nUsed := st.used[:], 0
	for i := 0; i < len(lengths); {
		if nbits < maxCodeLen+7 {
			br.bits, br.nbits = bitBuf, nbits
			br.refill()
			bitBuf, nbits = br.bits, br.nbits
		}
		// Code-length codes are at most 7 bits, so the table holds every
		// valid one.
		var sym int
		if e := st.precode.table[bitBuf&(1<<precodeTableBits-1)]; e != 0 && uint(e&entryBits) <= nbits {
			bitBuf >>= e & entryBits
			nbits -= uint(e & entryBits)
			sym = int(e >> 16)
		} else {
			br.bits, br.nbits = bitBuf, nbits
			s, err := br.symbol(&st.precode, precodeTableBits)
			if err != nil {
				return err
			}
			bitBuf, nbits = br.bits, br.nbits
			sym = s
		}
		if sym < 16 {
			lengths[i] = uint8(sym)
			if sym != 0 {
				used[nUsed&(len(used)-1)] = uint16(i)
				nUsed++
			}
			i++
			continue
		}
		// The repeat count's bits are buffered unless the input ended:
		// the refill above left at least 22 bits, or all there were, and
		// the symbol took at most 7 of them.
		var value uint8
		var n uint
		var repeat int
		switch sym {
		case 16:
			if i == 0 {
				return notZlib("repeated code length with no previous length")
			}
			value = lengths[i-1]
			n, repeat = 2, 3
		case 17:
			n, repeat = 3, 3
		default:
			n, repeat = 7, 11
		}
		if nbits < n {
			return errTruncated
		}
		repeat += int(bitBuf & (1<<n - 1))
		bitBuf >>= n
		nbits -= n
		if i+repeat > len(lengths) {
			return notZlib("code lengths overflow their table")
		}
		if run := lengths[i : i+repeat]; value == 0 {
			clear(run)
		} else {
			for j := range run {
				run[j] = value
				used[nUsed&(len(used)-1)] = uint16(i + j)
				nUsed++
			}
		}
		i += repeat
	}
	br.bits, br.nbits = bitBuf, nbits
	if lengths[256] == 0 {
		return notZlib("literal/length code has no end-of-block symbol")
	}
	// Every index is listed at most once, so nUsed <= len(lengths).
	litUsed := used[:nUsed]
	nLitUsed := 0
	for nLitUsed < len(litUsed) && int(litUsed[nLitUsed]) < nLitLen {
		nLitUsed++
	}
	distUsed := litUsed[nLitUsed:]
	litUsed = litUsed[:nLitUsed]
	if !st.litLen.setupListed(lengths[:nLitLen], litUsed) {
		return notZlib("invalid literal/length code")
	}
	st.litLen.fill()
	// The distance code's symbols count from the end of the literal/length
	// lengths.
	for j := range distUsed {
		distUsed[j] -= uint16(nLitLen)
	}
	if !st.dist.setupListed(lengths[nLitLen:], distUsed) {
		return notZlib("invalid distance code")
	}
	st.dist.fill(distTableBits)
	return nil
}

// fastOutMargin is the output room the fast loop needs: the eight-byte
// window for up to six literals (which also covers the one byte a single
// literal's 16-bit store writes past it), a longest match, and the eight
// bytes a match copy may write past its end.
const fastOutMargin = 6 + 258 + 8

// fastInMargin is the input the fast loop needs: two refills of eight
// bytes each.
const fastInMargin = 16

// huffmanBlock decodes one Huffman-coded block into out, from start on,
// within limit.
//
// Away from the ends of the input and of the output buffer fastSymbols
// decodes; everything it leaves (the last bytes of the input, codes longer
// than the tables, end of block, invalid symbols, distances before the
// start, a full buffer, the limit) goes to slowSymbol, which decodes one
// symbol with every check. Both read the same tables, and fastSymbols
// leaves a symbol untouched unless it decodes it whole, so they accept
// and refuse the same streams.
func huffmanBlock(br *bitReader, out []byte, start, limit int, litLen *litLenCode, dist *shortCode) ([]byte, *Error) {
	o := len(out)
	out = out[:cap(out)]
	for {
		if br.pos <= len(br.src)-fastInMargin {
			// The fast loop sees the buffer cut at the limit, so that its
			// own bound on the output covers both.
			o = fastSymbols(br, out[:min(len(out), limit)], o, start, &litLen.table, &dist.table)
		}
		var end bool
		var err *Error
		if out, o, end, err = slowSymbol(br, out, o, start, limit, litLen, dist); err != nil || end {
			return out[:o], err
		}
	}
}

// fastSymbols decodes literals and matches while at least fastInMargin
// bytes of input and fastOutMargin bytes of out remain, and returns the
// output position at the first symbol it leaves to slowSymbol: anything
// but a literal, or a length whose distance code is in the table and
// reaches no further back than start.
//
// It is a function of its own, with the bit buffer in locals, so that the
// few values its loop needs stay in registers: the bit buffer is refilled
// without checks, a table entry yields up to two literals, written with
// one store, and matches are copied eight bytes at a time.
func fastSymbols(br *bitReader, out []byte, o, start int, litLen *[1 << litLenTableBits]uint32, dist *[1 << distTableBits]uint32) int {
	src := br.src
	bitBuf, nbits, pos := br.bits, br.nbits, br.pos
	for pos <= len(src)-fastInMargin && o >= 0 && o <= len(out)-fastOutMargin {
		// Top up to 56-63 bits: enough for three entries of the table
		// (two literals each), or for two and a length's code and extra
		// bits.
		bitBuf |= binary.LittleEndian.Uint64(src[pos:]) << (nbits & 63)
		n := (63 - nbits) >> 3
		pos += int(n)
		nbits += n << 3
		// The literals of up to three entries go to a window of eight
		// bytes, where the bounds checks are proved away.
		w := out[o : o+8 : o+8]
		e := litLen[bitBuf&(1<<litLenTableBits-1)]
		if e >= 1<<entryLiteralShift {
			bitBuf >>= e & entryBits
			nbits -= uint(e & entryBits)
			w[1] = byte(e >> 16)
			w[0] = byte(e >> 8)
			j := uint(e >> entryLiteralShift)
			e = litLen[bitBuf&(1<<litLenTableBits-1)]
			if e >= 1<<entryLiteralShift {
				bitBuf >>= e & entryBits
				nbits -= uint(e & entryBits)
				w[j+1] = byte(e >> 16)
				w[j] = byte(e >> 8)
				j += uint(e >> entryLiteralShift)
				e = litLen[bitBuf&(1<<litLenTableBits-1)]
				if e >= 1<<entryLiteralShift {
					bitBuf >>= e & entryBits
					nbits -= uint(e & entryBits)
					w[j+1] = byte(e >> 16)
					w[j] = byte(e >> 8)
					o += int(j + uint(e>>entryLiteralShift))
					continue
				}
			}
			o += int(j)
		}
		if e&entryLength == 0 {
			break
		}
		// A length with its extra bits and a distance with its extra bits
		// take at most 10+5+15+13 bits; two literal entries may have used
		// 20 of the 56 buffered.
		if nbits < 43 {
			bitBuf |= binary.LittleEndian.Uint64(src[pos:]) << (nbits & 63)
			n := (63 - nbits) >> 3
			pos += int(n)
			nbits += n << 3
		}
		// Read the pair without consuming it, so that whatever the fast
		// loop does not take is still there for slowSymbol.
		extra := uint(e >> 8 & 15)
		rest := bitBuf >> (e & entryBits)
		length := int(e>>12&511) + int(rest&(1<<extra-1))
		rest >>= extra
		d := dist[rest&(1<<distTableBits-1)]
		dsym := uint(d >> 16)
		if d == 0 || dsym >= uint(len(distBase)) {
			break
		}
		rest >>= d & entryBits
		dextra := uint(distExtra[dsym])
		distance := int(distBase[dsym]) + int(rest&(1<<dextra-1))
		if distance > o-start {
			break
		}
		bitBuf = rest >> dextra
		nbits -= uint(e&entryBits) + extra + uint(d&entryBits) + dextra
		from := o - distance
		if distance >= 8 {
			// Chunks never read bytes not yet written: each lies at least
			// eight bytes behind the one being written.
			for i := 0; i < length; i += 8 {
				binary.LittleEndian.PutUint64(out[o+i:], binary.LittleEndian.Uint64(out[from+i:]))
			}
		} else {
			for i := 0; i < length; i++ {
				out[o+i] = out[from+i]
			}
		}
		o += length
	}
	br.bits, br.nbits, br.pos = bitBuf, nbits, pos
	return o
}

func farDistance(distance int) *Error {
	return notZlib("distance " + strconv.Itoa(distance) + " reaches before the start of the data")
}

// slowSymbol decodes one literal/length symbol, and the distance of a
// length, checking everything: that the input holds the bits, that the
// output stays within limit, growing out when it is full. It returns the
// output position after the symbol, and end at the end of the block.
func slowSymbol(br *bitReader, out []byte, o, start, limit int, litLen *litLenCode, dist *shortCode) ([]byte, int, bool, *Error) {
	if br.nbits < maxCodeLen {
		br.refill()
	}
	sym, err := br.litLenSymbol(litLen)
	if err != nil {
		return out, o, false, err
	}
	if sym < 256 {
		if o >= limit {
			return out, o, false, tooLarge(limit)
		}
		if o >= len(out) {
			out = grown(out, o, 1)
		}
		out[o] = byte(sym)
		return out, o + 1, false, nil
	}
	if sym == 256 {
		return out, o, true, nil
	}
	sym -= 257
	if sym >= len(lengthBase) {
		return out, o, false, notZlib("invalid length symbol")
	}
	// The rest of the pair is at most 5+15+13 = 33 bits. With that
	// buffered, the extra bits and the distance code are there unless the
	// input ended; the checks below catch that.
	if br.nbits < 33 {
		br.refill()
	}
	n := uint(lengthExtra[sym])
	if br.nbits < n {
		return out, o, false, errTruncated
	}
	length := int(lengthBase[sym]) + int(br.bits&(1<<n-1))
	br.bits >>= n
	br.nbits -= n
	dsym, err := br.symbol(dist, distTableBits)
	if err != nil {
		return out, o, false, err
	}
	if dsym >= len(distBase) {
		return out, o, false, notZlib("invalid distance symbol")
	}
	n = uint(distExtra[dsym])
	if br.nbits < n {
		return out, o, false, errTruncated
	}
	distance := int(distBase[dsym]) + int(br.bits&(1<<n-1))
	br.bits >>= n
	br.nbits -= n
	if distance > o-start {
		return out, o, false, farDistance(distance)
	}
	end := o + length
	if end > limit {
		return out, o, false, tooLarge(limit)
	}
	if end > len(out) {
		out = grown(out, o, length)
	}
	from := o - distance
	// An overlapping match repeats its pattern; each copy doubles it.
	for to := o; to < end; {
		to += copy(out[to:end], out[from:to])
	}
	return out, end, false, nil
}

// grown returns a larger buffer holding out[:o], with room for n more
// bytes and for the fast loop to run again.
func grown(out []byte, o, n int) []byte {
	g := make([]byte, 2*len(out)+n+fastOutMargin)
	copy(g, out[:o])
	return g
}
