// Package v1 holds the wire types shared by the Outpost agent, hub and CLI: the JSON
// documents of the hub's /api/v1 endpoints. docs/api.md describes every endpoint with
// examples; this package is its reference.
//
// # Model
//
// The agent of a cluster sends a StatusReport (POST /api/v1/agent/report): the state of
// some or all of its apps (AppStatus: revision, version, sync phase, health, object
// counts, a bounded change-set summary, the last error with its file/object/field, the
// sync's step durations) and, for each app it reports, that app's complete current
// drift (Drift: the object, and per field the desired and live values, the field
// manager that changed it and when). It learns of new desired state by a long-poll
// (GET /api/v1/agent/desired?cluster=&since=) answered with a DesiredRevision.
//
// People, CI and the CLI use the other endpoints: clusters (Cluster, ClusterList,
// RegisterClusterRequest/Response), the apps × clusters Matrix, per-cluster
// ClusterStatus, set/unset/rollback of an app version (SetVersionRequest,
// ChangeResult), Git history (HistoryList) and the hub's event
// history (EventList). Every error is an ErrorResponse {code, message, field}.
//
// # Ordering of reports
//
// Reports may arrive out of order (retries, a coalescing queue, two agents during a
// leader failover). Each AppStatus carries a Generation (Epoch, Sequence) that the hub
// compares per cluster/app: a report whose generation is not greater than the stored
// one is ignored, so an older report never overwrites a newer one. See Generation for
// how the agent must assign it.
//
// # Secrets
//
// Secret values never leave the cluster. The agent masks the values of v1 Secret data
// and stringData in drift fields (Redacted, with the value "(redacted)") and sends no
// object content in change sets (only action and object reference). The hub enforces the
// drift rule: StatusReport.Validate rejects a drift field of a v1 Secret under data or
// stringData whose values are not masked, so a clear-text secret value cannot be stored.
//
// # Validation and compatibility
//
// Every request type has Validate() error; a failure is a *FieldError naming the JSON
// path of the offending field ("apps[2].version: ..."), which the hub turns into an
// ErrorResponse with code "invalid" and that field. Names of clusters and apps are
// DNS-1123 labels; text is valid UTF-8, bounded (see the Max* constants) and free of
// control characters (free-form messages may hold newlines and tabs); times are set and
// sane. Decode reads one JSON document with a size limit and validates it.
//
// Within v1, changes are additive: receivers ignore unknown fields, and a new field is
// optional.
package v1
