package heartbeat

import (
	"math/bits"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// The heartbeat decoder parses the inflated text into a flat, pre-order
// array of nodes and only then maps it onto Message. Two passes keep the
// reasons apart (any syntax problem is not_json, any schema problem is
// malformed), and the flat tree gives the mapper what encoding/json cannot:
// the datagram's key order (Octavia's pool collisions depend on it),
// duplicate keys resolved the way Python's dict does, and integers kept as
// their digits rather than rounded through float64. Like Python's json, and
// unlike RFC 8259, it takes NaN, Infinity and -Infinity as numbers.

type nodeKind uint8

const (
	kindObject nodeKind = iota + 1
	kindArray
	kindString
	kindNumber
	kindTrue
	kindFalse
	kindNull
)

func (k nodeKind) String() string {
	switch k {
	case kindObject:
		return "an object"
	case kindArray:
		return "an array"
	case kindString:
		return "a string"
	case kindNumber:
		return "a number"
	case kindTrue, kindFalse:
		return "a boolean"
	case kindNull:
		return "null"
	}
	return "nothing"
}

// node is one JSON value. An object's members follow it as (key, value)
// pairs; next skips the whole subtree.
type node struct {
	// start and end delimit a string's contents (without quotes), a number's
	// literal, or an object's or array's brackets.
	start, end int32
	next       int32 // index of the first node after this subtree
	count      int32 // members of an object, elements of an array
	kind       nodeKind
	escaped    bool // a string containing backslash escapes
	integer    bool // a number with neither fraction nor exponent
}

// maxJSONDepth bounds nesting. A heartbeat is six levels deep; Python's
// json gives up near a thousand with RecursionError, so this only refuses
// input no agent sends, without recursion that a hostile packet could drive.
const maxJSONDepth = 64

// maxJSONText keeps node offsets within int32.
const maxJSONText = 1<<31 - 1

type jsonParser struct {
	text  string
	pos   int
	nodes []node
	depth int
}

// parseJSON validates text as exactly one strict RFC 8259 value (no NaN or
// Infinity, no trailing data) and returns its node tree, reusing nodes.
func parseJSON(text string, nodes []node) ([]node, *Error) {
	if len(text) > maxJSONText {
		return nodes, reject(ReasonTooLarge, "text exceeds 2 GiB")
	}
	p := jsonParser{text: text, nodes: nodes[:0]}
	p.skipSpace()
	if err := p.value(); err != nil {
		return p.nodes, err
	}
	p.skipSpace()
	if p.pos != len(p.text) {
		return p.nodes, p.syntax("extra data after the JSON value")
	}
	return p.nodes, nil
}

func (p *jsonParser) syntax(what string) *Error {
	return reject(ReasonNotJSON, what+" at offset "+strconv.Itoa(p.pos))
}

func (p *jsonParser) skipSpace() {
	for p.pos < len(p.text) {
		switch p.text[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *jsonParser) value() *Error {
	if p.pos >= len(p.text) {
		return p.syntax("unexpected end of text")
	}
	switch c := p.text[p.pos]; {
	case c == '{':
		return p.container(kindObject, '}')
	case c == '[':
		return p.container(kindArray, ']')
	case c == '"':
		return p.str()
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	case c == 't':
		return p.literal("true", kindTrue)
	case c == 'f':
		return p.literal("false", kindFalse)
	case c == 'n':
		return p.literal("null", kindNull)
	case c == 'N':
		return p.nonFinite("NaN")
	case c == 'I':
		return p.nonFinite("Infinity")
	default:
		return p.syntax("unexpected character " + strconv.QuoteRune(rune(c)))
	}
}

func (p *jsonParser) literal(word string, kind nodeKind) *Error {
	if len(p.text)-p.pos < len(word) || p.text[p.pos:p.pos+len(word)] != word {
		return p.syntax("invalid literal")
	}
	p.nodes = append(p.nodes, node{kind: kind, start: int32(p.pos), end: int32(p.pos + len(word))})
	p.pos += len(word)
	p.nodes[len(p.nodes)-1].next = int32(len(p.nodes))
	return nil
}

func (p *jsonParser) container(kind nodeKind, closing byte) *Error {
	p.depth++
	if p.depth > maxJSONDepth {
		return p.syntax("nesting deeper than " + strconv.Itoa(maxJSONDepth) + " levels")
	}
	self := len(p.nodes)
	p.nodes = append(p.nodes, node{kind: kind, start: int32(p.pos)})
	p.pos++ // the opening bracket
	p.skipSpace()
	var count int32
	if p.pos < len(p.text) && p.text[p.pos] == closing {
		p.pos++
	} else {
		for {
			if kind == kindObject {
				if p.pos >= len(p.text) || p.text[p.pos] != '"' {
					return p.syntax("expected a string key")
				}
				if err := p.str(); err != nil {
					return err
				}
				p.skipSpace()
				if p.pos >= len(p.text) || p.text[p.pos] != ':' {
					return p.syntax("expected ':' after a key")
				}
				p.pos++
				p.skipSpace()
			}
			if err := p.value(); err != nil {
				return err
			}
			count++
			p.skipSpace()
			if p.pos >= len(p.text) {
				return p.syntax("unexpected end of text")
			}
			c := p.text[p.pos]
			p.pos++
			if c == closing {
				break
			}
			if c != ',' {
				p.pos--
				return p.syntax("expected ',' or a closing bracket")
			}
			p.skipSpace()
		}
	}
	p.depth--
	n := &p.nodes[self]
	n.end = int32(p.pos)
	n.count = count
	n.next = int32(len(p.nodes))
	return nil
}

// stringStop marks the bytes that end a run of plain string content: the
// closing quote, a backslash, and the control characters JSON forbids raw.
var stringStop = func() (t [256]bool) {
	for c := 0; c < 0x20; c++ {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

// plainRun returns the position of the first byte at or after i that
// stringStop marks, or len(text). It tests eight bytes at a time: ids are
// 36 characters of plain text, and most of a heartbeat is ids.
func plainRun(text string, i int) int {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
	)
	for ; i+8 <= len(text); i += 8 {
		w := text[i : i+8]
		v := uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 |
			uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56
		// A byte's high bit marks it in (x - ones) &^ x when it is zero
		// in x, and in (v - 0x20*ones) &^ v when it is below 0x20. Borrows
		// can mark bytes above a marked one, never below, so the lowest
		// mark is exact.
		quote, backslash := v^('"'*ones), v^('\\'*ones)
		marks := ((quote-ones)&^quote | (backslash-ones)&^backslash | (v-0x20*ones)&^v) & highs
		if marks != 0 {
			return i + bits.TrailingZeros64(marks)>>3
		}
	}
	for i < len(text) && !stringStop[text[i]] {
		i++
	}
	return i
}

func (p *jsonParser) str() *Error {
	text := p.text
	i := p.pos + 1 // after the opening quote
	start := i
	escaped := false
	for {
		i = plainRun(text, i)
		if i >= len(text) {
			p.pos = i
			return p.syntax("unterminated string")
		}
		switch text[i] {
		case '"':
			p.nodes = append(p.nodes, node{
				kind: kindString, start: int32(start), end: int32(i),
				escaped: escaped, next: int32(len(p.nodes) + 1),
			})
			p.pos = i + 1
			return nil
		case '\\':
			escaped = true
			if i+1 >= len(text) {
				p.pos = i
				return p.syntax("unterminated escape")
			}
			switch text[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(text) || !isHex4(text[i+2:i+6]) {
					p.pos = i
					return p.syntax("invalid \\u escape")
				}
				i += 6
			default:
				p.pos = i
				return p.syntax("invalid escape")
			}
		default:
			p.pos = i
			return p.syntax("control character in string")
		}
	}
}

func isHex4(s string) bool {
	for i := 0; i < 4; i++ {
		if hexValue(s[i]) < 0 {
			return false
		}
	}
	return true
}

func hexValue(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// nonFinite takes NaN, Infinity or -Infinity, which Python's json accepts
// as numbers (and Octavia with it): a non-integer number node whose text
// strconv.ParseFloat reads.
func (p *jsonParser) nonFinite(word string) *Error {
	if len(p.text)-p.pos < len(word) || p.text[p.pos:p.pos+len(word)] != word {
		return p.syntax("invalid literal")
	}
	p.nodes = append(p.nodes, node{kind: kindNumber, start: int32(p.pos), end: int32(p.pos + len(word)),
		next: int32(len(p.nodes) + 1)})
	p.pos += len(word)
	return nil
}

func (p *jsonParser) number() *Error {
	start := p.pos
	if p.text[p.pos] == '-' {
		if p.pos+1 < len(p.text) && p.text[p.pos+1] == 'I' {
			return p.nonFinite("-Infinity")
		}
		p.pos++
	}
	switch {
	case p.pos < len(p.text) && p.text[p.pos] == '0':
		p.pos++
	case p.pos < len(p.text) && p.text[p.pos] >= '1' && p.text[p.pos] <= '9':
		p.digits()
	default:
		return p.syntax("invalid number")
	}
	integer := true
	if p.pos < len(p.text) && p.text[p.pos] == '.' {
		integer = false
		p.pos++
		if !p.digits() {
			return p.syntax("invalid number fraction")
		}
	}
	if p.pos < len(p.text) && (p.text[p.pos] == 'e' || p.text[p.pos] == 'E') {
		integer = false
		p.pos++
		if p.pos < len(p.text) && (p.text[p.pos] == '+' || p.text[p.pos] == '-') {
			p.pos++
		}
		if !p.digits() {
			return p.syntax("invalid number exponent")
		}
	}
	p.nodes = append(p.nodes, node{
		kind: kindNumber, start: int32(start), end: int32(p.pos),
		integer: integer, next: int32(len(p.nodes) + 1),
	})
	return nil
}

func (p *jsonParser) digits() bool {
	start := p.pos
	for p.pos < len(p.text) && p.text[p.pos] >= '0' && p.text[p.pos] <= '9' {
		p.pos++
	}
	return p.pos > start
}

// unescapeJSON decodes the contents of a string node that has escapes. The
// parser has already validated every escape. A lone UTF-16 surrogate becomes
// U+FFFD: Python would keep it, but no database row can hold it, so an id
// carrying one never matches either way.
func unescapeJSON(raw string) string {
	buf := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' {
			buf = append(buf, c)
			i++
			continue
		}
		switch raw[i+1] {
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r := rune(hex4(raw[i+2:]))
			i += 6
			if utf16.IsSurrogate(r) {
				r2 := utf8.RuneError
				if r < 0xdc00 && i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
					r2 = utf16.DecodeRune(r, rune(hex4(raw[i+2:])))
				}
				if r2 != utf8.RuneError {
					i += 6
					r = r2
				} else {
					r = utf8.RuneError
				}
			}
			buf = utf8.AppendRune(buf, r)
			continue
		default: // '"', '\\', '/'
			buf = append(buf, raw[i+1])
		}
		i += 2
	}
	return string(buf)
}

// hasLoneSurrogate reports whether the escaped JSON string text raw holds
// a \uXXXX surrogate escape that is not part of a pair, which
// unescapeJSON replaces with U+FFFD.
func hasLoneSurrogate(raw string) bool {
	for i := 0; i < len(raw); {
		if raw[i] != '\\' {
			i++
			continue
		}
		if raw[i+1] != 'u' {
			i += 2
			continue
		}
		r := rune(hex4(raw[i+2:]))
		i += 6
		if !utf16.IsSurrogate(r) {
			continue
		}
		if r < 0xdc00 && i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' &&
			utf16.DecodeRune(r, rune(hex4(raw[i+2:]))) != utf8.RuneError {
			i += 6
			continue
		}
		return true
	}
	return false
}

func hex4(s string) int {
	return hexValue(s[0])<<12 | hexValue(s[1])<<8 | hexValue(s[2])<<4 | hexValue(s[3])
}
