package v1

import (
	"encoding/json"
	"time"
)

// Redacted is the value that stands for a masked secret value in a DriftField.
const Redacted = "(redacted)"

// Drift is the drift of one object Outpost applied: fields Outpost owns that another
// field manager changed, or the object's deletion.
type Drift struct {
	// App is the app the object belongs to.
	App string `json:"app"`
	// Object is the drifted object; Version is required.
	Object ObjectRef `json:"object"`
	// Fields are the drifted fields, sorted by path; empty only when Deleted.
	Fields []DriftField `json:"fields,omitempty"`
	// Deleted is true when the object was deleted out of band.
	Deleted bool `json:"deleted,omitempty"`
	// ObservedAt is when the agent observed the drift.
	ObservedAt time.Time `json:"observedAt"`
	// Corrected is true when the agent re-applied the desired state (drift policy
	// "correct"); the entry stays until the agent reports the app without it.
	Corrected bool `json:"corrected,omitempty"`
}

// DriftField is one drifted field.
type DriftField struct {
	// Path is the field's path, e.g. spec.template.spec.containers[name=web].image. Map
	// keys that contain '.', '[' or ']' are quoted: metadata.labels["app.kubernetes.io/name"].
	Path string `json:"path"`
	// Desired is the value Outpost applied, as JSON; absent when unknown.
	Desired json.RawMessage `json:"desired,omitempty"`
	// Live is the value in the cluster, as JSON; null or absent when the field is gone.
	Live json.RawMessage `json:"live,omitempty"`
	// Manager is the field manager that now owns the field, e.g. kubectl; empty when
	// nobody does (the field was removed).
	Manager string `json:"manager,omitempty"`
	// Operation is the manager's managedFields operation: Apply or Update.
	Operation string `json:"operation,omitempty"`
	// Subresource is the subresource the manager wrote through, e.g. scale.
	Subresource string `json:"subresource,omitempty"`
	// Time is when the manager last wrote (from managedFields), or when the agent
	// observed the change if managedFields has no time.
	Time time.Time `json:"time,omitzero"`
	// TimeObserved is true when Time is the agent's observation time.
	TimeObserved bool `json:"timeObserved,omitempty"`
	// Redacted is true when Desired and Live hold Redacted instead of a secret value.
	Redacted bool `json:"redacted,omitempty"`
}

// Managed-fields operations a DriftField may name.
const (
	// OperationApply is a server-side apply.
	OperationApply = "Apply"
	// OperationUpdate is any other write (create, update, patch).
	OperationUpdate = "Update"
)
