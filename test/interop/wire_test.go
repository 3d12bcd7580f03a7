//go:build interop

package interop

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/octavia-vpp/health/heartbeat"
)

// perVersion is how many random messages each direction seals per message
// version: half with a hex digest, half with a raw one, 500 of each.
const perVersion = 1000

// wireVersions are the message versions: -1 is a message without "ver"
// (V0 as Rocky agents sent it), 0 an explicit "ver": 0.
var wireVersions = []int64{-1, 0, 1, 2, 3}

// randString mixes what JSON escaping and UTF-8 handling can get wrong:
// quotes, backslashes, control characters, non-ASCII, characters beyond
// the BMP (surrogate pairs in Python's output), '<>&' (HTML escaping).
func randString(r *rand.Rand, maxLen int) string {
	alphabets := []string{
		"abcdef0123456789-",
		`"\/` + "\b\f\n\r\t\x00\x01\x1f\x7f",
		"<>&:' ",
		"éßü€中文",
		"😀𝄞\U0010FFFF",
	}
	n := r.IntN(maxLen + 1)
	var b strings.Builder
	for range n {
		a := []rune(alphabets[r.IntN(len(alphabets))])
		if r.IntN(3) > 0 {
			a = []rune(alphabets[0])
		}
		b.WriteRune(a[r.IntN(len(a))])
	}
	return b.String()
}

func randInt(r *rand.Rand) int64 {
	switch r.IntN(6) {
	case 0:
		return r.Int64() // up to 2^63-1, beyond float precision
	case 1:
		return -r.Int64N(1 << 40)
	case 2:
		return 0
	default:
		return r.Int64N(1 << 32)
	}
}

func randPools(r *rand.Rand) []heartbeat.Pool {
	pools := make([]heartbeat.Pool, 0, 3)
	seen := map[string]bool{}
	for range r.IntN(4) {
		key := randString(r, 12)
		if r.IntN(2) == 0 {
			key += ":" + randString(r, 8)
		}
		if seen[key] {
			continue
		}
		seen[key] = true
		p := heartbeat.Pool{Key: key, Status: randString(r, 6), Members: []heartbeat.Member{}}
		mseen := map[string]bool{}
		for range r.IntN(5) {
			id := randString(r, 10)
			if mseen[id] {
				continue
			}
			mseen[id] = true
			p.Members = append(p.Members, heartbeat.Member{ID: id, Status: randString(r, 8)})
		}
		pools = append(pools, p)
	}
	return pools
}

// randMessage is a random message of a version, in the shape our decoder
// produces, so that decoding its encoding must give it back exactly.
func randMessage(r *rand.Rand, ver int64) *heartbeat.Message {
	m := &heartbeat.Message{AmphoraID: randString(r, 36), Listeners: []heartbeat.Listener{}}
	if ver >= 0 {
		m.Version, m.HasVersion = ver, true
	}
	if r.IntN(5) > 0 {
		m.Seq, m.HasSeq = randInt(r), true
	}
	seen := map[string]bool{}
	for range r.IntN(5) {
		id := randString(r, 36)
		if seen[id] {
			continue
		}
		seen[id] = true
		l := heartbeat.Listener{ID: id, Status: randString(r, 6)}
		if r.IntN(6) > 0 {
			l.HasStats = true
			l.Stats = heartbeat.Stats{TX: randInt(r), RX: randInt(r), Conns: randInt(r), TotConns: randInt(r), EReq: randInt(r)}
		}
		if m.PoolsPerListener() && r.IntN(6) > 0 {
			l.HasPools = true
			l.Pools = randPools(r)
		}
		m.Listeners = append(m.Listeners, l)
	}
	if !m.PoolsPerListener() {
		m.Pools = randPools(r)
	}
	return m
}

// rawSeal seals with the raw 32-byte digest of pre-Stein senders; our
// sender only writes the hex form.
func rawSeal(key string, m *heartbeat.Message) []byte {
	kr, _ := heartbeat.NewKeyring(heartbeat.KeyringConfig{Keys: []string{key}})
	hexForm := kr.SealMessage(m)
	payload := hexForm[:len(hexForm)-64]
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write(payload)
	return append(append([]byte(nil), payload...), mac.Sum(nil)...)
}

