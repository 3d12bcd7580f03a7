package heartbeat

import (
	"bytes"
	"compress/zlib"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// sealWith builds an envelope by hand, the way the vectors were built, so
// the tests do not trust Seal to test Open.
func sealWith(key string, text []byte, form MACForm, level int) []byte {
	var buf bytes.Buffer
	w, _ := zlib.NewWriterLevel(&buf, level)
	w.Write(text)
	w.Close()
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write(buf.Bytes())
	sum := mac.Sum(nil)
	if form == MACHex {
		return append(buf.Bytes(), hex.EncodeToString(sum)...)
	}
	return append(buf.Bytes(), sum...)
}

func TestKeyringRotation(t *testing.T) {
	text := []byte(`{"id": "a", "listeners": {}, "pools": {}, "ver": 3}`)
	kr := keyring(t, "new", "old", "older")
	cases := []struct {
		key  string
		form MACForm
		want Verified
	}{
		{"new", MACHex, Verified{0, MACHex}},
		{"old", MACHex, Verified{1, MACHex}},
		{"older", MACRaw, Verified{2, MACRaw}},
		{"new", MACRaw, Verified{0, MACRaw}},
	}
	for _, c := range cases {
		msg, v, err := kr.Open(sealWith(c.key, text, c.form, 9))
		if err != nil {
			t.Fatalf("%s/%v: %v", c.key, c.form, err)
		}
		if v != c.want || msg.AmphoraID != "a" {
			t.Errorf("%s/%v: verified %+v id %q, want %+v", c.key, c.form, v, msg.AmphoraID, c.want)
		}
	}
	if _, _, err := kr.Open(sealWith("unknown", text, MACHex, 9)); ReasonOf(err) != ReasonBadMAC {
		t.Errorf("unknown key: %v, want bad_mac", err)
	}
	// Sealing uses the primary key only.
	sealed := kr.Seal(text)
	if _, v, err := kr.Open(sealed); err != nil || v != (Verified{0, MACHex}) {
		t.Errorf("sealed datagram opened as %+v, %v", v, err)
	}
	if _, _, err := keyring(t, "old").Open(sealed); ReasonOf(err) != ReasonBadMAC {
		t.Errorf("sealed with a non-primary key: %v", err)
	}
}

func TestNewKeyringValidates(t *testing.T) {
	if _, err := NewKeyring(KeyringConfig{}); err == nil {
		t.Error("a keyring without keys was accepted")
	}
	if _, err := NewKeyring(KeyringConfig{Keys: []string{"k"}, MaxInflatedBytes: -1}); err == nil {
		t.Error("a negative cap was accepted")
	}
	kr, err := NewKeyring(KeyringConfig{Keys: []string{""}})
	if err != nil || kr.Len() != 1 {
		t.Errorf("the empty key is a valid key to Octavia: %v", err)
	}
}

func TestInflationCap(t *testing.T) {
	base := `{"id": "a", "listeners": {}, "pools": {}, "ver": 3, "pad": "`
	mk := func(size int) []byte {
		return []byte(base + strings.Repeat("x", size-len(base)-2) + `"}`)
	}
	const limit = 1000
	kr, err := NewKeyring(KeyringConfig{Keys: []string{"k"}, MaxInflatedBytes: limit})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		size int
		want Reason
	}{{limit - 1, ReasonNone}, {limit, ReasonNone}, {limit + 1, ReasonTooLarge}, {100 * limit, ReasonTooLarge}} {
		_, _, err := kr.Open(sealWith("k", mk(c.size), MACHex, 9))
		if got := ReasonOf(err); got != c.want {
			t.Errorf("%d bytes: %v, want %v", c.size, err, c.want)
		}
	}
	// A corrupt trailer is still caught when the text is exactly at the cap.
	good := sealWith("k", mk(limit), MACHex, 9)
	payload := append([]byte(nil), good[:len(good)-hexMACLen]...)
	payload[len(payload)-1] ^= 0xff
	mac := hmac.New(sha256.New, []byte("k"))
	mac.Write(payload)
	bad := append(payload, hex.EncodeToString(mac.Sum(nil))...)
	if _, _, err := kr.Open(bad); ReasonOf(err) != ReasonNotZlib {
		t.Errorf("bad Adler-32 at the cap: %v, want not_zlib", err)
	}
	// The default cap is 4 MiB.
	big := keyring(t, "k")
	if _, _, err := big.Open(sealWith("k", mk(DefaultMaxInflatedBytes+1), MACHex, 9)); ReasonOf(err) != ReasonTooLarge {
		t.Errorf("4 MiB + 1: %v, want too_large", err)
	}
	if _, _, err := big.Open(sealWith("k", mk(DefaultMaxInflatedBytes), MACHex, 9)); err != nil {
		t.Errorf("exactly 4 MiB: %v", err)
	}
}

