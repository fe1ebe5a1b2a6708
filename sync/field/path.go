package field

import (
	"encoding/json"
	"strconv"
	"strings"
)

// Kind tells what a path element selects.
type Kind uint8

const (
	// FieldKind selects a map key or struct field by Name.
	FieldKind Kind = iota
	// KeyKind selects an associative list's element by its Key fields.
	KeyKind
	// ValueKind selects a set's element by its Value.
	ValueKind
	// IndexKind selects an atomic list's element by Index.
	IndexKind
)

// KeyField is one key field of an associative list element.
type KeyField struct {
	// Name is the key field's name, e.g. containerPort.
	Name string
	// Value is its value, e.g. int64(80).
	Value any
}

// Elem is one step of a path. Only the fields of its Kind are set.
type Elem struct {
	// Kind selects which of the other fields is set.
	Kind Kind
	// Name is the field name (FieldKind).
	Name string
	// Key are the key fields, sorted by name (KeyKind).
	Key []KeyField
	// Value is the set element (ValueKind).
	Value any
	// Index is the list position (IndexKind).
	Index int
}

// Field returns the element selecting field name.
func Field(name string) Elem { return Elem{Kind: FieldKind, Name: name} }

// Key returns the element selecting the associative list element with these key fields.
func Key(key ...KeyField) Elem { return Elem{Kind: KeyKind, Key: key} }

// Value returns the element selecting set element v.
func Value(v any) Elem { return Elem{Kind: ValueKind, Value: v} }

// Index returns the element selecting list position i.
func Index(i int) Elem { return Elem{Kind: IndexKind, Index: i} }

// Path locates a field from an object's root.
type Path []Elem

// String renders a path like spec.template.spec.containers[name=web].image: fields
// joined by dots (quoted in brackets when they hold '.', '[', ']' or '"', or are
// empty), list elements in brackets: [k=v,k2=v2] by key, [=v] by value, [i] by index.
func (p Path) String() string {
	var b strings.Builder
	for i, e := range p {
		switch e.Kind {
		case FieldKind:
			if strings.ContainsAny(e.Name, ".[]\"") || e.Name == "" {
				b.WriteByte('[')
				b.WriteString(strconv.Quote(e.Name))
				b.WriteByte(']')
				continue
			}
			if i > 0 {
				b.WriteByte('.')
			}
			b.WriteString(e.Name)
		case KeyKind:
			b.WriteByte('[')
			for j, f := range e.Key {
				if j > 0 {
					b.WriteByte(',')
				}
				b.WriteString(f.Name)
				b.WriteByte('=')
				b.WriteString(formatScalar(f.Value))
			}
			b.WriteByte(']')
		case ValueKind:
			b.WriteString("[=")
			b.WriteString(formatScalar(e.Value))
			b.WriteByte(']')
		case IndexKind:
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(e.Index))
			b.WriteByte(']')
		}
	}
	return b.String()
}

// formatScalar renders a key or set value: plain strings bare, the rest as JSON.
func formatScalar(v any) string {
	if s, ok := v.(string); ok && s != "" && !strings.ContainsAny(s, ",=[]\" ") {
		return s
	}
	out, err := json.Marshal(v)
	if err != nil {
		return "?"
	}
	return string(out)
}
