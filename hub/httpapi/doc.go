// Package httpapi is the hub's HTTP surface: the REST API under /api/v1 (described in
// docs/api.md, with an OpenAPI document in docs/openapi.yaml), the agents' report and
// long-poll endpoints, Git push webhooks, the embedded repository for agents
// (internal/gitserve, mounted under /git/), /metrics, /healthz, /readyz and the dashboard
// at /.
//
// # Model
//
// API is one http.Handler built from its Config: the status store (hub/store), the
// desired state in Git (hub/gitstore), the long-poll notifier (hub/notify) and the
// admin tokens. Every route is declared once in a table (Routes) with the kind of
// caller it admits; the same table registers the routes and is checked against the
// OpenAPI document by a test.
//
// Callers:
//
//   - Admins (people, CI, the CLI) send a bearer token from the admin tokens file
//     (AdminTokens: "name:token" per line). The name is their identity: the author of
//     every commit their requests make.
//   - Agents send their cluster's token (random, shown once at registration, stored by
//     the store only as its SHA-256 hash). An agent token may report for and long-poll
//     its own cluster, and read the repository at /git/<cluster>.git; anything else is
//     403.
//   - Webhooks carry no bearer token: the body's HMAC (GitHub X-Hub-Signature-256,
//     Gitea X-Gitea-Signature) or the shared secret (GitLab X-Gitlab-Token) is checked
//     against the configured secret in constant time.
//
// No token or an unknown one is 401; a known token on a route it may not use is 403.
//
// # Requests
//
// Path segments and query parameters are validated before anything is read or
// written (names are DNS-1123 labels, revisions full hashes): a name holding '/', '..'
// or a control character is a 400 naming the parameter, never a path. An API path
// that is not clean (a '.' or '..' segment, an empty segment) is refused the same way
// rather than redirected. Bodies are JSON documents of at most apiv1.MaxReportBytes
// (reports) or apiv1.MaxRequestBytes (everything else), decoded and validated by
// apiv1.Decode. Every error is an apiv1.ErrorResponse {code, message, field} with the
// code's status; a request that fails commits nothing and stores nothing.
//
// # Writes and notifications
//
// Set, unset, rollback, register and delete each make at most one Git commit through
// hub/gitstore, authored by the admin caller, guarded by an optional If-Match
// revision (a stale one is 409). The notifier follows the Git head through a
// Publisher, hooked into gitstore's HeadChanged: after every move of the head (a
// commit of this hub, or a fetch after a webhook) it publishes the new head to the
// clusters whose desired state changed (gitstore.Changed), in head order, so only
// their long-polls answer.
//
// # Costs
//
// The cluster list and the matrix read per-cluster and per-app summaries from a cache
// refreshed at most once per Config.SummaryTTL (the store's summary queries take
// hundreds of milliseconds at 10 000 clusters). A long-poll holds no goroutine beyond
// its request's and extends its own write deadline past the notifier's hold time;
// every other request runs under Config.RequestTimeout.
package httpapi
