package heartbeat

import "encoding/binary"

// adlerLanes selects the even bytes of a word, each in a 16-bit lane. It
// is a variable, not a constant, so that it reaches adlerBlock in a
// register: the compiler loads a 64-bit constant afresh at each use.
var adlerLanes uint64 = 0x00ff00ff00ff00ff

// adler32Sum is hash/adler32's Checksum, 64 bytes per step, with no
// multiplication per word. Adler-32 is s1 = 1 + the sum of the bytes and
// s2 = the sum of s1 after each byte. Over a block of eight words, the
// bytes are summed in 16-bit lanes (a), and so are those running sums
// before each word (b): s2 then gains 64 times s1 at the block's start,
// 8 times the lanes of b, and each byte times its distance from its
// word's end, which the lanes of a give with one multiplication per
// block: about 13 instructions per eight bytes, where a multiplication per
// word took about 30. The checksum is on every heartbeat's inflated text.
func adler32Sum(p []byte) uint32 {
	const (
		mod = 65521
		// Below 2^16 bytes per round, neither sum can overflow 64 bits.
		round = 1 << 16
		block = 64
	)
	lanes := adlerLanes
	s1, s2 := uint64(1), uint64(0)
	for len(p) > 0 {
		chunk := p[:min(len(p), round)]
		p = p[len(chunk):]
		for len(chunk) >= block {
			bytes, before, weighted := adlerBlock((*[block]byte)(chunk), lanes)
			s2 += block*s1 + 8*before + weighted
			s1 += bytes
			chunk = chunk[block:]
		}
		for _, b := range chunk {
			s1 += uint64(b)
			s2 += s1
		}
		s1 %= mod
		s2 %= mod
	}
	return uint32(s2<<16 | s1)
}

// adlerBlock returns, for 64 bytes, their sum, the sum of the running sums
// before each of the eight words, and the sum of each byte times its
// distance from its word's end. It is a function of its own so that its
// four lane sums stay in registers.
func adlerBlock(words *[64]byte, lanes uint64) (bytes, before, weighted uint64) {
	const (
		// Weights 8, 6, 4, 2 for bytes 0, 2, 4, 6 and 7, 5, 3, 1 for
		// bytes 1, 3, 5, 7: each lands summed in the top lane.
		evenWeights = 2 | 4<<16 | 6<<32 | 8<<48
		oddWeights  = 1 | 3<<16 | 5<<32 | 7<<48
		laneSum     = 0x0001000100010001
	)
	// Eight words keep every lane below 2^16: a below 8*255, b below
	// 28*255, and their sums and weighted sums below 2^16 too.
	var aEven, aOdd, bEven, bOdd uint64
	for i := 0; i < len(words); i += 8 {
		w := binary.LittleEndian.Uint64(words[i:])
		bEven += aEven
		bOdd += aOdd
		aEven += w & lanes
		aOdd += w >> 8 & lanes
	}
	bytes = (aEven + aOdd) * laneSum >> 48
	before = (bEven + bOdd) * laneSum >> 48
	weighted = (aEven*evenWeights)>>48 + (aOdd*oddWeights)>>48
	return bytes, before, weighted
}
