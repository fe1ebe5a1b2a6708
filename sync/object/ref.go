package object

import (
	"cmp"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Ref identifies a Kubernetes object independently of the API version it is served at.
// The zero Ref names no object.
type Ref struct {
	// Group is the API group; empty for the core group.
	Group string `json:"group,omitempty"`
	// Kind is the object's kind, e.g. Deployment.
	Kind string `json:"kind"`
	// Namespace is empty for cluster-scoped objects.
	Namespace string `json:"namespace,omitempty"`
	// Name is the object's name.
	Name string `json:"name"`
}

// RefOf returns the Ref of an object.
func RefOf(u *unstructured.Unstructured) Ref {
	gvk := u.GroupVersionKind()
	return Ref{Group: gvk.Group, Kind: gvk.Kind, Namespace: u.GetNamespace(), Name: u.GetName()}
}

// RefsOf returns the Refs of objects, in order.
func RefsOf(objs []*unstructured.Unstructured) []Ref {
	out := make([]Ref, len(objs))
	for i, o := range objs {
		out[i] = RefOf(o)
	}
	return out
}

// GroupKind returns the Ref's group and kind.
func (r Ref) GroupKind() schema.GroupKind { return schema.GroupKind{Group: r.Group, Kind: r.Kind} }

// GroupVersionKind returns the Ref's group and kind at an API version.
func (r Ref) GroupVersionKind(version string) schema.GroupVersionKind {
	return schema.GroupVersionKind{Group: r.Group, Version: version, Kind: r.Kind}
}

// String formats the ref as Kind[.group]/[namespace/]name, e.g. Deployment.apps/web/api
// or Namespace/web, the form kubectl prints. A missing kind or name shows as "<none>"
// (error messages name objects that failed validation).
func (r Ref) String() string {
	kind := r.Kind
	if kind == "" {
		kind = none
	}
	if r.Group != "" {
		kind += "." + r.Group
	}
	name := r.Name
	if name == "" {
		name = none
	}
	if r.Namespace == "" {
		return kind + "/" + name
	}
	return fmt.Sprintf("%s/%s/%s", kind, r.Namespace, name)
}

const none = "<none>"

// Compare orders refs by group, kind, namespace and name.
func (r Ref) Compare(o Ref) int {
	return cmp.Or(
		cmp.Compare(r.Group, o.Group),
		cmp.Compare(r.Kind, o.Kind),
		cmp.Compare(r.Namespace, o.Namespace),
		cmp.Compare(r.Name, o.Name),
	)
}

// IsSecret reports whether the ref names a core v1 Secret, whose values Outpost
// never prints or reports.
func (r Ref) IsSecret() bool { return r.Group == "" && r.Kind == "Secret" }
