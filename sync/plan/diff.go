package plan

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// ChangeOp says how a field changed.
type ChangeOp string

// Field change operations.
const (
	// OpAdded means the field is set by the apply and absent live.
	OpAdded ChangeOp = "added"
	// OpRemoved means the field is live and the apply removes it.
	OpRemoved ChangeOp = "removed"
	// OpChanged means the apply changes the field's value.
	OpChanged ChangeOp = "changed"
)

// FieldChange is one field the apply changes.
type FieldChange struct {
	// Path locates the field, e.g. spec.template.spec.containers[name=web].image or
	// metadata.labels["app.kubernetes.io/name"].
	Path string `json:"path"`
	// Op says whether the field is added, removed or changed.
	Op ChangeOp `json:"op"`
	// Old is the live value; absent when added. Secret values are masked.
	Old any `json:"old,omitempty"`
	// New is the value after the apply; absent when removed. Secret values are masked.
	New any `json:"new,omitempty"`
}

// String formats the change as "path: old → new".
func (c FieldChange) String() string {
	switch c.Op {
	case OpAdded:
		return fmt.Sprintf("%s: + %s", c.Path, compactJSON(c.New))
	case OpRemoved:
		return fmt.Sprintf("%s: - %s", c.Path, compactJSON(c.Old))
	default:
		return fmt.Sprintf("%s: %s → %s", c.Path, compactJSON(c.Old), compactJSON(c.New))
	}
}

func compactJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// MaskPrefix starts every masked secret value.
const MaskPrefix = "***"

// lastAppliedAnnotation is kubectl's copy of the applied object; on a Secret it
// holds the values in clear.
const lastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration"

// Compare returns the fields that differ between the live object and the object the
// apiserver would store after the apply (a server-side dry-run's result). Both come
// from the apiserver, so defaulted fields match and never show as changes.
//
// Compared are metadata.labels, metadata.annotations and every top-level field but
// apiVersion, kind, metadata and status. Values of a v1 Secret's data and
// stringData, and its last-applied-configuration annotation, are replaced by Mask
// before comparing, so the result shows that a value changed but never the value.
// Lists whose items all have a unique name are matched by name, others by index.
func Compare(live, merged *unstructured.Unstructured, maskKey []byte) []FieldChange {
	var changes []FieldChange
	walk(nil, comparable(live, maskKey), comparable(merged, maskKey), &changes)
	return changes
}

// comparable returns the parts of u that Compare looks at, secrets masked.
func comparable(u *unstructured.Unstructured, maskKey []byte) map[string]any {
	if u == nil {
		u = &unstructured.Unstructured{Object: map[string]any{}}
	}
	out := map[string]any{}
	for k, v := range u.Object {
		switch k {
		case "apiVersion", "kind", "metadata", "status":
		default:
			out[k] = v
		}
	}
	// Always present, so that adding or removing the first label shows that label.
	out["metadata"] = map[string]any{
		"labels":      toAnyMap(u.GetLabels()),
		"annotations": toAnyMap(u.GetAnnotations()),
	}
	if isSecret(u) {
		maskSecret(out, maskKey)
	}
	return out
}

func isSecret(u *unstructured.Unstructured) bool {
	gvk := u.GroupVersionKind()
	return gvk.Group == "" && gvk.Kind == "Secret"
}

// maskSecret masks, in place, the values of a Secret's comparable view.
func maskSecret(view map[string]any, key []byte) {
	for _, field := range []string{"data", "stringData"} {
		m, ok := view[field].(map[string]any)
		if !ok {
			continue
		}
		masked := make(map[string]any, len(m))
		for k, v := range m {
			masked[k] = Mask(key, fmt.Sprint(v))
		}
		view[field] = masked
	}
	if meta, ok := view["metadata"].(map[string]any); ok {
		if ann, ok := meta["annotations"].(map[string]any); ok {
			if v, ok := ann[lastAppliedAnnotation]; ok {
				ann[lastAppliedAnnotation] = Mask(key, fmt.Sprint(v))
			}
		}
	}
}

// Mask hides a secret value: MaskPrefix followed by 8 hex digits of an HMAC-SHA256
// of the value under key. Equal values mask equally under one key, so a diff shows
// that a value changed; with a secret key the mask does not let a reader test
// guesses of the value.
func Mask(key []byte, value string) string {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(value))
	return MaskPrefix + hex.EncodeToString(h.Sum(nil))[:8]
}

