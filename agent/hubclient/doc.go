// Package hubclient is the agent's side of the hub protocol (api/v1): a coalescing
// report queue and the desired-revision long-poll.
//
// The queue keeps, per app, only the newest state (status plus the app's complete
// current drift), ordered by api/v1 Generation. A sender delivers everything pending in
// batches over go-retryablehttp with the cluster's bearer token; while the hub is down
// the queue keeps coalescing, so memory is bounded by the number of apps and the hub
// receives the latest state of every app when it returns - nothing stale, nothing
// lost. An entry leaves the queue only once the hub accepted exactly that state.
//
// The token is read from its file for every request, so a rotated Secret is used
// without a restart. Trace context is propagated on every request.
package hubclient
