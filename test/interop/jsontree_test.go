//go:build interop

package interop

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// An ordered JSON tree, so that a mutated heartbeat keeps the key order of
// the original (Python's dict keeps it, and Octavia's loops follow it).
// Values are nil (null), bool, string, jnum (a number literal as written),
// []any and *jobj.
type jobj struct {
	keys []string
	vals []any
}

type jnum string

func (o *jobj) index(k string) int {
	for i, key := range o.keys {
		if key == k {
			return i
		}
	}
	return -1
}

func (o *jobj) get(k string) (any, bool) {
	if i := o.index(k); i >= 0 {
		return o.vals[i], true
	}
	return nil, false
}

// set replaces a value in place, or appends the key.
func (o *jobj) set(k string, v any) {
	if i := o.index(k); i >= 0 {
		o.vals[i] = v
		return
	}
	o.keys = append(o.keys, k)
	o.vals = append(o.vals, v)
}

func (o *jobj) del(k string) {
	if i := o.index(k); i >= 0 {
		o.keys = append(o.keys[:i], o.keys[i+1:]...)
		o.vals = append(o.vals[:i], o.vals[i+1:]...)
	}
}

// rename changes a key in place, keeping its position.
func (o *jobj) rename(from, to string) {
	if i := o.index(from); i >= 0 {
		o.keys[i] = to
	}
}

func (o *jobj) child(k string) *jobj {
	v, _ := o.get(k)
	c, _ := v.(*jobj)
	return c
}

func parseTree(text string) (any, error) {
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	v, err := parseValue(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("trailing data")
	}
	return v, nil
}

func parseValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			o := &jobj{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				v, err := parseValue(dec)
				if err != nil {
					return nil, err
				}
				o.keys = append(o.keys, kt.(string))
				o.vals = append(o.vals, v)
			}
			_, err := dec.Token()
			return o, err
		case '[':
			a := []any{}
			for dec.More() {
				v, err := parseValue(dec)
				if err != nil {
					return nil, err
				}
				a = append(a, v)
			}
			_, err := dec.Token()
			return a, err
		}
		return nil, fmt.Errorf("unexpected %v", t)
	case json.Number:
		return jnum(t), nil
	default:
		return t, nil // nil, bool, string
	}
}

// renderTree writes JSON as Python's json.dumps would lay it out.
func renderTree(v any) string {
	var b bytes.Buffer
	render(&b, v)
	return b.String()
}

func render(b *bytes.Buffer, v any) {
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		fmt.Fprint(b, x)
	case jnum:
		b.WriteString(string(x))
	case string:
		b.WriteString(quoteText(x))
	case []any:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteString(", ")
			}
			render(b, e)
		}
		b.WriteByte(']')
	case *jobj:
		b.WriteByte('{')
		for i, k := range x.keys {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(quoteText(k))
			b.WriteString(": ")
			render(b, x.vals[i])
		}
		b.WriteByte('}')
	default:
		panic(fmt.Sprintf("renderTree: %T", v))
	}
}

func quoteText(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return strings.TrimSuffix(b.String(), "\n")
}