type sealReq struct {
	Key  string `json:"key"`
	Hex  bool   `json:"hex"`
	Text string `json:"text"`
}

type sealResp struct {
	B64 string `json:"b64"`
}

type openReq struct {
	Key string `json:"key"`
	B64 string `json:"b64"`
}

type openResp struct {
	OK    bool   `json:"ok"`
	Text  string `json:"text"`
	Error string `json:"error"`
}

func wireSeed(t *testing.T) uint64 {
	seed := rand.Uint64()
	t.Logf("wire seed %d (INTEROP_WIRE_SEED=%d to repeat)", seed, seed)
	if s := envUint("INTEROP_WIRE_SEED"); s != nil {
		seed = *s
	}
	return seed
}

// TestWireOctaviaSeals: Octavia's wrap_envelope seals random messages of
// every version with random keys, hex and raw digests; our Open must give
// exactly the message that was sealed, and the JSON text Octavia wrote must
// be the text our encoder writes.
func TestWireOctaviaSeals(t *testing.T) {
	r := rand.New(rand.NewPCG(wireSeed(t), 1))
	var msgs []*heartbeat.Message
	var reqs []sealReq
	for _, ver := range wireVersions {
		for i := range perVersion {
			m := randMessage(r, ver)
			msgs = append(msgs, m)
			reqs = append(reqs, sealReq{Key: randString(r, 20), Hex: i%2 == 0, Text: string(m.AppendJSON(nil))})
		}
	}
	resps := glueLines[sealReq, sealResp](t, "seal", reqs)
	failures := 0
	for i, resp := range resps {
		datagram, err := base64.StdEncoding.DecodeString(resp.B64)
		if err != nil {
			t.Fatal(err)
		}
		kr, err := heartbeat.NewKeyring(heartbeat.KeyringConfig{Keys: []string{reqs[i].Key}})
		if err != nil {
			t.Fatal(err)
		}
		text, v, err := kr.OpenText(datagram)
		if err != nil {
			t.Errorf("message %d (hex %v): Octavia's envelope rejected: %v\n%s", i, reqs[i].Hex, err, reqs[i].Text)
			failures++
			continue
		}
		if wantForm := map[bool]heartbeat.MACForm{true: heartbeat.MACHex, false: heartbeat.MACRaw}[reqs[i].Hex]; v.Form != wantForm {
			t.Errorf("message %d: MAC form %v, want %v", i, v.Form, wantForm)
		}
		if text != reqs[i].Text {
			t.Errorf("message %d: Octavia wrote JSON text\n%q\nour encoder writes\n%q", i, text, reqs[i].Text)
			failures++
		}
		got, _, err := kr.Open(datagram)
		if err != nil {
			t.Errorf("message %d: %v", i, err)
			failures++
			continue
		}
		if !reflect.DeepEqual(got, msgs[i]) {
			t.Errorf("message %d: opened\n%#v\nwant\n%#v", i, got, msgs[i])
			failures++
		}
		if failures > 10 {
			t.Fatal("too many differences")
		}
	}
	t.Logf("%d messages sealed by Octavia, opened identically by us", len(resps))
}

