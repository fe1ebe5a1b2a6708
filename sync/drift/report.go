package drift

import (
	"time"

	"github.com/outpost-gitops/outpost/sync/object"
)

// Redacted replaces the values of v1 Secret data and stringData in a report.
const Redacted = "(redacted)"

// Report is the drift of one object.
type Report struct {
	// Object is the object compared.
	Object object.Ref `json:"object"`
	// Version is the API version of the desired object, the one Outpost applied.
	Version string `json:"version,omitempty"`
	// Fields are the drifted fields, sorted by path. Empty when nothing drifted.
	Fields []FieldDrift `json:"fields,omitempty"`
	// Deleted is true when the object no longer exists in the cluster.
	Deleted bool `json:"deleted,omitempty"`
	// ObservedAt is when the caller observed the live object.
	ObservedAt time.Time `json:"observedAt"`
}

// Drifted tells whether the report holds any drift.
func (r *Report) Drifted() bool {
	return r != nil && (r.Deleted || len(r.Fields) > 0)
}

// FieldDrift is one drifted field.
type FieldDrift struct {
	// Path is the field's path, e.g. spec.template.spec.containers[name=web].image.
	// Map keys that contain '.', '[' or ']' are quoted: metadata.labels["app.kubernetes.io/name"].
	Path string `json:"path"`
	// Desired is the value Outpost applied.
	Desired any `json:"desired"`
	// Live is the value in the cluster; nil when the field is gone.
	Live any `json:"live"`
	// Manager is the field manager that now owns the field; empty when nobody does
	// (the field was removed). It is Outpost itself when Outpost still owns the field
	// but its value differs from the desired one.
	Manager string `json:"manager,omitempty"`
	// Operation is the manager's managedFields operation: Apply or Update.
	Operation string `json:"operation,omitempty"`
	// Subresource is the subresource the manager wrote through, e.g. "scale".
	Subresource string `json:"subresource,omitempty"`
	// Time is when the manager last wrote, from its managedFields entry, or
	// Report.ObservedAt when the entry has no time or nobody owns the field.
	Time time.Time `json:"time"`
	// TimeObserved is true when Time is the observation time, not the manager's.
	TimeObserved bool `json:"timeObserved,omitempty"`
	// Redacted is true when Desired and Live were replaced by Redacted (Secret data).
	Redacted bool `json:"redacted,omitempty"`
}
