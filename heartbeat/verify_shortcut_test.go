package heartbeat

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"testing"
)

// referenceVerify is verify without the hex-shape shortcut: every key in
// both forms, hex first, as Octavia tries them.
func referenceVerify(keys []string, datagram []byte) ([]byte, Verified, Reason) {
	if len(datagram) < rawMACLen {
		return nil, Verified{}, ReasonShort
	}
	sum := func(key string, payload []byte) []byte {
		m := hmac.New(sha256.New, []byte(key))
		m.Write(payload)
		return m.Sum(nil)
	}
	if len(datagram) >= hexMACLen {
		payload, mac := datagram[:len(datagram)-hexMACLen], datagram[len(datagram)-hexMACLen:]
		for i, k := range keys {
			if hmac.Equal([]byte(hex.EncodeToString(sum(k, payload))), mac) {
				return payload, Verified{KeyIndex: i, Form: MACHex}, ReasonNone
			}
		}
	}
	payload, mac := datagram[:len(datagram)-rawMACLen], datagram[len(datagram)-rawMACLen:]
	for i, k := range keys {
		if hmac.Equal(sum(k, payload), mac) {
			return payload, Verified{KeyIndex: i, Form: MACRaw}, ReasonNone
		}
	}
	return nil, Verified{}, ReasonBadMAC
}

// FuzzVerifyShortcut checks that skipping the hex attempt for tails that
// are not lowercase hex changes no outcome: each input is tried as it is,
// and sealed with either key in either form, upper-cased and truncated.
func FuzzVerifyShortcut(f *testing.F) {
	keys := []string{"insecure", "previous"}
	for _, seed := range []string{"", "x", "payload", string(bytes.Repeat([]byte("a"), 64)), string(bytes.Repeat([]byte{0xff}, 100))} {
		f.Add([]byte(seed))
	}
	kr := keyring(f, keys...)
	f.Fuzz(func(t *testing.T, payload []byte) {
		candidates := [][]byte{payload}
		for _, k := range keys {
			m := hmac.New(sha256.New, []byte(k))
			m.Write(payload)
			raw := m.Sum(nil)
			hexMAC := []byte(hex.EncodeToString(raw))
			for _, mac := range [][]byte{hexMAC, raw, bytes.ToUpper(hexMAC), hexMAC[:63]} {
				candidates = append(candidates, append(append([]byte(nil), payload...), mac...))
			}
		}
		for _, d := range candidates {
			gotPayload, gotV, gotErr := kr.verify(d)
			wantPayload, wantV, wantReason := referenceVerify(keys, d)
			gotReason := ReasonNone
			if gotErr != nil {
				gotReason = gotErr.Reason
			}
			if gotReason != wantReason || gotV != wantV || !bytes.Equal(gotPayload, wantPayload) {
				t.Fatalf("datagram %x: verify gives %v %+v, the reference %v %+v", d, gotReason, gotV, wantReason, wantV)
			}
		}
	})
}
