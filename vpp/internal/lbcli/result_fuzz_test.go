package lbcli

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzResult feeds arbitrary CLI replies to Result. Silence is success, a
// success names the index it printed exactly, and an error is one line of
// bounded, valid text that keeps VPP's error number when it fits an int.
func FuzzResult(f *testing.F) {
	for _, s := range []string{
		"", "\n", "lb_vip_add ok 7\n", "lb_vip_add ok 99999999999999999999", "lb_vip_add ok 007",
		"lb_vip_add error -81\n", "lb_vip_find_index error -6", "parse error: 'bogus'", "unknown input `lb vip'",
		"error -99999999999999999999", strings.Repeat("é", 150), "x" + strings.Repeat("é", 150), "line one\nline two error -3",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, reply string) {
		index, code, err := Result(reply)
		trimmed := strings.TrimSpace(reply)
		if err == nil {
			if trimmed == "" {
				if index != -1 || code != 0 {
					t.Fatalf("silence gave index %d, code %d", index, code)
				}
				return
			}
			digits, ok := strings.CutPrefix(trimmed, "lb_vip_add ok ")
			n, perr := strconv.ParseUint(digits, 10, 32)
			if !ok || perr != nil || int64(n) != index || code != 0 {
				t.Fatalf("%q accepted as index %d, code %d", reply, index, code)
			}
			return
		}
		if trimmed == "" || index != -1 {
			t.Fatalf("%q: error %v with index %d", reply, err, index)
		}
		msg := err.Error()
		if strings.Contains(msg, "\n") || len(msg) > len("vpp cli: ")+200 {
			t.Fatalf("error is not one bounded line: %q", msg)
		}
		if utf8.ValidString(reply) && !utf8.ValidString(msg) {
			t.Fatalf("valid reply %q gave invalid error text %q", reply, msg)
		}
		if code != 0 {
			m := regexp.MustCompile(`error (-?\d+)`).FindStringSubmatch(trimmed)
			if m == nil {
				t.Fatalf("%q: code %d without an error number", reply, code)
			}
			if n, err := strconv.ParseInt(m[1], 10, 64); err != nil || n != int64(code) {
				t.Fatalf("%q: code %d, the text says %s", reply, code, m[1])
			}
		}
	})
}

// TestResultOutOfRangeNumbers holds what FuzzResult found: an index or
// error number too large for its type was clamped to the extreme value
// and taken for VPP's.
func TestResultOutOfRangeNumbers(t *testing.T) {
	for _, tc := range []struct {
		reply       string
		index       int64
		code        int
		wantErr     bool
		description string
	}{
		{"lb_vip_add ok 99999999999999999999", -1, 0, true, "index beyond int64"},
		{"lb_vip_add ok 4294967296", -1, 0, true, "index beyond u32"},
		{"lb_vip_add ok 4294967295", 4294967295, 0, false, "largest u32 index"},
		{"lb_vip_add error -99999999999999999999", -1, 0, true, "error number beyond int64"},
		{"lb_vip_add error -2147483648", -1, -2147483648, true, "smallest i32 error number"},
	} {
		index, code, err := Result(tc.reply)
		if index != tc.index || code != tc.code || (err != nil) != tc.wantErr {
			t.Errorf("%s: Result(%q) = %d, %d, %v", tc.description, tc.reply, index, code, err)
		}
	}
	long := "x" + strings.Repeat("é", 150)
	if _, _, err := Result(long); err == nil || !utf8.ValidString(err.Error()) {
		t.Errorf("long reply: %q is not valid text", err)
	}
}
