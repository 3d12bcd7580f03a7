package heartbeat

import (
	"bytes"
	"compress/zlib"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"log/slog"
	"strconv"
	"sync"
	"unicode/utf8"
)

// The envelope is zlib(JSON) followed by HMAC-SHA256(key, zlib bytes),
// either as 64 lowercase hex characters (current senders) or as the 32 raw
// bytes (legacy senders). There is no length field or magic, so the MAC form
// is found by trying both.
const (
	hexMACLen = 2 * sha256.Size
	rawMACLen = sha256.Size
)

// DefaultMaxInflatedBytes caps the inflated JSON. Octavia has no cap; the
// biggest real heartbeat (about 3,000 members, the UDP size ceiling)
// inflates to well under 1 MiB.
const DefaultMaxInflatedBytes = 4 << 20

// MACForm is how a datagram carried its MAC.
type MACForm uint8

const (
	// MACHex is the 64-byte lowercase hex digest that current agents send.
	MACHex MACForm = iota + 1
	// MACRaw is the 32-byte raw digest of pre-Stein agents.
	MACRaw
)

func (f MACForm) String() string {
	switch f {
	case MACHex:
		return "hex"
	case MACRaw:
		return "raw"
	}
	return "none"
}

// KeyringConfig configures a Keyring.
type KeyringConfig struct {
	// Keys are heartbeat keys as configured; each is used as its UTF-8
	// bytes. The first seals; every one is accepted when opening, which is
	// what lets an operator rotate keys without a mass failover. The empty
	// string is a valid key, as it is to Octavia.
	Keys []string
	// MaxInflatedBytes caps the inflated JSON text; a larger payload is
	// rejected as too_large. Zero means DefaultMaxInflatedBytes.
	MaxInflatedBytes int
	// Strict rejects as malformed every message with a field missing or of
	// another type than a well-formed heartbeat has, instead of applying it
	// as Octavia does ([health_manager] strict_heartbeats; off by default).
	Strict bool
}

// Keyring seals and opens heartbeat datagrams. It is safe for concurrent
// use and never prints its keys.
type Keyring struct {
	keys        []*hmacKey
	maxInflated int
	strict      bool
}

type hmacKey struct {
	pool sync.Pool // of *macState keyed with this key
}

// macState is a keyed hash with room for its digest: a digest written
// into the caller's stack array would escape through the hash.Hash
// interface and cost an allocation per datagram.
type macState struct {
	h   hash.Hash
	out [sha256.Size]byte
}

func newHMACKey(key string) *hmacKey {
	k := &hmacKey{}
	secret := []byte(key)
	k.pool.New = func() any { return &macState{h: hmac.New(sha256.New, secret)} }
	return k
}

// sum returns HMAC-SHA256(key, data).
func (k *hmacKey) sum(data []byte) [sha256.Size]byte {
	st := k.pool.Get().(*macState)
	st.h.Reset()
	st.h.Write(data)
	st.h.Sum(st.out[:0])
	out := st.out
	k.pool.Put(st)
	return out
}

// NewKeyring builds a keyring; it needs at least one key.
func NewKeyring(cfg KeyringConfig) (*Keyring, error) {
	if len(cfg.Keys) == 0 {
		return nil, errors.New("heartbeat keyring needs at least one key")
	}
	if cfg.MaxInflatedBytes < 0 {
		return nil, errors.New("heartbeat keyring: MaxInflatedBytes must not be negative")
	}
	kr := &Keyring{maxInflated: cfg.MaxInflatedBytes, strict: cfg.Strict}
	if kr.maxInflated == 0 {
		kr.maxInflated = DefaultMaxInflatedBytes
	}
	for _, key := range cfg.Keys {
		kr.keys = append(kr.keys, newHMACKey(key))
	}
	return kr, nil
}

// Len returns the number of keys.
func (kr *Keyring) Len() int { return len(kr.keys) }

// LogValue keeps keys out of logs: only their count is shown.
func (kr *Keyring) LogValue() slog.Value {
	return slog.StringValue("keyring(" + strconv.Itoa(len(kr.keys)) + " keys)")
}

// String keeps keys out of fmt output as well.
func (kr *Keyring) String() string { return kr.LogValue().String() }

// Verified says how a datagram authenticated.
type Verified struct {
	// KeyIndex is the position in KeyringConfig.Keys of the key that matched;
	// anything but 0 means the sender still uses a previous key.
	KeyIndex int
	Form     MACForm
}

