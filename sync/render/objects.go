package render

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/fluxcd/pkg/ssa"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/outpost-gitops/outpost/sync/object"
)

// MaxObjects is the largest number of objects one app may render to.
const MaxObjects = 2000

// checkIdentity refuses an object without apiVersion, kind or metadata.name, or
// whose identity fields are not strings (a substituted "123" becomes a number).
func checkIdentity(u *unstructured.Unstructured) string {
	for _, f := range [][]string{{"apiVersion"}, {"kind"}, {"metadata", "name"}} {
		v, found, _ := unstructured.NestedFieldNoCopy(u.Object, f...)
		s, isString := v.(string)
		switch {
		case !found || v == nil || (isString && s == ""):
			return fmt.Sprintf("object has no %s", joinField(f))
		case !isString:
			return fmt.Sprintf("%s must be a string, got %T", joinField(f), v)
		}
	}
	if v, found, _ := unstructured.NestedFieldNoCopy(u.Object, "metadata", "namespace"); found && v != nil {
		if _, ok := v.(string); !ok {
			return fmt.Sprintf("metadata.namespace must be a string, got %T", v)
		}
	}
	return ""
}

func joinField(f []string) string {
	if len(f) == 2 {
		return f[0] + "." + f[1]
	}
	return f[0]
}

// SetDefaultNamespace gives namespace to every object without one whose kind is
// namespaced according to isNamespaced. Objects that already have a namespace
// keep it; cluster-scoped objects are left without. An empty namespace does
// nothing. The apply step may call it again with a RESTMapper-backed func.
func SetDefaultNamespace(objs []*unstructured.Unstructured, namespace string, isNamespaced NamespacedFunc) error {
	if namespace == "" {
		return nil
	}
	for _, o := range objs {
		if o.GetNamespace() != "" {
			continue
		}
		namespaced, err := isNamespaced(o.GroupVersionKind())
		if err != nil {
			return fmt.Errorf("%s: %w", object.RefOf(o), err)
		}
		if namespaced {
			o.SetNamespace(namespace)
		}
	}
	return nil
}

// namespacedClusterObject returns the first object that carries a namespace although
// its kind is cluster-scoped, or nil. Kinds whose scope is unknown are left to the
// apply (and, with allowed namespaces, refused by the engine).
func namespacedClusterObject(objs []*unstructured.Unstructured, isNamespaced NamespacedFunc) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetNamespace() == "" {
			continue
		}
		if namespaced, err := isNamespaced(o.GroupVersionKind()); err == nil && !namespaced {
			return o
		}
	}
	return nil
}

// findDuplicate returns the first object whose key repeats, or nil.
func findDuplicate(objs []*unstructured.Unstructured) *unstructured.Unstructured {
	seen := make(map[object.Ref]bool, len(objs))
	for _, o := range objs {
		k := object.RefOf(o)
		if seen[k] {
			return o
		}
		seen[k] = true
	}
	return nil
}

// sortObjects orders objects the way fluxcd/pkg/ssa applies them (CRDs and
// Namespaces first, webhooks last, then by kind, namespace and name), so the
// order is deterministic and matches the apply step.
func sortObjects(objs []*unstructured.Unstructured) {
	sort.Stable(ssa.SortableUnstructureds(objs))
}

// digest hashes the sorted objects' JSON (maps marshal with sorted keys), so
// two renders of the same content give the same digest. A create-only object
// (object.ApplyAnnotation) counts by its identity, labels and annotations only
// (digestForm): its content is never applied after it is created, and a chart
// may render it differently each time.
func digest(objs []*unstructured.Unstructured) (string, error) {
	h := sha256.New()
	for _, o := range objs {
		b, err := json.Marshal(digestForm(o))
		if err != nil {
			return "", fmt.Errorf("%s: %w", object.RefOf(o), err)
		}
		h.Write(b)
		h.Write([]byte{'\n'})
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// digestForm is what digest hashes of o: the whole object, or for a create-only
// object its apiVersion, kind, name, namespace, labels and annotations.
func digestForm(o *unstructured.Unstructured) map[string]any {
	if !object.IsCreateOnly(o) {
		return o.Object
	}
	meta := map[string]any{"name": o.GetName()}
	if ns := o.GetNamespace(); ns != "" {
		meta["namespace"] = ns
	}
	if l := o.GetLabels(); len(l) > 0 {
		meta["labels"] = l
	}
	meta["annotations"] = o.GetAnnotations()
	return map[string]any{"apiVersion": o.GetAPIVersion(), "kind": o.GetKind(), "metadata": meta}
}
