package plan

import (
	"slices"
	"strconv"

	"github.com/outpost-gitops/outpost/sync/field"
	"github.com/outpost-gitops/outpost/sync/object"
)

// comparer holds the state of one Compare: the path walked, and the changes found.
type comparer struct {
	ref     object.Ref
	maskKey []byte
	path    field.Path
	out     []FieldChange
}

// add records a change at the current path, masking secret values.
func (c *comparer) add(op ChangeOp, old, new any) {
	if field.SecretValue(c.ref, c.path) {
		old, new = maskValue(c.maskKey, old), maskValue(c.maskKey, new)
	}
	c.out = append(c.out, FieldChange{Path: c.path.String(), Op: op, Old: old, New: new})
}

// at runs fn with e appended to the path.
func (c *comparer) at(e field.Elem, fn func()) {
	c.path = append(c.path, e)
	fn()
	c.path = c.path[:len(c.path)-1]
}

// walk compares a (live) with b (after the apply) under the current path; nodes are
// the fieldsV1 nodes of every managedFields entry at this path.
func (c *comparer) walk(nodes []map[string]any, a, b any) {
	switch av := a.(type) {
	case map[string]any:
		if bv, ok := b.(map[string]any); ok {
			c.walkMaps(nodes, av, bv)
			return
		}
	case []any:
		if bv, ok := b.([]any); ok {
			c.walkLists(nodes, av, bv)
			return
		}
	}
	if !field.Equal(a, b) {
		c.add(OpChanged, a, b)
	}
}

func (c *comparer) walkMaps(nodes []map[string]any, a, b map[string]any) {
	keys := make([]string, 0, len(a)+len(b))
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		av, aok := a[k]
		bv, bok := b[k]
		c.at(field.Field(k), func() {
			switch {
			case !aok:
				c.add(OpAdded, nil, bv)
			case !bok:
				c.add(OpRemoved, av, nil)
			default:
				c.walk(descend(nodes, "f:"+k), av, bv)
			}
		})
	}
}

// element is one list item with the path element naming it and its serialized form
// (the fieldsV1 key under which managedFields describes it).
type element struct {
	elem field.Elem
	id   string
	item any
}

// walkLists matches the items of two lists, as the apiserver's structured merge
// identifies them, and compares the matched ones: in the order of b, then the items
// only in a.
func (c *comparer) walkLists(nodes []map[string]any, a, b []any) {
	ea, oka := c.elements(nodes, a)
	eb, okb := c.elements(nodes, b)
	if !oka || !okb {
		ea, eb = indexed(a), indexed(b)
	}
	inA := make(map[string]int, len(ea))
	for i, e := range ea {
		inA[e.id] = i
	}
	inB := make(map[string]bool, len(eb))
	for _, e := range eb {
		inB[e.id] = true
		c.at(e.elem, func() {
			if j, ok := inA[e.id]; ok {
				c.walk(descend(nodes, e.id), ea[j].item, e.item)
				return
			}
			c.add(OpAdded, nil, e.item)
		})
	}
	for _, e := range ea {
		if !inB[e.id] {
			c.at(e.elem, func() { c.add(OpRemoved, e.item, nil) })
		}
	}
}

// elements identifies the items of a list: by the key fields managedFields uses for
// it, by value for a set, or (without managedFields) by a unique name. false means
// by index: an atomic list, or items the keys cannot tell apart.
func (c *comparer) elements(nodes []map[string]any, items []any) ([]element, bool) {
	kind, sample := field.ListKind(nodes)
	var names []string
	switch kind {
	case 'k':
		var err error
		if names, err = field.KeyNames(sample); err != nil {
			return nil, false
		}
	case 'v':
		return setElements(items)
	case 0:
		names = []string{"name"} // no managedFields: the usual key of Kubernetes lists
	default:
		return nil, false
	}
	out := make([]element, 0, len(items))
	seen := make(map[string]bool, len(items))
	for _, it := range items {
		m, ok := it.(map[string]any)
		if !ok {
			return nil, false
		}
		key, id := field.ResolveKey(nodes, names, m)
		if len(key) != len(names) || id == "" || seen[id] || (kind == 0 && !plainName(m["name"])) {
			return nil, false
		}
		seen[id] = true
		out = append(out, element{elem: field.Key(key...), id: id, item: it})
	}
	return out, true
}

// plainName tells whether a list item's name can key it without managedFields: a
// non-empty string.
func plainName(v any) bool {
	s, ok := v.(string)
	return ok && s != ""
}

func setElements(items []any) ([]element, bool) {
	out := make([]element, 0, len(items))
	seen := make(map[string]bool, len(items))
	for _, it := range items {
		id, err := field.SerializeValue(it)
		if err != nil || seen[id] {
			return nil, false
		}
		seen[id] = true
		out = append(out, element{elem: field.Value(it), id: id, item: it})
	}
	return out, true
}

func indexed(items []any) []element {
	out := make([]element, len(items))
	for i, it := range items {
		id := "i:" + strconv.Itoa(i)
		out[i] = element{elem: field.Index(i), id: id, item: it}
	}
	return out
}

// descend returns the child nodes of every node under the serialized element pe.
func descend(nodes []map[string]any, pe string) []map[string]any {
	var out []map[string]any
	for _, n := range nodes {
		if child, ok := n[pe].(map[string]any); ok {
			out = append(out, child)
		}
	}
	return out
}
