package v1

import "time"

// Cluster is a registered cluster, as GET /api/v1/clusters and
// GET /api/v1/clusters/{cluster} return it. Its token is never returned after
// registration.
type Cluster struct {
	// Name is the cluster's name, a DNS-1123 label.
	Name string `json:"name"`
	// Labels are the labels given at registration.
	Labels map[string]string `json:"labels,omitempty"`
	// CreatedAt is when the cluster was registered.
	CreatedAt time.Time `json:"createdAt"`
	// LastReportAt is when the hub last received a report from the cluster's agent;
	// zero if never.
	LastReportAt time.Time `json:"lastReportAt,omitzero"`
	// Agent is the agent that sent the last report; empty if none did.
	Agent AgentInfo `json:"agent,omitzero"`
	// Summary counts the cluster's apps by phase and health.
	Summary ClusterSummary `json:"summary"`
}

// ClusterSummary counts a cluster's apps (as last reported, removed apps left out) by
// sync phase and health, and those with drift.
type ClusterSummary struct {
	// Apps is the number of apps reported.
	Apps int `json:"apps"`
	// Synced counts the apps in phase Synced.
	Synced int `json:"synced"`
	// Syncing counts the apps in phase Syncing or Pending.
	Syncing int `json:"syncing"`
	// Failed counts the apps in phase Failed or SourceUnavailable.
	Failed int `json:"failed"`
	// Healthy counts the apps whose health is Current.
	Healthy int `json:"healthy"`
	// Unhealthy counts the apps whose health is Failed or Timeout.
	Unhealthy int `json:"unhealthy"`
	// Drifted counts the apps with at least one drifted object.
	Drifted int `json:"drifted"`
}

// ClusterList is the body of GET /api/v1/clusters, sorted by name.
type ClusterList struct {
	// Clusters are the registered clusters.
	Clusters []Cluster `json:"clusters"`
}

// RegisterClusterRequest is the body of POST /api/v1/clusters.
type RegisterClusterRequest struct {
	// Name is the new cluster's name, a DNS-1123 label.
	Name string `json:"name"`
	// Labels are Kubernetes-style labels describing the cluster.
	Labels map[string]string `json:"labels,omitempty"`
}

// RegisterClusterResponse answers POST /api/v1/clusters (201). Token is shown this
// once: the hub keeps only its SHA-256 hash.
type RegisterClusterResponse struct {
	// Cluster is the registered cluster.
	Cluster Cluster `json:"cluster"`
	// Token is the agent's bearer token for this cluster.
	Token string `json:"token"`
}

// MaxTokenGrace bounds RotateTokenRequest.GraceSeconds: a day.
const MaxTokenGrace = 24 * 60 * 60

// RotateTokenRequest is the (optional) body of POST /api/v1/clusters/{cluster}/token.
type RotateTokenRequest struct {
	// GraceSeconds keeps the previous token valid this long (0 to MaxTokenGrace;
	// default 0: refused at once), so the agent can be given the new one first.
	GraceSeconds int64 `json:"graceSeconds,omitempty"`
}

// RotateTokenResponse answers POST /api/v1/clusters/{cluster}/token (200). Token is
// shown this once. Rotation changes no file in Git.
type RotateTokenResponse struct {
	// Cluster is the cluster's name.
	Cluster string `json:"cluster"`
	// Token is the agent's new bearer token.
	Token string `json:"token"`
	// PreviousValidUntil is when the previous token stops working; absent when it
	// stopped at once.
	PreviousValidUntil *time.Time `json:"previousValidUntil,omitempty"`
}

// ClusterStatus is the body of GET /api/v1/clusters/{cluster}/status.
type ClusterStatus struct {
	// Cluster is the cluster, with its summary.
	Cluster Cluster `json:"cluster"`
	// Revision is the Git revision the desired versions were read at.
	Revision string `json:"revision,omitempty"`
	// Apps are the cluster's apps, desired or reported, sorted by name.
	Apps []AppState `json:"apps"`
}

// AppState is what the hub knows of one app on one cluster: its desired version
// from Git and its last reported status and drift.
type AppState struct {
	// AppStatus is the last reported status (only App is set if none was reported).
	AppStatus
	// DesiredVersion is the version Git asks for; empty when the app is no longer
	// desired on the cluster.
	DesiredVersion string `json:"desiredVersion,omitempty"`
	// Drift is the app's current drift, one entry per drifted object.
	Drift []Drift `json:"drift,omitempty"`
	// ReceivedAt is when the hub received the status; zero if never.
	ReceivedAt time.Time `json:"receivedAt,omitzero"`
}