// The MAC must be checked before inflating: a datagram whose payload would
// inflate to garbage, with a wrong MAC, is bad_mac, never not_zlib.
func TestMACCheckedBeforeInflating(t *testing.T) {
	garbage := append(bytes.Repeat([]byte{0xde, 0xad}, 50), bytes.Repeat([]byte("0"), hexMACLen)...)
	if _, _, err := keyring(t, "k").Open(garbage); ReasonOf(err) != ReasonBadMAC {
		t.Errorf("got %v, want bad_mac", err)
	}
	for n := 0; n < rawMACLen; n++ {
		if _, _, err := keyring(t, "k").Open(make([]byte, n)); ReasonOf(err) != ReasonShort {
			t.Errorf("%d bytes: %v, want short", n, err)
		}
	}
}

func TestKeyringNeverPrintsKeys(t *testing.T) {
	kr := keyring(t, "s3cr3t-key", "older-s3cr3t")
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("loaded", "keyring", kr)
	out := buf.String() + fmt.Sprint(kr) + fmt.Sprintf("%v %+v", kr, kr)
	if strings.Contains(out, "s3cr3t") {
		t.Errorf("key material in output: %s", out)
	}
	if !strings.Contains(buf.String(), "2 keys") {
		t.Errorf("log line %q does not give the key count", buf.String())
	}
	_, _, err := kr.Open([]byte(strings.Repeat("x", 200)))
	if strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("key material in error: %v", err)
	}
}