// verify finds the key and MAC form that authenticate the datagram and
// returns the payload they cover. As Octavia does, it tries the hex form
// before the raw one; comparisons are constant-time, and an uppercase hex
// MAC does not match.
func (kr *Keyring) verify(datagram []byte) ([]byte, Verified, *Error) {
	if len(datagram) < rawMACLen {
		return nil, Verified{}, reject(ReasonShort,
			strconv.Itoa(len(datagram))+" bytes cannot hold a MAC")
	}
	var hexSum [hexMACLen]byte
	// A hex digest is lowercase hex, so a tail that is not cannot match:
	// skipping it saves one HMAC per key for most garbage. The tail is the
	// sender's, so the shortcut leaks nothing about the keys.
	if len(datagram) >= hexMACLen && isLowerHex(datagram[len(datagram)-hexMACLen:]) {
		payload, mac := datagram[:len(datagram)-hexMACLen], datagram[len(datagram)-hexMACLen:]
		for i, k := range kr.keys {
			sum := k.sum(payload)
			hex.Encode(hexSum[:], sum[:])
			if hmac.Equal(hexSum[:], mac) {
				return payload, Verified{KeyIndex: i, Form: MACHex}, nil
			}
		}
	}
	payload, mac := datagram[:len(datagram)-rawMACLen], datagram[len(datagram)-rawMACLen:]
	for i, k := range kr.keys {
		if sum := k.sum(payload); hmac.Equal(sum[:], mac) {
			return payload, Verified{KeyIndex: i, Form: MACRaw}, nil
		}
	}
	return nil, Verified{}, reject(ReasonBadMAC, "no key verifies the datagram in hex or raw MAC form")
}

func isLowerHex(b []byte) bool {
	for _, c := range b {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

var inflateBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 8<<10); return &b }}

// maxPooledInflateBuffer keeps one large message from pinning its buffer.
const maxPooledInflateBuffer = 256 << 10

// inflate decompresses the zlib payload into a string of at most limit bytes.
func inflate(payload []byte, limit int) (string, *Error) {
	bufPtr := inflateBuffers.Get().(*[]byte)
	out, err := inflateZlib((*bufPtr)[:0], payload, limit)
	text := ""
	if err == nil {
		text = string(out)
	}
	if cap(out) <= maxPooledInflateBuffer {
		*bufPtr = out[:0]
		inflateBuffers.Put(bufPtr)
	}
	return text, err
}

// OpenText authenticates a datagram and returns its inflated JSON text,
// checked to be UTF-8. The MAC is verified before anything is inflated.
func (kr *Keyring) OpenText(datagram []byte) (string, Verified, error) {
	payload, v, verr := kr.verify(datagram)
	if verr != nil {
		return "", v, verr
	}
	text, ierr := inflate(payload, kr.maxInflated)
	if ierr != nil {
		return "", v, ierr
	}
	if !utf8.ValidString(text) {
		return "", v, reject(ReasonNotUTF8, "inflated text is not valid UTF-8")
	}
	return text, v, nil
}

// Open authenticates, inflates and decodes a datagram into a Message.
// RecvTime is left for the caller to stamp.
func (kr *Keyring) Open(datagram []byte) (*Message, Verified, error) {
	payload, v, verr := kr.verify(datagram)
	if verr != nil {
		return nil, v, verr
	}
	text, ierr := inflate(payload, kr.maxInflated)
	if ierr != nil {
		return nil, v, ierr
	}
	// What decodeFast takes is ASCII, so it needs no UTF-8 check.
	if msg, ok := decodeFast(text); ok {
		return msg, v, nil
	}
	if !utf8.ValidString(text) {
		return nil, v, reject(ReasonNotUTF8, "inflated text is not valid UTF-8")
	}
	msg, err := decodeGeneral(text, kr.strict)
	if err != nil {
		return nil, v, err
	}
	return msg, v, nil
}

var deflaters = sync.Pool{New: func() any {
	w, _ := zlib.NewWriterLevel(nil, zlib.BestCompression)
	return w
}}

// Seal compresses JSON text at zlib level 9 and appends the lowercase hex
// HMAC of the primary key, as current amphora agents do. The compressed
// bytes differ from Python's zlib, which is harmless: the MAC covers the
// bytes actually sent, and every zlib inflates them.
func (kr *Keyring) Seal(text []byte) []byte {
	var buf bytes.Buffer
	buf.Grow(len(text)/2 + hexMACLen + 64)
	w := deflaters.Get().(*zlib.Writer)
	w.Reset(&buf)
	// Writes to a bytes.Buffer cannot fail.
	_, _ = w.Write(text)
	_ = w.Close()
	deflaters.Put(w)
	var hexSum [hexMACLen]byte
	sum := kr.keys[0].sum(buf.Bytes())
	hex.Encode(hexSum[:], sum[:])
	buf.Write(hexSum[:])
	return buf.Bytes()
}

// SealMessage encodes a message as an Octavia agent does and seals it.
func (kr *Keyring) SealMessage(m *Message) []byte {
	return kr.Seal(m.AppendJSON(nil))
}
