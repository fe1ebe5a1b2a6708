package drift

import (
	"encoding/json"
	"strconv"
	"strings"
)

// elemKind tells what a path element selects.
type elemKind uint8

const (
	fieldElem elemKind = iota // a map key or struct field
	keyElem                   // an associative list's element, by its key fields
	valueElem                 // a set's element, by its value
	indexElem                 // an atomic-free list's element, by index
)

// keyField is one key field of an associative list element.
type keyField struct {
	name  string
	value any
}

// pathElem is one step of a path. Only the fields of its kind are set.
type pathElem struct {
	kind  elemKind
	name  string
	key   []keyField
	value any
	index int
}

// formatPath renders a path like spec.template.spec.containers[name=web].image.
func formatPath(p []pathElem) string {
	var b strings.Builder
	for i, e := range p {
		switch e.kind {
		case fieldElem:
			if strings.ContainsAny(e.name, ".[]\"") || e.name == "" {
				b.WriteByte('[')
				b.WriteString(strconv.Quote(e.name))
				b.WriteByte(']')
				continue
			}
			if i > 0 {
				b.WriteByte('.')
			}
			b.WriteString(e.name)
		case keyElem:
			b.WriteByte('[')
			for j, f := range e.key {
				if j > 0 {
					b.WriteByte(',')
				}
				b.WriteString(f.name)
				b.WriteByte('=')
				b.WriteString(formatScalar(f.value))
			}
			b.WriteByte(']')
		case valueElem:
			b.WriteString("[=")
			b.WriteString(formatScalar(e.value))
			b.WriteByte(']')
		case indexElem:
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(e.index))
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
