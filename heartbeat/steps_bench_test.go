package heartbeat

import (
	"testing"
	"unicode/utf8"
)

// BenchmarkOpenSteps splits opening a typical datagram (ten members) into
// its steps, to show where the time goes.
func BenchmarkOpenSteps(b *testing.B) {
	kr := keyring(b, "insecure")
	datagram := kr.SealMessage(scaledMessage(10))
	payload := datagram[:len(datagram)-hexMACLen]
	text := scaledMessage(10).AppendJSON(nil)
	b.Run("verify", func(b *testing.B) {
		start := processCPU()
		for b.Loop() {
			kr.verify(datagram)
		}
		cpuPerOp(b, start)
	})
	b.Run("inflate", func(b *testing.B) {
		buf := make([]byte, 0, 8192)
		start := processCPU()
		for b.Loop() {
			inflateZlib(buf[:0], payload, 1<<20)
		}
		cpuPerOp(b, start)
	})
	b.Run("adler", func(b *testing.B) {
		start := processCPU()
		for b.Loop() {
			adler32Sum(text)
		}
		cpuPerOp(b, start)
	})
	b.Run("utf8", func(b *testing.B) {
		start := processCPU()
		for b.Loop() {
			utf8.Valid(text)
		}
		cpuPerOp(b, start)
	})
	s := string(text)
	b.Run("parse", func(b *testing.B) {
		nodes := make([]node, 0, 256)
		start := processCPU()
		for b.Loop() {
			nodes, _ = parseJSON(s, nodes)
		}
		cpuPerOp(b, start)
	})
	b.Run("decodeText", func(b *testing.B) {
		start := processCPU()
		for b.Loop() {
			decodeText(s, false)
		}
		cpuPerOp(b, start)
	})
}
