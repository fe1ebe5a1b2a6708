package v1

import "time"

// Matrix is the body of GET /api/v1/matrix: every app × every cluster.
type Matrix struct {
	// Revision is the Git revision the desired versions were read at.
	Revision string `json:"revision"`
	// Apps are the column names: every app desired or reported on some cluster, sorted.
	Apps []string `json:"apps"`
	// Clusters are the rows, sorted by cluster name.
	Clusters []MatrixRow `json:"clusters"`
}

// MatrixRow is one cluster of the Matrix.
type MatrixRow struct {
	// Cluster is the cluster's name.
	Cluster string `json:"cluster"`
	// Labels are the cluster's labels.
	Labels map[string]string `json:"labels,omitempty"`
	// Apps holds a cell per app desired or reported on the cluster, keyed by app name;
	// an app missing from the map is neither.
	Apps map[string]MatrixCell `json:"apps"`
}

// MatrixCell is one app on one cluster.
type MatrixCell struct {
	// DesiredVersion is the version Git asks for; empty when not desired.
	DesiredVersion string `json:"desiredVersion,omitempty"`
	// Version is the version last reported; empty when never reported.
	Version string `json:"version,omitempty"`
	// Revision is the Git revision last reported.
	Revision string `json:"revision,omitempty"`
	// Phase is the last reported sync phase.
	Phase Phase `json:"phase,omitempty"`
	// Health is the last reported health.
	Health HealthStatus `json:"health,omitempty"`
	// Drifted is the number of drifted objects.
	Drifted int `json:"drifted,omitempty"`
	// LastSyncedAt is when the app was last synced successfully.
	LastSyncedAt time.Time `json:"lastSyncedAt,omitzero"`
}

// SetVersionRequest is the body of PUT /api/v1/clusters/{cluster}/apps/{app}: set the
// app's version on the cluster (adding the app if the cluster does not have it). An
// If-Match header with the current revision makes the write conditional.
type SetVersionRequest struct {
	// Version is the app version to run.
	Version string `json:"version"`
}

// ChangeResult answers a set (PUT /api/v1/clusters/{cluster}/apps/{app}), an unset
// (DELETE on the same path) or a rollback (POST .../rollback, no body: back to the
// version before the current one in Git history): the commit made, if any.
type ChangeResult struct {
	// Cluster is the cluster changed.
	Cluster string `json:"cluster"`
	// App is the app changed.
	App string `json:"app"`
	// Version is the app's version now; empty after an unset.
	Version string `json:"version,omitempty"`
	// PreviousVersion is the version before; empty when the app was not set.
	PreviousVersion string `json:"previousVersion,omitempty"`
	// Changed is false when the desired state already was what was asked: no commit.
	Changed bool `json:"changed"`
	// Message is the commit message (or the one it would have had).
	Message string `json:"message"`
	// Revision is the repository's revision after the change (the new commit when
	// Changed); use it as If-Match of the next write.
	Revision string `json:"revision"`
}

// HistoryEntry is one Git commit that changed a cluster's desired state.
type HistoryEntry struct {
	// Commit is the commit's hash.
	Commit string `json:"commit"`
	// Author is the author's name.
	Author string `json:"author"`
	// Email is the author's email.
	Email string `json:"email,omitempty"`
	// Time is the author time.
	Time time.Time `json:"time"`
	// Message is the commit message.
	Message string `json:"message"`
	// Before is, in an app's history, the app's version before the commit; empty when
	// the app was not listed.
	Before string `json:"before,omitempty"`
	// After is, in an app's history, the app's version after the commit; empty when the
	// app is not listed any more.
	After string `json:"after,omitempty"`
}

// HistoryList is the body of GET /api/v1/clusters/{cluster}/history?app=&limit=: the
// commits that changed the cluster's desired state (or, with app, that app on it),
// newest first.
type HistoryList struct {
	// Entries are the commits, newest first.
	Entries []HistoryEntry `json:"entries"`
}

// EventType classifies an Event.
type EventType string

// Event types.
const (
	// EventSync: the app synced a new revision or version, or its sync changed objects.
	EventSync EventType = "sync"
	// EventError: the app's sync failed, or failed differently.
	EventError EventType = "error"
	// EventHealth: the app's health changed.
	EventHealth EventType = "health"
	// EventDrift: the app's drift changed (new, changed, corrected or cleared).
	EventDrift EventType = "drift"
)

// Event is one entry of the hub's bounded event history, derived from reports.
type Event struct {
	// ID orders events; greater is newer.
	ID int64 `json:"id"`
	// Cluster is the cluster.
	Cluster string `json:"cluster"`
	// App is the app.
	App string `json:"app"`
	// Type classifies the event.
	Type EventType `json:"type"`
	// Time is when the hub received the report the event comes from.
	Time time.Time `json:"time"`
	// Revision is the app's reported revision at the event.
	Revision string `json:"revision,omitempty"`
	// Version is the app's reported version at the event.
	Version string `json:"version,omitempty"`
	// Phase is the app's phase at the event.
	Phase Phase `json:"phase,omitempty"`
	// Health is the app's health at the event.
	Health HealthStatus `json:"health,omitempty"`
	// Message describes the event, e.g. "synced 1.4.2: 2 configured, 1 pruned".
	Message string `json:"message"`
	// Drifted is the number of drifted objects after the event (drift events).
	Drifted int `json:"drifted,omitempty"`
	// DurationMs is the sync's total duration (sync events).
	DurationMs int64 `json:"durationMs,omitempty"`
}

// EventList is the body of GET /api/v1/events?cluster=&app=&limit=, newest first.
type EventList struct {
	// Events are the events, newest first.
	Events []Event `json:"events"`
}