// TestWireWeSeal: our encoder seals random messages (hex as our sender
// does, and raw digests built from it); Octavia's unwrap_envelope must give
// exactly our objects, which its jsonutils.dumps renders as our text.
func TestWireWeSeal(t *testing.T) {
	r := rand.New(rand.NewPCG(wireSeed(t), 2))
	var reqs []openReq
	var texts []string
	for _, ver := range wireVersions {
		for i := range perVersion {
			m := randMessage(r, ver)
			key := randString(r, 20)
			var datagram []byte
			if i%2 == 0 {
				kr, err := heartbeat.NewKeyring(heartbeat.KeyringConfig{Keys: []string{key}})
				if err != nil {
					t.Fatal(err)
				}
				datagram = kr.SealMessage(m)
			} else {
				datagram = rawSeal(key, m)
			}
			reqs = append(reqs, openReq{Key: key, B64: base64.StdEncoding.EncodeToString(datagram)})
			texts = append(texts, string(m.AppendJSON(nil)))
		}
	}
	resps := glueLines[openReq, openResp](t, "open", reqs)
	bad := 0
	for i, resp := range resps {
		if !resp.OK {
			t.Errorf("message %d: Octavia rejected our envelope (%s)\n%s", i, resp.Error, texts[i])
			bad++
		} else if resp.Text != texts[i] {
			t.Errorf("message %d: Octavia read\n%q\nwe sealed\n%q", i, resp.Text, texts[i])
			bad++
		}
		if bad > 10 {
			t.Fatal("too many differences")
		}
	}
	t.Logf("%d messages sealed by us, opened identically by Octavia", len(resps))
}

// TestWireCorrupted: corrupted datagrams, hex and raw digests alike, are
// rejected by both.
func TestWireCorrupted(t *testing.T) {
	r := rand.New(rand.NewPCG(wireSeed(t), 3))
	type corruption struct {
		name string
		f    func(d []byte, key string) ([]byte, string)
	}
	corruptions := []corruption{
		{"payload bit flip", func(d []byte, key string) ([]byte, string) {
			i := r.IntN(max(1, len(d)-64)) // a raw-digest datagram can be shorter than 64 bytes
			d[i] ^= 1 << r.IntN(8)
			return d, key
		}},
		{"MAC bit flip", func(d []byte, key string) ([]byte, string) {
			i := len(d) - 1 - r.IntN(min(64, len(d)))
			d[i] ^= 1 << r.IntN(8)
			return d, key
		}},
		{"uppercase hex MAC", func(d []byte, key string) ([]byte, string) {
			mac := d[max(0, len(d)-64):]
			upper := bytes.ToUpper(mac)
			if bytes.Equal(upper, mac) {
				mac[0] = 'G' // no a-f at all: still not lowercase hex of the HMAC
			}
			copy(mac, upper)
			return d, key
		}},
		{"wrong key", func(d []byte, key string) ([]byte, string) { return d, key + "x" }},
		{"last byte cut", func(d []byte, key string) ([]byte, string) { return d[:len(d)-1], key }},
		{"cut anywhere", func(d []byte, key string) ([]byte, string) { return d[:r.IntN(len(d))], key }},
		{"byte appended", func(d []byte, key string) ([]byte, string) { return append(d, byte(r.IntN(256))), key }},
		{"MAC only", func(d []byte, key string) ([]byte, string) { return d[max(0, len(d)-64):], key }},
	}
	var reqs []openReq
	var names []string
	var datagrams [][]byte
	var keys []string
	for i := range perVersion / 2 {
		for _, c := range corruptions {
			m := randMessage(r, wireVersions[i%len(wireVersions)])
			key := randString(r, 20)
			kr, err := heartbeat.NewKeyring(heartbeat.KeyringConfig{Keys: []string{key}})
			if err != nil {
				t.Fatal(err)
			}
			sealed := kr.SealMessage(m)
			if i%2 == 1 {
				sealed = rawSeal(key, m)
			}
			d, k := c.f(sealed, key)
			reqs = append(reqs, openReq{Key: k, B64: base64.StdEncoding.EncodeToString(d)})
			names, datagrams, keys = append(names, c.name), append(datagrams, d), append(keys, k)
		}
	}
	resps := glueLines[openReq, openResp](t, "open", reqs)
	for i, resp := range resps {
		kr, err := heartbeat.NewKeyring(heartbeat.KeyringConfig{Keys: []string{keys[i]}})
		if err != nil {
			t.Fatal(err)
		}
		_, _, ourErr := kr.Open(datagrams[i])
		if resp.OK || ourErr == nil {
			t.Errorf("%s (#%d): Octavia accepted %v, we accepted %v", names[i], i, resp.OK, ourErr == nil)
		}
	}
	t.Logf("%d corrupted datagrams rejected by both", len(resps))
}
