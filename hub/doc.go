// Package hub is the root of the Outpost hub: where people see and change which version
// of which app runs on which cluster, and where agents report. Its subpackages do the
// work; Run (what `outpost hub` calls with a Config) wires them together: it opens the
// status store and the repository in Config.DataDir, keeps the long-poll notifier at the
// Git head (httpapi.Publisher on gitstore's HeadChanged), and serves the API, the
// agents' Git, the dashboard, /metrics and the health endpoints on one listener with
// timeouts on every request, fetching a remote repository periodically as the safety net
// of webhooks.
//
// With the store on PostgreSQL (Config.Store or StoreFile) several replicas run at once
// (docs/ha.md): each publishes its Git head moves on the store's NOTIFY bus and fetches
// when another replica's head is not its own (headFanout), one at a time polls the
// remote (the ha.Singleton lease GitPollLease), and a replica on the embedded repository
// holds EmbeddedRepoLease so that a second one refuses to start. Every hub locks its
// data directory (LockFile).
//
//	gitstore  desired state in Git: read clusters and apps at a revision, write changes
//	          as commits with an author (set, unset, rollback, add/remove cluster),
//	          push with retry on conflict, history, and which clusters a commit changed
//	gitserve  the embedded repository served to agents over smart HTTP, read-only
//	store     soft state: cluster registry and token hashes, latest status and drift of
//	          every app on every cluster, bounded event history (SQLite by default,
//	          or PostgreSQL shared by replicas)
//	ha        replicas on PostgreSQL: leases (advisory locks) and the Git head bus
//	notify    the long-poll notifier: agents wait for their cluster's desired revision
//	          to change; the hub publishes after a commit or a webhook
//	httpapi   the REST API under /api/v1 (wire types in api/v1, described in
//	          docs/api.md and docs/openapi.yaml), auth, webhooks, the agents' Git,
//	          /metrics, /healthz, /readyz, the dashboard's mount
//	web       the dashboard, server-rendered and embedded
//
// Git is the only source of desired state: losing the store loses reports and tokens,
// never desired state. The hub never imports the agent; both speak api/v1.
package hub
