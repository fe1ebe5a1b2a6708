package plan

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/outpost-gitops/outpost/sync/object"
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

// Compare returns the fields that differ between the live object and the object the
// apiserver would store after the apply (a server-side dry-run's result). Both come
// from the apiserver, so defaulted fields match and never show as changes.
//
// Compared are metadata.labels, metadata.annotations and every top-level field but
// apiVersion, kind, metadata and status. Paths, equality and list matching are
// package sync/field's, the same as drift reports': list elements are matched by the
// keys managedFields gives them (containers[name=web], ports[containerPort=80,
// protocol=TCP]), sets by value, atomic lists by index; without managedFields, by a
// unique name field, else by index. Values field.SecretValue marks (a v1 Secret's
// data and stringData, its last-applied-configuration) are replaced by Mask, so the
// result shows that a value changed but never the value.
func Compare(live, merged *unstructured.Unstructured, maskKey []byte) []FieldChange {
	ref := object.Ref{}
	switch {
	case merged != nil:
		ref = object.RefOf(merged)
	case live != nil:
		ref = object.RefOf(live)
	}
	c := &comparer{ref: ref, maskKey: maskKey}
	c.walk(managedNodes(live, merged), comparable(live), comparable(merged))
	return c.out
}

// comparable returns the parts of u that Compare looks at.
func comparable(u *unstructured.Unstructured) map[string]any {
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
	return out
}

// managedNodes returns the root fieldsV1 node of every managedFields entry of both
// objects: what tells Compare how each list's elements are identified.
func managedNodes(objs ...*unstructured.Unstructured) []map[string]any {
	var out []map[string]any
	for _, u := range objs {
		if u == nil {
			continue
		}
		raw, _, _ := unstructured.NestedSlice(u.Object, "metadata", "managedFields")
		for _, e := range raw {
			m, _ := e.(map[string]any)
			if f, ok := m["fieldsV1"].(map[string]any); ok {
				out = append(out, f)
			}
		}
	}
	return out
}

// maskValue masks every scalar in v, keeping the shape of maps and lists (the keys
// of a Secret's data stay visible, as in kubectl describe).
func maskValue(key []byte, v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = maskValue(key, e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = maskValue(key, e)
		}
		return out
	case nil:
		return nil
	}
	return Mask(key, fmt.Sprint(v))
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