// randomMessage builds a message of any version with awkward strings.
func randomMessage(r *rand.Rand) *Message {
	strs := []string{"", "a", "UP", "DOWN 1/2", "no check", "é", "😀", "\x00\x1f\x7f", `"\`, "<&>", "p:l", "\u2028", "\ufeff"}
	str := func() string {
		if r.IntN(3) == 0 {
			return strs[r.IntN(len(strs))]
		}
		return fmt.Sprintf("%08x-%04x", r.Uint32(), r.Uint32()&0xffff)
	}
	i64 := func() int64 {
		switch r.IntN(4) {
		case 0:
			return 0
		case 1:
			return r.Int64()
		case 2:
			return -r.Int64()
		}
		return int64(r.IntN(1000))
	}
	pools := func() []Pool {
		ps := make([]Pool, r.IntN(4))
		for i := range ps {
			ps[i] = Pool{Key: fmt.Sprintf("%s:%d", str(), i), Status: str(), Members: make([]Member, r.IntN(5))}
			for j := range ps[i].Members {
				ps[i].Members[j] = Member{ID: fmt.Sprintf("%s-%d", str(), j), Status: str()}
			}
		}
		return ps
	}
	m := &Message{AmphoraID: str(), HasSeq: r.IntN(5) > 0, HasVersion: r.IntN(5) > 0}
	if m.HasSeq {
		m.Seq = i64()
	}
	if m.HasVersion {
		m.Version = int64(r.IntN(5))
	}
	m.Listeners = make([]Listener, r.IntN(4))
	for i := range m.Listeners {
		l := &m.Listeners[i]
		l.ID = fmt.Sprintf("%s/%d", str(), i)
		l.Status = str()
		l.HasStats = r.IntN(5) > 0
		if l.HasStats {
			l.Stats = Stats{TX: i64(), RX: i64(), Conns: i64(), TotConns: i64(), EReq: i64()}
		}
		if m.PoolsPerListener() && r.IntN(4) > 0 {
			l.HasPools = true
			l.Pools = pools()
		}
	}
	if !m.PoolsPerListener() {
		m.Pools = pools()
	}
	return m
}

// canonical makes empty and nil collections compare equal.
//
// The lone-surrogate flags say something about the original text that an
// encoding cannot carry (the id holds U+FFFD in its place), so they are
// cleared.
func canonical(m *Message) *Message {
	c := *m
	c.AmphoraIDLoneSurrogate = false
	c.Listeners = append([]Listener{}, m.Listeners...)
	for i := range c.Listeners {
		c.Listeners[i].Pools = canonicalPools(c.Listeners[i].Pools)
		c.Listeners[i].IDLoneSurrogate = false
	}
	if !m.PoolsPerListener() {
		c.Pools = canonicalPools(m.Pools)
	}
	return &c
}

func canonicalPools(ps []Pool) []Pool {
	out := append([]Pool{}, ps...)
	for i := range out {
		out[i].Members = append([]Member{}, out[i].Members...)
	}
	return out
}

func TestSealOpenRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	kr := keyring(t, "round-trip-ключ")
	for i := 0; i < 2000; i++ {
		want := randomMessage(r)
		got, v, err := kr.Open(kr.SealMessage(want))
		if err != nil {
			t.Fatalf("message %d %+v: %v", i, want, err)
		}
		if v != (Verified{0, MACHex}) {
			t.Fatalf("verified as %+v", v)
		}
		// Invalid UTF-8 cannot survive (Python strings cannot hold it);
		// everything generated here is valid.
		if !reflect.DeepEqual(canonical(got), canonical(want)) {
			t.Fatalf("message %d round trip differs\n got %+v\nwant %+v", i, got, want)
		}
	}
}

func TestSealIsZlibLevel9WithHexMAC(t *testing.T) {
	text := []byte(`{"id": "00000000-0000-0000-0000-000000000001", "seq": 0, "listeners": {}, "pools": {}, "ver": 3}`)
	sealed := keyring(t, "insecure").Seal(text)
	if !bytes.HasPrefix(sealed, []byte{0x78, 0xda}) {
		t.Errorf("header % x, want 78 da (zlib, best compression)", sealed[:2])
	}
	mac := sealed[len(sealed)-hexMACLen:]
	if strings.ToLower(string(mac)) != string(mac) {
		t.Errorf("MAC %q is not lowercase hex", mac)
	}
	want := sealWith("insecure", text, MACHex, 9)
	// Go's deflate output is its own; only the MAC over it must be right.
	h := hmac.New(sha256.New, []byte("insecure"))
	h.Write(sealed[:len(sealed)-hexMACLen])
	if hex.EncodeToString(h.Sum(nil)) != string(mac) {
		t.Error("MAC does not cover the compressed bytes")
	}
	if !bytes.Equal(sealed, want) {
		t.Logf("note: Seal output differs from a fresh zlib writer's (%d vs %d bytes)", len(sealed), len(want))
	}
}

func TestOpenIsSafeForConcurrentUse(t *testing.T) {
	kr := keyring(t, "k1", "k2")
	r := rand.New(rand.NewPCG(3, 4))
	var msgs []*Message
	var datagrams [][]byte
	for i := 0; i < 50; i++ {
		m := randomMessage(r)
		msgs = append(msgs, m)
		datagrams = append(datagrams, kr.SealMessage(m))
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := range datagrams {
				j := (i + g) % len(datagrams)
				got, _, err := kr.Open(datagrams[j])
				if err != nil || !reflect.DeepEqual(canonical(got), canonical(msgs[j])) {
					t.Errorf("goroutine %d message %d: %v", g, j, err)
					return
				}
			}
		}(g)
	}
	wg.Wait()
}
