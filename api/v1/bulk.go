package v1

// Limits of a bulk write (POST /api/v1/apps/{app}/bulk).
const (
	// MaxBulkClusters is the most clusters a bulk write may name, and the most it may
	// select.
	MaxBulkClusters = 1000
	// MaxSelectorLen is the longest label selector, in bytes.
	MaxSelectorLen = 4096
)

// BulkAction is what a bulk write does to the app on each selected cluster.
type BulkAction string

// The bulk actions.
const (
	// BulkSet sets the app's version (adding the app where it is not listed).
	BulkSet BulkAction = "set"
	// BulkUnset removes the app.
	BulkUnset BulkAction = "unset"
	// BulkRollback sets the app back to the version it had before its current one, on
	// each cluster.
	BulkRollback BulkAction = "rollback"
)

// BulkRequest is the body of POST /api/v1/apps/{app}/bulk: one action on one app over
// every cluster the selector matches plus the clusters named, as ONE commit (all or
// nothing). The hub decodes it strictly: an unknown field is refused.
type BulkRequest struct {
	// Action is set, unset or rollback.
	Action BulkAction `json:"action"`
	// Version is the version to set: required for set, empty otherwise.
	Version string `json:"version,omitempty"`
	// Selector is a Kubernetes label selector over the clusters' cluster.yaml labels,
	// e.g. "env=prod,region in (eu,us),!canary". It must match at least one cluster.
	Selector string `json:"selector,omitempty"`
	// Clusters are clusters named explicitly, selected in addition to the selector's.
	// Selector and Clusters must not both be empty.
	Clusters []string `json:"clusters,omitempty"`
	// VarsFrom, for set only, names a cluster whose vars of the app are copied to every
	// selected cluster (replacing theirs), read at the same revision. Empty: vars stay.
	VarsFrom string `json:"varsFrom,omitempty"`
	// DryRun answers what would change without committing.
	DryRun bool `json:"dryRun,omitempty"`
	// IfMatch is the revision the caller decided on (as the If-Match header, which may
	// be sent instead): the write is refused with 409 when the selected clusters, or the
	// apps.yaml of any of them, changed since.
	IfMatch string `json:"ifMatch,omitempty"`
}

// Validate checks the request.
func (r *BulkRequest) Validate() error {
	switch r.Action {
	case BulkSet:
		if err := ValidateVersion("version", r.Version); err != nil {
			return err
		}
	case BulkUnset, BulkRollback:
		if r.Version != "" {
			return fieldErr("version", "must be empty for %s", r.Action)
		}
	case "":
		return fieldErr("action", "must be set: set, unset or rollback")
	default:
		return fieldErr("action", "%s is not one of set, unset, rollback", quote(string(r.Action)))
	}
	if r.VarsFrom != "" {
		if r.Action != BulkSet {
			return fieldErr("varsFrom", "must be empty for %s", r.Action)
		}
		if err := ValidateName("varsFrom", r.VarsFrom); err != nil {
			return err
		}
	}
	if err := checkText("selector", r.Selector, MaxSelectorLen, false); err != nil {
		return err
	}
	if len(r.Clusters) > MaxBulkClusters {
		return fieldErr("clusters", "lists %d clusters, more than the limit of %d", len(r.Clusters), MaxBulkClusters)
	}
	for i, c := range r.Clusters {
		if err := ValidateName(join("clusters", i), c); err != nil {
			return err
		}
	}
	if r.Selector == "" && len(r.Clusters) == 0 {
		return fieldErr("selector", "give a selector or clusters")
	}
	if r.IfMatch != "" {
		if err := ValidateRevision("ifMatch", r.IfMatch); err != nil {
			return err
		}
	}
	return nil
}

// BulkChange is what a bulk write does on one cluster.
type BulkChange struct {
	// Cluster is the cluster.
	Cluster string `json:"cluster"`
	// PreviousVersion is the app's version before; empty when it was not listed.
	PreviousVersion string `json:"previousVersion,omitempty"`
	// Version is the app's version after; empty after an unset.
	Version string `json:"version,omitempty"`
	// Changed is false when the cluster already was as asked.
	Changed bool `json:"changed"`
}

// BulkResult answers a bulk write: the commit made (none for a dry run, or when every
// selected cluster already was as asked) and the change on each selected cluster.
type BulkResult struct {
	// App is the app.
	App string `json:"app"`
	// Action is the action.
	Action BulkAction `json:"action"`
	// DryRun is true when nothing was committed because the request asked so.
	DryRun bool `json:"dryRun,omitempty"`
	// Committed is true when a commit was made.
	Committed bool `json:"committed"`
	// Message is the commit message (or the one it would have had).
	Message string `json:"message"`
	// Revision is the repository's revision after the write (the new commit when
	// Committed); use it as ifMatch of the next write.
	Revision string `json:"revision"`
	// Changes has one entry per selected cluster, sorted by cluster.
	Changes []BulkChange `json:"changes"`
	// PreviewRevision, for a dry run that would change something, is the commit the
	// write would make, on no branch: GET /api/v1/diff?base=<revision>&head=<preview>
	// renders what it would do to every cluster.
	PreviewRevision string `json:"previewRevision,omitempty"`
}
