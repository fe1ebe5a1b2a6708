package object

import "k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

// ApplyAnnotation set to ApplyCreateOnly on a desired object makes the object
// create-only: the apply creates it when it is missing and otherwise never writes it,
// and drift detection reports only its deletion, never its content. It suits objects
// whose content is generated once (a chart's randAlphaNum password Secret: render
// accepts a template whose output differs between renders only for such objects) or
// filled in by someone else after creation.
const (
	ApplyAnnotation = "outpost.dev/apply"
	ApplyCreateOnly = "create-only"
)

// IsCreateOnly reports whether obj is annotated ApplyAnnotation: ApplyCreateOnly.
func IsCreateOnly(obj *unstructured.Unstructured) bool {
	return obj != nil && obj.GetAnnotations()[ApplyAnnotation] == ApplyCreateOnly
}
