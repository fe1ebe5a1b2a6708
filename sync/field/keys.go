package field

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"
	"sigs.k8s.io/structured-merge-diff/v6/value"
)

// The helpers below read the list element kinds of fieldsV1 (managedFields) nodes:
// maps from serialized path elements ("f:name", "k:{...}", "v:...", "i:3") to child
// nodes.

// SerializeValue renders a set element as managedFields does, v:"a".
func SerializeValue(v any) (string, error) {
	return fieldpath.SerializePathElement(fieldpath.PathElement{Value: ptr(value.NewValueInterface(v))})
}

func ptr[T any](v T) *T { return &v }

// ListKind returns the element kind of a list's fieldsV1 nodes ('k', 'v' or 'i') and
// one serialized element of that kind.
func ListKind(nodes []map[string]any) (byte, string) {
	for _, n := range nodes {
		for k := range n {
			if len(k) > 2 && k[1] == ':' && k[0] != 'f' {
				return k[0], k
			}
		}
	}
	return 0, ""
}

// KeyNames returns the key field names of a serialized "k:{...}" element, sorted.
func KeyNames(pe string) ([]string, error) {
	if names, ok := scanKeyNames(pe); ok {
		return names, nil
	}
	e, err := fieldpath.DeserializePathElement(pe)
	if err != nil || e.Key == nil {
		return nil, fmt.Errorf("parse key %s: %w", pe, err)
	}
	names := make([]string, len(*e.Key))
	for i, f := range *e.Key {
		names[i] = f.Name
	}
	return names, nil
}

// scanKeyNames is KeyNames' fast path for the usual keys: plain names with string,
// number, boolean or null values, as managedFields writes them (sorted). It returns
// false for anything else.
func scanKeyNames(pe string) ([]string, bool) {
	if !strings.HasPrefix(pe, "k:{") || !strings.HasSuffix(pe, "}") {
		return nil, false
	}
	s := pe[3 : len(pe)-1]
	names := make([]string, 0, 2)
	for len(s) > 0 {
		if s[0] != '"' {
			return nil, false
		}
		end := strings.IndexByte(s[1:], '"')
		if end < 0 {
			return nil, false
		}
		name := s[1 : 1+end]
		if !plainJSON(name) || (len(names) > 0 && name <= names[len(names)-1]) {
			return nil, false
		}
		names = append(names, name)
		s = s[2+end:]
		if len(s) == 0 || s[0] != ':' {
			return nil, false
		}
		s = s[1:]
		// Skip the value: a string without escapes, or a bare literal.
		if len(s) > 0 && s[0] == '"' {
			end := strings.IndexByte(s[1:], '"')
			if end < 0 || !plainJSON(s[1:1+end]) {
				return nil, false
			}
			s = s[2+end:]
		} else {
			end := strings.IndexByte(s, ',')
			if end < 0 {
				end = len(s)
			}
			if end == 0 || strings.ContainsAny(s[:end], "{}[]\"") || !json.Valid([]byte(s[:end])) {
				return nil, false
			}
			s = s[end:]
		}
		if len(s) > 0 {
			if s[0] != ',' || len(s) == 1 {
				return nil, false // not a separator, or a trailing comma
			}
			s = s[1:]
		}
	}
	return names, len(names) > 0
}

// ResolveKey returns the key of a desired list element and its serialized form as
// found in managedFields. When the element lacks a key field the server defaulted
// (a port's protocol), the key is completed from the first managedFields element
// whose other key fields match.
func ResolveKey(nodes []map[string]any, names []string, d map[string]any) ([]KeyField, string) {
	key := make([]KeyField, 0, len(names))
	complete := true
	for _, n := range names {
		v, ok := d[n]
		if !ok {
			complete = false
			continue
		}
		key = append(key, KeyField{Name: n, Value: v})
	}
	pe, err := serializeKey(key)
	if complete && err == nil {
		for _, n := range nodes {
			if _, ok := n[pe]; ok {
				return key, pe
			}
		}
	}
	// Slow path: compare with every keyed element of every entry.
	for _, n := range nodes {
		for k := range n {
			if !strings.HasPrefix(k, "k:") {
				continue
			}
			e, err := fieldpath.DeserializePathElement(k)
			if err != nil || e.Key == nil || !keyMatches(*e.Key, d) {
				continue
			}
			full := make([]KeyField, len(*e.Key))
			for i, f := range *e.Key {
				full[i] = KeyField{Name: f.Name, Value: f.Value.Unstructured()}
			}
			return full, k
		}
	}
	return key, pe
}

// serializeKey renders a key as managedFields does, k:{"name":"web"}, with a fast path
// for the usual keys: names and values made of plain ASCII, and integers.
func serializeKey(key []KeyField) (string, error) {
	var b strings.Builder
	b.WriteString("k:{")
	for i, f := range key {
		if !plainJSON(f.Name) {
			return serializeKeySlow(key)
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('"')
		b.WriteString(f.Name)
		b.WriteString(`":`)
		switch v := f.Value.(type) {
		case string:
			if !plainJSON(v) {
				return serializeKeySlow(key)
			}
			b.WriteByte('"')
			b.WriteString(v)
			b.WriteByte('"')
		case int64:
			b.WriteString(strconv.FormatInt(v, 10))
		default:
			return serializeKeySlow(key)
		}
	}
	b.WriteByte('}')
	return b.String(), nil
}

func serializeKeySlow(key []KeyField) (string, error) {
	fl := make(value.FieldList, len(key))
	for i, f := range key {
		fl[i] = value.Field{Name: f.Name, Value: value.NewValueInterface(f.Value)}
	}
	fl.Sort()
	return fieldpath.SerializePathElement(fieldpath.PathElement{Key: &fl})
}

// plainJSON tells whether s needs no escaping in JSON (and no HTML escaping either).
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// keyMatches tells whether every key field present in d equals the element's.
func keyMatches(key value.FieldList, d map[string]any) bool {
	for _, f := range key {
		if v, ok := d[f.Name]; ok && !Equal(v, f.Value.Unstructured()) {
			return false
		}
	}
	return true
}

// FindKeyed returns the live list element whose key fields equal key.
func FindKeyed(l []any, key []KeyField) (any, bool) {
	for _, e := range l {
		m, ok := e.(map[string]any)
		if !ok {
			continue
		}
		match := true
		for _, f := range key {
			if !Equal(m[f.Name], f.Value) {
				match = false
				break
			}
		}
		if match {
			return e, true
		}
	}
	return nil, false
}

// FindValue returns the live set element equal to v.
func FindValue(l []any, v any) (any, bool) {
	for _, e := range l {
		if Equal(e, v) {
			return e, true
		}
	}
	return nil, false
}
