package heartbeat

import (
	"bytes"
	"compress/zlib"
	"io"
	"math/rand/v2"
	"testing"
)

func zlibCompress(t testing.TB, data []byte, level int) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := zlib.NewWriterLevel(&buf, level)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	w.Close()
	return buf.Bytes()
}

// stdInflate is the reference: compress/zlib read to EOF.
func stdInflate(src []byte) ([]byte, error) {
	r, err := zlib.NewReader(bytes.NewReader(src))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

// testCorpus covers literal-only, repetitive, long-distance and
// incompressible data, across the size where stored blocks split (64 KiB).
func testCorpus() map[string][]byte {
	r := rand.New(rand.NewPCG(7, 7))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	text := typicalMessage().AppendJSON(nil)
	corpus := map[string][]byte{
		"empty":         {},
		"one byte":      {'x'},
		"heartbeat":     text,
		"run":           bytes.Repeat([]byte{'a'}, 100_000),
		"short pattern": bytes.Repeat([]byte("ab"), 3000),
		"random 1k":     random(1000),
		"random 70k":    random(70_000),
		"text 200k":     bytes.Repeat(text, 200_000/len(text)),
		"far matches":   append(append(random(30_000), random(5000)...), random(30_000)[:0]...),
		"all byte codes": func() []byte {
			b := make([]byte, 256*4)
			for i := range b {
				b[i] = byte(i)
			}
			return b
		}(),
	}
	far := random(40_000)
	corpus["matches 32k back"] = append(append([]byte{}, far...), far[:20_000]...)
	return corpus
}

func TestInflateMatchesCompressZlib(t *testing.T) {
	levels := []int{zlib.HuffmanOnly, zlib.DefaultCompression, zlib.NoCompression, 1, 2, 5, 6, 9}
	for name, data := range testCorpus() {
		for _, level := range levels {
			src := zlibCompress(t, data, level)
			got, err := inflateZlib(nil, src, len(data)+1)
			if err != nil {
				t.Fatalf("%s level %d: %v", name, level, err)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("%s level %d: output differs (%d bytes, want %d)", name, level, len(got), len(data))
			}
		}
	}
}

func TestInflateLimitAndAppend(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 1000)
	src := zlibCompress(t, data, 9)
	if _, err := inflateZlib(nil, src, len(data)-1); err == nil || err.Reason != ReasonTooLarge {
		t.Errorf("one byte over the limit: %v", err)
	}
	if out, err := inflateZlib([]byte("prefix"), src, len(data)); err != nil || string(out[:6]) != "prefix" || !bytes.Equal(out[6:], data) {
		t.Errorf("append to a non-empty buffer: %v", err)
	}
	stored := zlibCompress(t, data, zlib.NoCompression)
	if _, err := inflateZlib(nil, stored, 10); err == nil || err.Reason != ReasonTooLarge {
		t.Errorf("stored block over the limit: %v", err)
	}
}

func TestInflateRejects(t *testing.T) {
	good := zlibCompress(t, []byte("hello, hello, hello"), 9)
	mutate := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	cases := map[string][]byte{
		"empty":               {},
		"header only":         good[:2],
		"bad method":          mutate(func(b []byte) []byte { b[0] = 0x79; return b }),
		"bad header check":    mutate(func(b []byte) []byte { b[1]++; return b }),
		"window too large":    {0x88, 0x1c, 0x03, 0x00},
		"preset dictionary":   {0x78, 0xbb, 0, 0, 0, 1, 0x03, 0x00},
		"no adler":            good[:len(good)-4],
		"short adler":         good[:len(good)-1],
		"bad adler":           mutate(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }),
		"block type 3":        {0x78, 0x9c, 0x07},
		"stored length check": {0x78, 0x9c, 0x01, 0x05, 0x00, 0x00, 0x00},
		"stored truncated":    {0x78, 0x9c, 0x01, 0x05, 0x00, 0xfa, 0xff, 'a'},
		// A fixed-Huffman block whose first symbol is a match at distance
		// 1, with nothing written yet.
		"distance too far": {0x78, 0x9c, 0x03, 0x02, 0x00},
	}
	for name, src := range cases {
		out, err := inflateZlib(nil, src, 1<<20)
		if err == nil {
			t.Errorf("%s: accepted, output %q", name, out)
			continue
		}
		if err.Reason != ReasonNotZlib {
			t.Errorf("%s: reason %v", name, err.Reason)
		}
		if _, stdErr := stdInflate(src); stdErr == nil {
			t.Errorf("%s: compress/zlib accepts what we reject", name)
		}
	}
}

// FuzzInflate checks the decoder against compress/zlib on arbitrary input:
// both accept with the same output, or both reject.
func FuzzInflate(f *testing.F) {
	for _, data := range testCorpus() {
		if len(data) < 5000 {
			f.Add(zlibCompress(f, data, 9))
			f.Add(zlibCompress(f, data, 1))
			f.Add(zlibCompress(f, data, zlib.HuffmanOnly))
			f.Add(zlibCompress(f, data, zlib.NoCompression))
		}
	}
	for _, v := range vectors(f).Invalid {
		f.Add(mustHex(f, v.EnvelopeHex))
	}
	const limit = 1 << 20
	f.Fuzz(func(t *testing.T, src []byte) {
		got, err := inflateZlib(nil, src, limit)
		want, stdErr := stdInflate(src)
		if stdErr == nil && len(want) > limit {
			if err == nil || err.Reason != ReasonTooLarge {
				t.Fatalf("over the limit: %v", err)
			}
			return
		}
		if (err == nil) != (stdErr == nil) {
			t.Fatalf("we say %v, compress/zlib says %v", err, stdErr)
		}
		if err == nil && !bytes.Equal(got, want) {
			t.Fatalf("output differs: %q vs %q", got, want)
		}
	})
}
