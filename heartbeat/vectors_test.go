package heartbeat

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// testdata/heartbeat-vectors.json was produced by Octavia 11.0.0's own
// status_message code; see ../shared/vectors/README.md.
type vectorFile struct {
	Valid []struct {
		Name                 string          `json:"name"`
		KeyUTF8Hex           string          `json:"key_utf8_hex"`
		JSONText             string          `json:"json_text"`
		Object               json.RawMessage `json:"object"`
		EnvelopeHexDigest    string          `json:"envelope_hex_digest"`
		EnvelopeBinaryDigest string          `json:"envelope_binary_digest"`
	} `json:"valid"`
	Invalid []struct {
		Name        string `json:"name"`
		Key         string `json:"key"`
		EnvelopeHex string `json:"envelope_hex"`
		Why         string `json:"why"`
	} `json:"invalid"`
	Quirks []struct {
		Name        string `json:"name"`
		Key         string `json:"key"`
		EnvelopeHex string `json:"envelope_hex"`
		JSONText    string `json:"json_text"`
	} `json:"accepted_quirks"`
}

var loadVectors = sync.OnceValues(func() (*vectorFile, error) {
	raw, err := os.ReadFile("testdata/heartbeat-vectors.json")
	if err != nil {
		return nil, err
	}
	var vf vectorFile
	return &vf, json.Unmarshal(raw, &vf)
})

