package field

import "github.com/outpost-gitops/outpost/sync/object"

// LastAppliedAnnotation is kubectl's client-side copy of the applied object: on a
// Secret it holds the Secret's values in clear.
const LastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration"

// SecretValue reports whether the field at p of the object ref holds (a copy of) a
// secret value that is never shown: on a core v1 Secret, data and stringData and
// everything under them, metadata.annotations as a whole, and its
// last-applied-configuration annotation.
func SecretValue(ref object.Ref, p Path) bool {
	if !ref.IsSecret() || len(p) == 0 || p[0].Kind != FieldKind {
		return false
	}
	switch p[0].Name {
	case "data", "stringData":
		return true
	case "metadata":
		return len(p) >= 2 && p[1].Kind == FieldKind && p[1].Name == "annotations" &&
			(len(p) == 2 || (p[2].Kind == FieldKind && p[2].Name == LastAppliedAnnotation))
	}
	return false
}
