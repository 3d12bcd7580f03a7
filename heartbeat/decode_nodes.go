package heartbeat

import (
	"strconv"
	"unicode/utf8"
)

// kindOf maps a node to the Kind recorded for an odd field.
func (d *messageDecoder) kindOf(i int32) Kind {
	if i < 0 {
		return KindAbsent
	}
	switch d.nodes[i].kind {
	case kindObject:
		return KindObject
	case kindArray:
		return KindArray
	case kindString:
		return KindString
	case kindNumber:
		return KindNumber
	case kindTrue, kindFalse:
		return KindBool
	}
	return KindNull
}

// truthy is Python's truth value of a JSON value.
func (d *messageDecoder) truthy(i int32) bool {
	n := &d.nodes[i]
	switch n.kind {
	case kindObject, kindArray:
		return n.count > 0
	case kindString:
		return n.end > n.start
	case kindNumber:
		f, err := strconv.ParseFloat(d.text[n.start:n.end], 64)
		return err != nil || f != 0 // a literal beyond float64 is not zero
	case kindTrue:
		return true
	}
	return false
}

// nonObject describes a value that should have been an object.
func (d *messageDecoder) nonObject(i int32) NonObject {
	v := NonObject{Kind: d.kindOf(i)}
	switch v.Kind {
	case KindArray:
		v.Len = int(d.nodes[i].count)
		child := i + 1
		for k := int32(0); k < d.nodes[i].count; k++ {
			if d.nodes[child].kind == kindString {
				v.Strings = append(v.Strings, d.str(child))
			}
			child = d.nodes[child].next
		}
	case KindString:
		v.Text = d.str(i)
		v.Len = utf8.RuneCountInString(v.Text)
	}
	return v
}

// str returns a string node's value, sharing the text when it has no escapes.
func (d *messageDecoder) str(i int32) string {
	n := &d.nodes[i]
	if !n.escaped {
		return d.text[n.start:n.end]
	}
	return unescapeJSON(d.text[n.start:n.end])
}

// lone tells whether a string node held a lone surrogate escape, which
// str turned into U+FFFD.
func (d *messageDecoder) lone(i int32) bool {
	n := &d.nodes[i]
	return n.escaped && hasLoneSurrogate(d.text[n.start:n.end])
}

// keyIs compares a key node with a field name, honouring escapes
// ("\u0069d" is "id" to Python too).
func (d *messageDecoder) keyIs(i int32, name string) bool {
	n := &d.nodes[i]
	if !n.escaped {
		if int(n.end-n.start) != len(name) {
			return false
		}
		return d.text[n.start:n.end] == name
	}
	return unescapeJSON(d.text[n.start:n.end]) == name
}

// fields finds the last occurrence of each wanted field among an object's
// members, so a repeated key resolves as Python's dict resolves it. Absent
// fields are -1.
func (d *messageDecoder) fields(obj int32, names []string, found []int32) {
	for i := range found {
		found[i] = -1
	}
	// Senders write the fields in a fixed order, so the search for each
	// key starts after the field the previous key matched: in a message
	// whose order is that of names, every key matches at the first try.
	// Names are distinct, so where the search starts changes nothing else.
	child, next := obj+1, 0
	for k := int32(0); k < d.nodes[obj].count; k++ {
		key, val := child, child+1
		for tries, f := 0, next; tries < len(names); tries, f = tries+1, f+1 {
			if f == len(names) {
				f = 0
			}
			if d.keyIs(key, names[f]) {
				found[f] = val
				next = f + 1
				break
			}
		}
		child = d.nodes[val].next
	}
}

// pathTo renders where node target sits, such as `listeners["<id>"].stats`.
// Members of "listeners", "pools" and "members" are map entries, shown in
// brackets; everything else is a named field.
func (d *messageDecoder) pathTo(target int32) string {
	var b []byte
	obj, inMap := int32(0), false
	for obj != target && d.nodes[obj].kind == kindObject {
		child, next := obj+1, int32(0)
		descended := false
		for k := int32(0); k < d.nodes[obj].count; k, child = k+1, next {
			key, val := child, child+1
			next = d.nodes[val].next
			if target < val || target >= next {
				continue
			}
			name := d.str(key)
			if inMap {
				b = append(b, '[')
				b = strconv.AppendQuote(b, name)
				b = append(b, ']')
			} else {
				if len(b) > 0 {
					b = append(b, '.')
				}
				b = append(b, name...)
			}
			inMap = !inMap && (name == "listeners" || name == "pools" || name == "members")
			obj, descended = val, true
			break
		}
		if !descended {
			break
		}
	}
	return string(b)
}

func (d *messageDecoder) missing(obj int32, name string) *Error {
	path := d.pathTo(obj)
	if path != "" {
		path += "."
	}
	return malformed(path+name, "missing")
}

func (d *messageDecoder) wrongType(i int32, want string) *Error {
	return malformed(d.pathTo(i), "must be "+want+", not "+d.describe(i))
}

func (d *messageDecoder) describe(i int32) string {
	n := &d.nodes[i]
	if n.kind == kindNumber && !n.integer {
		return "a non-integer number"
	}
	return n.kind.String()
}

func (d *messageDecoder) int64Value(i int32) (int64, *Error) {
	n := &d.nodes[i]
	if n.kind != kindNumber || !n.integer {
		return 0, d.wrongType(i, "an integer")
	}
	v, err := strconv.ParseInt(d.text[n.start:n.end], 10, 64)
	if err != nil {
		return 0, malformed(d.pathTo(i), "integer "+d.text[n.start:n.end]+" is outside the signed 64-bit range")
	}
	return v, nil
}

func (d *messageDecoder) stringValue(i int32) (string, *Error) {
	if d.nodes[i].kind != kindString {
		return "", d.wrongType(i, "a string")
	}
	return d.str(i), nil
}
