package heartbeat

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// checkFastAgrees fails when decodeFast takes a text that the general
// decoder decodes to anything else, rejects, or marks irregular. It
// reports whether the fast decoder took the text.
func checkFastAgrees(t *testing.T, text string) bool {
	t.Helper()
	fast, ok := decodeFast(text)
	if !ok {
		return false
	}
	if !utf8.ValidString(text) {
		t.Fatalf("fast decoder took invalid UTF-8: %q", text)
	}
	for _, strict := range []bool{false, true} {
		general, err := decodeGeneral(text, strict)
		if err != nil {
			t.Fatalf("fast decoder took a text the general one rejects (strict %v): %v\n%s", strict, err, text)
		}
		if !reflect.DeepEqual(fast, general) {
			t.Fatalf("decoders differ (strict %v) on\n%s\n fast %+v\n general %+v", strict, text, fast, general)
		}
	}
	return true
}

// fastNearMisses are texts next to what amphorae send; each must either
// fall back or decode as the general decoder does.
var fastNearMisses = []string{
	`{"id": "a", "listeners": {}, "pools": {}, "ver": 3}`,
	`{"id": "a", "listeners": {}, "pools": {}, "ver": 2}`,
	`{"id": "a", "listeners": {}, "pools": {}, "ver": 1}`,
	`{"id": "a", "listeners": {}, "pools": {}, "ver": 3.0}`,
	`{"id": "a", "listeners": {}, "pools": {}, "ver": 3e0}`,
	`{"id": "a", "listeners": {}, "pools": {}, "ver": 03}`,
	`{"id": "a", "listeners": {}, "pools": {}, "ver": -3}`,
	`{"id": "a", "listeners": {}, "pools": {}, "ver": 99999999999999999999}`,
	`{"id": "a", "listeners": {}, "pools": {}}`,
	`{"id": "a", "listeners": {}, "ver": 3}`,
	`{"listeners": {}, "pools": {}, "ver": 3}`,
	`{"id": "a", "id": "b", "listeners": {}, "pools": {}, "ver": 3}`,
	`{"id": "a", "listeners": {}, "pools": {}, "ver": 3, "extra": 1}`,
	`{"id": "a", "listeners": {}, "pools": {}, "ver": 3} `,
	` {"id": "a", "listeners": {}, "pools": {}, "ver": 3}x`,
	"{\"id\":\"a\",\n\t\"listeners\":{},\r\"pools\":{},\"ver\":3}",
	`{"id": "a", "listeners": {}, "pools": {}, "ver": 3,}`,
	`{"id": "a", "listeners": {}, "pools": {}, "ver": 3`,
	`{"id": "\u0061", "listeners": {}, "pools": {}, "ver": 3}`,
	`{"\u0069d": "a", "listeners": {}, "pools": {}, "ver": 3}`,
	`{"id": "é", "listeners": {}, "pools": {}, "ver": 3}`,
	"{\"id\": \"a\x01\", \"listeners\": {}, \"pools\": {}, \"ver\": 3}",
	`{"id": 5, "listeners": {}, "pools": {}, "ver": 3}`,
	`{"id": "a", "seq": -0, "listeners": {}, "pools": {}, "ver": 3, "ts": 1763726400, "boot": "x"}`,
	`{"id": "a", "seq": 1.5, "listeners": {}, "pools": {}, "ver": 3}`,
	`{"id": "a", "seq": 123456789012345678, "listeners": {}, "pools": {}, "ver": 3}`,
	`{"id": "a", "seq": 1234567890123456789, "listeners": {}, "pools": {}, "ver": 3}`,
	`{"id": "a", "listeners": {}, "pools": {}, "ver": 3, "ts": "1", "boot": 2}`,
	`{"id": "a", "listeners": {"l": {"status": "OPEN"}}, "pools": {}, "ver": 3}`,
	`{"id": "a", "listeners": {"l": {}}, "pools": {}, "ver": 3}`,
	`{"id": "a", "listeners": {"l": {"stats": {"tx": 1, "rx": 2, "conns": 3, "totconns": 4, "ereq": 5}}}, "pools": {}, "ver": 3}`,
	`{"id": "a", "listeners": {"l": {"status": "OPEN", "stats": {"tx": 1, "rx": 2, "conns": 3, "totconns": 4, "ereq": 5}}}, "pools": {}, "ver": 3}`,
	`{"id": "a", "listeners": {"l": {"status": "OPEN", "stats": {"tx": 1, "rx": 2, "conns": 3, "totconns": 4}}}, "pools": {}, "ver": 3}`,
	`{"id": "a", "listeners": {"l": {"status": "OPEN", "stats": {"tx": 1, "rx": 2, "conns": 3, "totconns": 4, "ereq": 5.5}}}, "pools": {}, "ver": 3}`,
	`{"id": "a", "listeners": {"l": {"status": "OPEN", "stats": {"tx": 1, "tx": 2, "rx": 2, "conns": 3, "totconns": 4, "ereq": 5}}}, "pools": {}, "ver": 3}`,
	`{"id": "a", "listeners": {"l": {"status": "OPEN", "pools": {}}}, "pools": {}, "ver": 3}`,
	`{"id": "a", "listeners": {"l": {"status": "OPEN"}, "l": {"status": "FULL"}}, "pools": {}, "ver": 3}`,
	`{"id": "a", "listeners": {"l": {"status": null}}, "pools": {}, "ver": 3}`,
	`{"id": "a", "listeners": [], "pools": {}, "ver": 3}`,
	`{"id": "a", "listeners": {}, "pools": {"p:l": {"status": "UP", "members": {}}}, "ver": 3}`,
	`{"id": "a", "listeners": {}, "pools": {"p:l": {"status": "UP", "members": {"m": "UP", "n": "DOWN"}}}, "ver": 3}`,
	`{"id": "a", "listeners": {}, "pools": {"p:l": {"status": "UP", "members": {"m": "UP", "m": "DOWN"}}}, "ver": 3}`,
	`{"id": "a", "listeners": {}, "pools": {"p:l": {"status": "UP", "members": {"m": 1}}}, "ver": 3}`,
	`{"id": "a", "listeners": {}, "pools": {"p:l": {"status": "UP", "members": []}}, "ver": 3}`,
	`{"id": "a", "listeners": {}, "pools": {"p:l": {"status": "UP"}}, "ver": 3}`,
	`{"id": "a", "listeners": {}, "pools": {"p:l": {"members": {}}}, "ver": 3}`,
	`{"id": "a", "listeners": {}, "pools": {"p:l": {"members": {}, "status": "UP"}, "p:l": {"status": "DOWN", "members": {}}}, "ver": 3}`,
	`{"id": "a", "listeners": {}, "pools": {"p:l": {"status": "UP", "members": {}}, "q": {"status": "UP", "members": {"x": "UP"}}}, "ver": 3}`,
	`{"id": "a", "listeners": {}, "pools": {"p:l": 5}, "ver": 3}`,
	`{"id": "a", "listeners": {}, "pools": [], "ver": 3}`,
	`{"ver": 3, "pools": {}, "listeners": {}, "id": ""}`,
	`[]`,
	`"x"`,
	``,
}

