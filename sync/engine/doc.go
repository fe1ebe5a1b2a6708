// Package engine makes one cluster match the GitOps repository at a revision: it loads
// the cluster's desired state (sync/repo), and for each app, in dependsOn order and
// with bounded concurrency, renders it (sync/render), applies and prunes it
// (sync/apply) and assesses its health (sync/health). Apps that left the cluster's
// apps.yaml are pruned. An app whose app.yaml namespace does not exist gets it created,
// as one of its own objects (createNamespace, see withAppNamespace); a namespace the app
// did not create is never adopted or pruned.
//
// The engine is free of hub and agent concerns: it takes a directory holding the
// repository at a revision and returns typed results per app (ClusterResult,
// AppResult), ready to be reported. It never prunes on a failed load or render, and one
// failing app never blocks apps that do not depend on it; an app whose dependency is
// not healthy waits (Phase Blocked) without being touched.
package engine