func vectors(t testing.TB) *vectorFile {
	t.Helper()
	vf, err := loadVectors()
	if err != nil {
		t.Fatalf("load vectors: %v", err)
	}
	return vf
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

func keyring(t testing.TB, keys ...string) *Keyring {
	t.Helper()
	kr, err := NewKeyring(KeyringConfig{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

// genericJSON parses with exact numbers, for comparing objects.
func genericJSON(t testing.TB, text []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(text))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("parse %q: %v", text, err)
	}
	return v
}

func TestValidVectorsOpenInBothMACForms(t *testing.T) {
	vf := vectors(t)
	if len(vf.Valid) != 44 {
		t.Fatalf("expected 44 valid vectors, got %d", len(vf.Valid))
	}
	for _, v := range vf.Valid {
		kr := keyring(t, string(mustHex(t, v.KeyUTF8Hex)))
		for _, form := range []struct {
			envelope string
			want     MACForm
		}{{v.EnvelopeHexDigest, MACHex}, {v.EnvelopeBinaryDigest, MACRaw}} {
			t.Run(v.Name+"/"+form.want.String(), func(t *testing.T) {
				text, got, err := kr.OpenText(mustHex(t, form.envelope))
				if err != nil {
					t.Fatalf("OpenText: %v", err)
				}
				if got != (Verified{KeyIndex: 0, Form: form.want}) {
					t.Errorf("verified as %+v, want key 0 form %v", got, form.want)
				}
				if text != v.JSONText {
					t.Errorf("inflated text differs\n got: %s\nwant: %s", text, v.JSONText)
				}
				if !reflect.DeepEqual(genericJSON(t, []byte(text)), genericJSON(t, v.Object)) {
					t.Errorf("opened object differs from the vector's object")
				}
			})
		}
	}
}

// Every valid heartbeat vector decodes to a Message whose Octavia-style
// encoding is the vector's json_text byte for byte: the decoder lost
// nothing (order, exact integers, escapes) and the encoder writes what
// Octavia's agent writes. Only Octavia's unit-test fixture is not a
// heartbeat (it has no "id").
func TestValidVectorsDecodeAndReencodeByteExact(t *testing.T) {
	vf := vectors(t)
	for _, v := range vf.Valid {
		t.Run(v.Name, func(t *testing.T) {
			kr := keyring(t, string(mustHex(t, v.KeyUTF8Hex)))
			for _, envelope := range []string{v.EnvelopeHexDigest, v.EnvelopeBinaryDigest} {
				msg, _, err := kr.Open(mustHex(t, envelope))
				if v.Name == "octavia_unit_test_fixture" {
					// Octavia's status path fails on the missing "id" before
					// writing anything; its stats path files the statistics
					// under the listener id. So the message is kept, with
					// the missing id recorded (strict mode rejects it).
					if err != nil || msg.IDProblem != IDAbsent || msg.Irregularity == nil || msg.Irregularity.Field != "id" {
						t.Fatalf("fixture without id: got %v, %+v; want kept with IDAbsent", err, msg)
					}
					continue
				}
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				if got := string(msg.AppendJSON(nil)); got != v.JSONText {
					t.Errorf("re-encoded text differs\n got: %s\nwant: %s", got, v.JSONText)
				}
			}
		})
	}
}

func TestInvalidVectorsRejectedWithReason(t *testing.T) {
	want := map[string]Reason{
		"flipped_payload_bit_hexmac":        ReasonBadMAC,
		"flipped_payload_bit_binmac":        ReasonBadMAC,
		"uppercase_hex_mac":                 ReasonBadMAC,
		"wrong_key_hexmac":                  ReasonBadMAC,
		"wrong_key_binmac":                  ReasonBadMAC,
		"truncated_last_byte_hexmac":        ReasonBadMAC,
		"truncated_last_byte_binmac":        ReasonBadMAC,
		"empty_datagram":                    ReasonShort,
		"short_datagram_31_bytes":           ReasonShort,
		"truncated_zlib_no_adler32_hexmac":  ReasonNotZlib,
		"truncated_zlib_no_adler32_binmac":  ReasonNotZlib,
		"truncated_zlib_mid_stream_hexmac":  ReasonNotZlib,
		"truncated_zlib_mid_stream_binmac":  ReasonNotZlib,
		"zlib_bad_adler32_hexmac":           ReasonNotZlib,
		"zlib_bad_adler32_binmac":           ReasonNotZlib,
		"not_zlib_plain_json_hexmac":        ReasonNotZlib,
		"not_zlib_plain_json_binmac":        ReasonNotZlib,
		"raw_deflate_no_zlib_header_hexmac": ReasonNotZlib,
		"raw_deflate_no_zlib_header_binmac": ReasonNotZlib,
		"gzip_not_zlib_hexmac":              ReasonNotZlib,
		"gzip_not_zlib_binmac":              ReasonNotZlib,
		"zlib_not_utf8_hexmac":              ReasonNotUTF8,
		"zlib_not_utf8_binmac":              ReasonNotUTF8,
		"json_with_utf8_bom_hexmac":         ReasonNotJSON,
		"json_with_utf8_bom_binmac":         ReasonNotJSON,
		"json_is_list_hexmac":               ReasonNotObject,
		"json_is_list_binmac":               ReasonNotObject,
		"json_invalid_hexmac":               ReasonNotJSON,
		"json_invalid_binmac":               ReasonNotJSON,
		"json_trailing_data_hexmac":         ReasonNotJSON,
		"json_trailing_data_binmac":         ReasonNotJSON,
		"mac_only_empty_payload_binmac":     ReasonNotZlib,
		"mac_only_empty_payload_hexmac":     ReasonNotZlib,
	}
	vf := vectors(t)
	if len(vf.Invalid) != len(want) {
		t.Errorf("vector file has %d invalid vectors, table has %d", len(vf.Invalid), len(want))
	}
	for _, v := range vf.Invalid {
		t.Run(v.Name, func(t *testing.T) {
			expected, ok := want[v.Name]
			if !ok {
				t.Fatalf("no expected reason for %s (%s)", v.Name, v.Why)
			}
			msg, _, err := keyring(t, v.Key).Open(mustHex(t, v.EnvelopeHex))
			if err == nil {
				t.Fatalf("accepted: %+v", msg)
			}
			if got := ReasonOf(err); got != expected {
				t.Errorf("reason %v (%v), want %v", got, err, expected)
			}
		})
	}
}

// The quirks are envelopes Octavia accepts although wrap_envelope never
// makes them. We accept them too, except where a documented deviation says
// otherwise (docs/deviations.md).
func TestAcceptedQuirks(t *testing.T) {
	type outcome struct {
		reason Reason // of Open; ReasonNone means accepted
		id     string // the decoded amphora id when accepted
	}
	want := map[string]outcome{
		"go_zlib_stream":                   {id: "00000000-0000-0000-0000-000000000001"},
		"zlib_level_0":                     {id: "00000000-0000-0000-0000-000000000001"},
		"zlib_level_1":                     {id: "00000000-0000-0000-0000-000000000001"},
		"zlib_level_6":                     {id: "00000000-0000-0000-0000-000000000001"},
		"compact_json_separators":          {id: "00000000-0000-0000-0000-000000000001"},
		"trailing_bytes_after_zlib_stream": {id: "00000000-0000-0000-0000-000000000001"},
		// Python's json takes NaN and Infinity as numbers, and so do we.
		"json_nan_infinity":   {id: "nan-amp"},
		"json_duplicate_keys": {id: "second"},
		// Deviation: Python keeps a lone surrogate, which no database row
		// can hold; we substitute U+FFFD.
		"json_lone_surrogate_escape": {id: "amp-\uFFFD"},
		// Octavia applies the status part and fails to store that
		// listener's statistics row; the message is kept with the counter
		// marked unwritable (Listener.StatsUnwritable).
		"counter_above_int64": {id: "big-amp"},
	}
	vf := vectors(t)
	if len(vf.Quirks) != len(want) {
		t.Errorf("vector file has %d quirks, table has %d", len(vf.Quirks), len(want))
	}
	for _, v := range vf.Quirks {
		t.Run(v.Name, func(t *testing.T) {
			expected, ok := want[v.Name]
			if !ok {
				t.Fatalf("no expected outcome for quirk %s", v.Name)
			}
			kr := keyring(t, v.Key)
			datagram := mustHex(t, v.EnvelopeHex)
			text, _, err := kr.OpenText(datagram)
			if err != nil {
				t.Fatalf("OpenText: %v", err)
			}
			if text != v.JSONText {
				t.Errorf("inflated text %q, want %q", text, v.JSONText)
			}
			msg, _, err := kr.Open(datagram)
			if got := ReasonOf(err); got != expected.reason {
				t.Fatalf("Open reason %v (%v), want %v", got, err, expected.reason)
			}
			if err == nil && msg.AmphoraID != expected.id {
				t.Errorf("id %q, want %q", msg.AmphoraID, expected.id)
			}
		})
	}
}

func TestExactIntegersAboveFloatPrecision(t *testing.T) {
	vf := vectors(t)
	for _, v := range vf.Valid {
		if !strings.HasPrefix(v.Name, "hb16_") {
			continue
		}
		msg, _, err := keyring(t, string(mustHex(t, v.KeyUTF8Hex))).Open(mustHex(t, v.EnvelopeHexDigest))
		if err != nil {
			t.Fatal(err)
		}
		var found bool
		for _, l := range msg.Listeners {
			if l.Stats.RX == 1<<53+1 && l.Stats.TotConns == 1<<53+3 && l.Stats.TX == 1<<63-1 {
				found = true
			}
		}
		if !found {
			t.Errorf("no listener with rx=2^53+1, totconns=2^53+3, tx=2^63-1: %+v", msg.Listeners)
		}
		return
	}
	t.Fatal("hb16 vector not found")
}

func asError(err error, target **Error) bool {
	he, ok := err.(*Error)
	if ok {
		*target = he
	}
	return ok
}
