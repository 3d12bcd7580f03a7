package heartbeat

import (
	"bytes"
	"reflect"
	"testing"
)

// verifyCases are every vector envelope with the key it is opened with.
func verifyCases(t testing.TB) []struct {
	name, key string
	datagram  []byte
} {
	vf := vectors(t)
	var out []struct {
		name, key string
		datagram  []byte
	}
	add := func(name, key string, d []byte) {
		out = append(out, struct {
			name, key string
			datagram  []byte
		}{name, key, d})
	}
	for _, v := range vf.Valid {
		key := string(mustHex(t, v.KeyUTF8Hex))
		add(v.Name+"/hex", key, mustHex(t, v.EnvelopeHexDigest))
		add(v.Name+"/raw", key, mustHex(t, v.EnvelopeBinaryDigest))
	}
	for _, v := range vf.Invalid {
		add(v.Name, v.Key, mustHex(t, v.EnvelopeHex))
	}
	for _, v := range vf.Quirks {
		add(v.Name, v.Key, mustHex(t, v.EnvelopeHex))
	}
	return out
}

// checkVerifyMatchesOpen asserts that Verify followed by DecodeMessage
// accepts and rejects exactly what Open does, with the same result.
func checkVerifyMatchesOpen(t *testing.T, kr *Keyring, datagram []byte) (text []byte, accepted bool) {
	t.Helper()
	want, wantV, wantErr := kr.Open(datagram)
	text, v, err := kr.Verify(datagram)
	var got *Message
	if err == nil {
		got, err = DecodeMessage(text)
	}
	if ReasonOf(err) != ReasonOf(wantErr) {
		t.Fatalf("Verify+DecodeMessage: %v; Open: %v", err, wantErr)
	}
	if wantErr != nil {
		return nil, false
	}
	if v != wantV {
		t.Errorf("Verify says %+v, Open %+v", v, wantV)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Verify+DecodeMessage gives %+v, Open %+v", got, want)
	}
	return text, true
}

func TestVerifyReturnsTheTextOpenDecodes(t *testing.T) {
	vf := vectors(t)
	texts := map[string]string{}
	for _, v := range vf.Valid {
		texts[v.Name+"/hex"], texts[v.Name+"/raw"] = v.JSONText, v.JSONText
	}
	accepted := 0
	for _, c := range verifyCases(t) {
		t.Run(c.name, func(t *testing.T) {
			text, ok := checkVerifyMatchesOpen(t, keyring(t, c.key), c.datagram)
			if !ok {
				return
			}
			accepted++
			if want, isValid := texts[c.name]; isValid && string(text) != want {
				t.Errorf("text %q, want %q", text, want)
			}
		})
	}
	if accepted < len(vf.Valid) {
		t.Errorf("only %d vectors accepted", accepted)
	}
}

func TestVerifyKeepsTheTextOnceReturned(t *testing.T) {
	kr := keyring(t, "k")
	d := kr.Seal([]byte(`{"id": "a", "seq": 1, "listeners": {}}`))
	first, _, err := kr.Verify(d)
	if err != nil {
		t.Fatal(err)
	}
	kept := bytes.Clone(first)
	second, _, err := kr.Verify(kr.Seal([]byte(`{"id": "b", "seq": 2, "listeners": {}}`)))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, kept) || bytes.Equal(first, second) {
		t.Errorf("first text now %q, second %q", first, second)
	}
}

func TestVerifyRejectsWhatNoKeyAuthenticates(t *testing.T) {
	kr := keyring(t, "k")
	sealed := keyring(t, "other").Seal([]byte(`{}`))
	if _, _, err := kr.Verify(sealed); ReasonOf(err) != ReasonBadMAC {
		t.Errorf("foreign key: %v", err)
	}
	if _, _, err := kr.Verify([]byte("short")); ReasonOf(err) != ReasonShort {
		t.Errorf("short datagram: %v", err)
	}
	if _, _, err := kr.Verify(kr.Seal(nil)[2:]); ReasonOf(err) != ReasonBadMAC {
		t.Errorf("a datagram cut at the front: %v", err)
	}
}

// FuzzVerifyMatchesOpen checks that the envelope step alone, followed by
// DecodeMessage, never disagrees with Open.
func FuzzVerifyMatchesOpen(f *testing.F) {
	for _, c := range verifyCases(f) {
		if c.key == "insecure" {
			f.Add(c.datagram)
		}
	}
	kr, err := NewKeyring(KeyringConfig{Keys: []string{"insecure"}, MaxInflatedBytes: 1 << 16})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, datagram []byte) {
		checkVerifyMatchesOpen(t, kr, datagram)
		checkVerifyMatchesOpen(t, kr, kr.Seal(datagram))
	})
}