func TestDecodeFastMatchesGeneral(t *testing.T) {
	for _, text := range fastNearMisses {
		checkFastAgrees(t, text)
	}
	for _, v := range vectors(t).Valid {
		checkFastAgrees(t, v.JSONText)
	}
	// The shapes amphorae send must take the fast path.
	for _, n := range []int{0, 1, 4, 20, 33, 100, 1000} {
		if !checkFastAgrees(t, string(scaledMessage(n).AppendJSON(nil))) {
			t.Errorf("%d members: the fast decoder did not take the message", n)
		}
	}
	if !checkFastAgrees(t, string(typicalMessage().AppendJSON(nil))) {
		t.Error("the typical message did not take the fast path")
	}
	// Many keys in one object, beyond the linear duplicate scan, with a
	// repeat at each position.
	for _, n := range []int{linearScanMax, linearScanMax + 1, 100} {
		ids := make([]string, n)
		for i := range ids {
			ids[i] = fmt.Sprintf(`"m%d": "UP"`, i)
		}
		base := `{"id": "a", "listeners": {}, "pools": {"p": {"status": "UP", "members": {%s}}}, "ver": 3}`
		if !checkFastAgrees(t, fmt.Sprintf(base, strings.Join(ids, ", "))) {
			t.Errorf("%d distinct members fell back", n)
		}
		for _, at := range []int{0, n / 2, n - 1} {
			dup := append(append([]string{}, ids...), ids[at])
			if checkFastAgrees(t, fmt.Sprintf(base, strings.Join(dup, ", "))) {
				t.Errorf("%d members with a repeat of #%d taken by the fast decoder", n, at)
			}
		}
	}
	r := rand.New(rand.NewPCG(20, 20))
	for range 3000 {
		checkFastAgrees(t, string(randomMessage(r).AppendJSON(nil)))
	}
}

// FuzzDecodeFast checks the one-pass decoder against the general one on
// arbitrary text: whatever it takes, the general decoder decodes to the
// same Message, with no irregularity.
func FuzzDecodeFast(f *testing.F) {
	for _, text := range fastNearMisses {
		f.Add([]byte(text))
	}
	for _, v := range vectors(f).Valid {
		f.Add([]byte(v.JSONText))
	}
	for _, n := range []int{2, 20} {
		f.Add(scaledMessage(n).AppendJSON(nil))
	}
	f.Fuzz(func(t *testing.T, text []byte) {
		checkFastAgrees(t, string(text))
	})
}
