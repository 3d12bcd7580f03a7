package heartbeat

import (
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// AppendJSON appends the message as the JSON text an Octavia amphora agent
// writes (oslo jsonutils.dumps, i.e. Python's json.dumps defaults): keys in
// the order id, seq, listeners, pools, ver; separators ", " and ": "; every
// non-ASCII character as a lowercase \uXXXX escape (surrogate pairs beyond
// the BMP); no HTML escaping; no trailing newline.
//
// Optional parts follow the message: "seq", "ver" and a listener's "stats"
// only when present,
// top-level "pools" from version 2 on, per-listener "pools" before version 2
// when the listener had them. Our agent's "ts" and "boot" come last, when
// present, so that a message without them is Octavia's text byte for byte.
func (m *Message) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"id": `...)
	dst = appendPyString(dst, m.AmphoraID)
	if m.HasSeq {
		dst = append(dst, `, "seq": `...)
		dst = strconv.AppendInt(dst, m.Seq, 10)
	}
	perListener := m.PoolsPerListener()
	dst = append(dst, `, "listeners": {`...)
	for i := range m.Listeners {
		l := &m.Listeners[i]
		if i > 0 {
			dst = append(dst, ", "...)
		}
		dst = appendPyString(dst, l.ID)
		dst = append(dst, `: {"status": `...)
		dst = appendPyString(dst, l.Status)
		if l.HasStats {
			dst = append(dst, `, "stats": {"tx": `...)
			dst = strconv.AppendInt(dst, l.Stats.TX, 10)
			dst = append(dst, `, "rx": `...)
			dst = strconv.AppendInt(dst, l.Stats.RX, 10)
			dst = append(dst, `, "conns": `...)
			dst = strconv.AppendInt(dst, l.Stats.Conns, 10)
			dst = append(dst, `, "totconns": `...)
			dst = strconv.AppendInt(dst, l.Stats.TotConns, 10)
			dst = append(dst, `, "ereq": `...)
			dst = strconv.AppendInt(dst, l.Stats.EReq, 10)
			dst = append(dst, '}')
		}
		if perListener && l.HasPools {
			dst = append(dst, `, "pools": `...)
			dst = appendPools(dst, l.Pools)
		}
		dst = append(dst, '}')
	}
	dst = append(dst, '}')
	if !perListener {
		dst = append(dst, `, "pools": `...)
		dst = appendPools(dst, m.Pools)
	}
	if m.HasVersion {
		dst = append(dst, `, "ver": `...)
		dst = strconv.AppendInt(dst, m.Version, 10)
	}
	if m.HasTimestamp {
		dst = append(dst, `, "ts": `...)
		dst = strconv.AppendInt(dst, m.Timestamp, 10)
	}
	if m.HasBoot {
		dst = append(dst, `, "boot": `...)
		dst = appendPyString(dst, m.Boot)
	}
	return append(dst, '}')
}

func appendPools(dst []byte, pools []Pool) []byte {
	dst = append(dst, '{')
	for i := range pools {
		p := &pools[i]
		if i > 0 {
			dst = append(dst, ", "...)
		}
		dst = appendPyString(dst, p.Key)
		dst = append(dst, `: {"status": `...)
		dst = appendPyString(dst, p.Status)
		dst = append(dst, `, "members": {`...)
		for j := range p.Members {
			if j > 0 {
				dst = append(dst, ", "...)
			}
			dst = appendPyString(dst, p.Members[j].ID)
			dst = append(dst, ": "...)
			dst = appendPyString(dst, p.Members[j].Status)
		}
		dst = append(dst, "}}"...)
	}
	return append(dst, '}')
}

const lowerHex = "0123456789abcdef"

// appendPyString writes s as Python's json.dumps(ensure_ascii=True) does:
// printable ASCII other than '"' and '\' as is, the short escapes \" \\ \b
// \f \n \r \t, and everything else (other control characters, DEL and all
// non-ASCII) as \uXXXX. Invalid UTF-8, which a Python str cannot hold,
// becomes U+FFFD.
func appendPyString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c < 0x7f && c != '"' && c != '\\' {
			start := i
			for i < len(s) && s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"' && s[i] != '\\' {
				i++
			}
			dst = append(dst, s[start:i]...)
			continue
		}
		if c < utf8.RuneSelf {
			switch c {
			case '"':
				dst = append(dst, `\"`...)
			case '\\':
				dst = append(dst, `\\`...)
			case '\b':
				dst = append(dst, `\b`...)
			case '\f':
				dst = append(dst, `\f`...)
			case '\n':
				dst = append(dst, `\n`...)
			case '\r':
				dst = append(dst, `\r`...)
			case '\t':
				dst = append(dst, `\t`...)
			default:
				dst = appendU4(dst, rune(c))
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		if r >= 0x10000 {
			hi, lo := utf16.EncodeRune(r)
			dst = appendU4(appendU4(dst, hi), lo)
			continue
		}
		dst = appendU4(dst, r)
	}
	return append(dst, '"')
}

func appendU4(dst []byte, r rune) []byte {
	return append(dst, '\\', 'u',
		lowerHex[r>>12&0xf], lowerHex[r>>8&0xf], lowerHex[r>>4&0xf], lowerHex[r&0xf])
}
