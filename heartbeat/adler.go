package heartbeat

import "encoding/binary"

// adler32Sum is hash/adler32's Checksum, eight bytes per step: a word's
// bytes are summed, and weighted by their distance from its end, in four
// 16-bit lanes by one multiplication each. It is about three times fewer
// instructions per byte; the checksum is on every heartbeat's inflated
// text.
func adler32Sum(p []byte) uint32 {
	const (
		mod   = 65521
		lanes = 0x00ff00ff00ff00ff
		// Weights 2, 4, 6, 8 for bytes 6, 4, 2, 0 and 1, 3, 5, 7 for
		// bytes 7, 5, 3, 1: each lands summed in the top lane.
		evenWeights = 2 | 4<<16 | 6<<32 | 8<<48
		oddWeights  = 1 | 3<<16 | 5<<32 | 7<<48
		laneSum     = 0x0001000100010001
		// Below 2^16 bytes per round, neither sum can overflow 64 bits.
		round = 1 << 16
	)
	s1, s2 := uint64(1), uint64(0)
	for len(p) > 0 {
		chunk := p[:min(len(p), round)]
		p = p[len(chunk):]
		for len(chunk) >= 8 {
			w := binary.LittleEndian.Uint64(chunk)
			even, odd := w&lanes, w>>8&lanes
			s2 += 8*s1 + (even*evenWeights)>>48 + (odd*oddWeights)>>48
			s1 += ((even + odd) * laneSum) >> 48
			chunk = chunk[8:]
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
