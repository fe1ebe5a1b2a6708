package object

// PruneAnnotation set to PruneDisabled on a live object makes prune leave the object
// in place when it leaves its app: it is disowned, not deleted. Render sets it on the
// CRDs of a Helm chart's crds/ directories, which Helm never deletes either (deleting
// a CRD deletes every custom resource of its kinds).
const (
	PruneAnnotation = "outpost.dev/prune"
	PruneDisabled   = "disabled"
)