func toAnyMap(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// walk appends to out the changes from a to b under path p.
func walk(p []string, a, b any, out *[]FieldChange) {
	switch av := a.(type) {
	case map[string]any:
		if bv, ok := b.(map[string]any); ok {
			walkMaps(p, av, bv, out)
			return
		}
	case []any:
		if bv, ok := b.([]any); ok {
			walkLists(p, av, bv, out)
			return
		}
	}
	if !leafEqual(a, b) {
		*out = append(*out, FieldChange{Path: render(p), Op: OpChanged, Old: a, New: b})
	}
}

func walkMaps(p []string, a, b map[string]any, out *[]FieldChange) {
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
		cp := append(slices.Clip(p), fieldSegment(k))
		switch {
		case !aok:
			*out = append(*out, FieldChange{Path: render(cp), Op: OpAdded, New: bv})
		case !bok:
			*out = append(*out, FieldChange{Path: render(cp), Op: OpRemoved, Old: av})
		default:
			walk(cp, av, bv, out)
		}
	}
}

func walkLists(p []string, a, b []any, out *[]FieldChange) {
	an, aok := namesOf(a)
	bn, bok := namesOf(b)
	if aok && bok && len(an)+len(bn) > 0 {
		walkNamedLists(p, a, b, an, bn, out)
		return
	}
	for i := range max(len(a), len(b)) {
		cp := append(slices.Clip(p), fmt.Sprintf("[%d]", i))
		switch {
		case i >= len(a):
			*out = append(*out, FieldChange{Path: render(cp), Op: OpAdded, New: b[i]})
		case i >= len(b):
			*out = append(*out, FieldChange{Path: render(cp), Op: OpRemoved, Old: a[i]})
		default:
			walk(cp, a[i], b[i], out)
		}
	}
}

// walkNamedLists compares lists whose items are matched by their name field, in the
// order of b then of the items only in a.
func walkNamedLists(p []string, a, b []any, an, bn []string, out *[]FieldChange) {
	inA := make(map[string]int, len(an))
	for i, n := range an {
		inA[n] = i
	}
	inB := make(map[string]bool, len(bn))
	for i, n := range bn {
		inB[n] = true
		cp := append(slices.Clip(p), fmt.Sprintf("[name=%s]", n))
		if j, ok := inA[n]; ok {
			walk(cp, a[j], b[i], out)
			continue
		}
		*out = append(*out, FieldChange{Path: render(cp), Op: OpAdded, New: b[i]})
	}
	for j, n := range an {
		if !inB[n] {
			cp := append(slices.Clip(p), fmt.Sprintf("[name=%s]", n))
			*out = append(*out, FieldChange{Path: render(cp), Op: OpRemoved, Old: a[j]})
		}
	}
}

// namesOf returns the name of each item, and whether every item is a map with a
// unique, non-empty string name.
func namesOf(items []any) ([]string, bool) {
	names := make([]string, 0, len(items))
	seen := make(map[string]bool, len(items))
	for _, it := range items {
		m, ok := it.(map[string]any)
		if !ok {
			return nil, false
		}
		n, ok := m["name"].(string)
		if !ok || n == "" || seen[n] || strings.ContainsAny(n, "[]") {
			return nil, false
		}
		seen[n] = true
		names = append(names, n)
	}
	return names, true
}

var identifier = regexp.MustCompile(`^[A-Za-z_$][A-Za-z0-9_$-]*$`)

// fieldSegment renders a map key: .key when it is an identifier, else ["key"].
func fieldSegment(k string) string {
	if identifier.MatchString(k) {
		return "." + k
	}
	q, _ := json.Marshal(k)
	return "[" + string(q) + "]"
}

func render(p []string) string {
	return strings.TrimPrefix(strings.Join(p, ""), ".")
}

// leafEqual compares scalars (and mismatched containers) as JSON values: integers
// decoded as int64 equal the same number decoded as float64.
func leafEqual(a, b any) bool {
	if fa, ok := number(a); ok {
		fb, ok := number(b)
		return ok && fa == fb
	}
	return reflect.DeepEqual(a, b)
}

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case int64:
		return float64(n), true
	case int:
		return float64(n), true
	case int32:
		return float64(n), true
	case float64:
		return n, true
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	}
	return 0, false
}
