package heartbeat

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzOpen feeds arbitrary datagrams to Open, and each input again as a
// payload under a valid MAC. Seeds are every vector envelope, valid and
// invalid, and every payload those carry. Whatever opens must survive a seal/open round
// trip unchanged; whatever is rejected must carry a reason.
func FuzzOpen(f *testing.F) {
	vf := vectors(f)
	for _, v := range vf.Valid {
		if v.KeyUTF8Hex == "696e736563757265" { // "insecure", the fuzzing key
			f.Add(mustHex(f, v.EnvelopeHexDigest))
			f.Add(mustHex(f, v.EnvelopeBinaryDigest))
		}
	}
	for _, v := range vf.Invalid {
		f.Add(mustHex(f, v.EnvelopeHex))
	}
	for _, v := range vf.Quirks {
		env := mustHex(f, v.EnvelopeHex)
		f.Add(env)
		f.Add(env[:len(env)-hexMACLen])
	}
	for _, v := range vf.Valid {
		env := mustHex(f, v.EnvelopeHexDigest)
		f.Add(env[:len(env)-hexMACLen])
	}
	kr, err := NewKeyring(KeyringConfig{Keys: []string{"insecure"}, MaxInflatedBytes: 1 << 16})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, datagram []byte) {
		// The input as a datagram, and the input as a payload under a valid
		// MAC, so that mutations also reach inflate and decode.
		mac := hmac.New(sha256.New, []byte("insecure"))
		mac.Write(datagram)
		sealed := append(append([]byte(nil), datagram...), hex.EncodeToString(mac.Sum(nil))...)
		for _, d := range [][]byte{datagram, sealed} {
			msg, _, err := kr.Open(d)
			if err != nil {
				if ReasonOf(err) == ReasonNone {
					t.Fatalf("rejection without a reason: %v", err)
				}
				continue
			}
			if msg.Irregularity != nil {
				// The encoder writes only well-formed heartbeats.
				continue
			}
			again, _, err := kr.Open(kr.SealMessage(msg))
			if err != nil {
				t.Fatalf("re-sealed message rejected: %v", err)
			}
			if !reflect.DeepEqual(canonical(again), canonical(msg)) {
				t.Fatalf("round trip differs\n got %+v\nwant %+v", again, msg)
			}
		}
	})
}

// FuzzDecodeMessage feeds arbitrary text to DecodeMessage. It checks the
// strict JSON parser against encoding/json (both follow RFC 8259), and that
// a decoded message re-encodes to text that decodes to the same message and
// re-encodes identically.
func FuzzDecodeMessage(f *testing.F) {
	for _, v := range vectors(f).Valid {
		f.Add([]byte(v.JSONText))
	}
	for _, s := range []string{
		`{"id": "a", "listeners": {"l": {"status": "OPEN", "pools": 5}}, "pools": {}, "ver": 3}`,
		`{"\u0069d": "\ud800", "listeners": {}, "pools": {"a:b": {"status": "UP", "members": {"m": "UP", "m": "DOWN"}}}, "ver": 2}`,
		`{"id": "a", "listeners": {}, "pools": {}, "ver": 9223372036854775808}`,
		`{"id": "a", "listeners": {}, "pools": {}, "ver": -1e5}`,
		`[1, 2.5e-3, true, false, null, "x", {}]`,
		`{"id": NaN}`,
		`{"id": "a", "seq": 1, "listeners": {}, "pools": {}, "ver": 3, "ts": 1763726400, "boot": "0f\u00e9"}`,
		`{"id": "a", "listeners": {}, "ts": "1", "boot": 2, "ts": 3.5}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, text []byte) {
		msg, err := DecodeMessage(text)
		reason := ReasonOf(err)
		if err != nil && reason == ReasonNone {
			t.Fatalf("rejection without a reason: %v", err)
		}
		if utf8.Valid(text) && strings.Count(string(text), "[")+strings.Count(string(text), "{") <= maxJSONDepth {
			strictOK := reason != ReasonNotJSON
			// Python's json, like our parser, also takes NaN, Infinity and
			// -Infinity as values; null stands for them in encoding/json's
			// view (it keeps "-NaN", "NaNNaN", "1NaN" invalid).
			rfc := strings.NewReplacer("-Infinity", "null", "Infinity", "null", "NaN", "null").Replace(string(text))
			if strictOK != json.Valid([]byte(rfc)) {
				t.Fatalf("parser says valid=%v, encoding/json says %v: %v", strictOK, json.Valid(text), err)
			}
		}
		if err != nil {
			return
		}
		strict, serr := DecodeMessageStrict(text)
		if (serr == nil) != (msg.Irregularity == nil) {
			t.Fatalf("strict decoder says %v, default decoder recorded %v", serr, msg.Irregularity)
		}
		if serr != nil {
			if serr.Error() != msg.Irregularity.Error() {
				t.Fatalf("strict rejection %v differs from the irregularity %v", serr, msg.Irregularity)
			}
			return
		}
		if !reflect.DeepEqual(canonical(strict), canonical(msg)) {
			t.Fatalf("strict and default decoders differ\n got %+v\nwant %+v", strict, msg)
		}
		encoded := msg.AppendJSON(nil)
		again, err := DecodeMessage(encoded)
		if err != nil {
			t.Fatalf("re-encoded message rejected: %v\n%s", err, encoded)
		}
		if !reflect.DeepEqual(canonical(again), canonical(msg)) {
			t.Fatalf("decode(encode(m)) != m\n got %+v\nwant %+v", again, msg)
		}
		if string(again.AppendJSON(nil)) != string(encoded) {
			t.Fatalf("encoding is not stable:\n%s\n%s", encoded, again.AppendJSON(nil))
		}
	})
}
