// Package hubclient is the agent's side of the hub protocol (api/v1): a coalescing
// report queue and the desired-revision long-poll.
//
// The queue keeps, per app, only the newest state (status plus the app's complete
// current drift), ordered by api/v1 Generation. A sender delivers everything pending in
// batches with the cluster's bearer token; while the hub is down the queue keeps
// coalescing, so memory is bounded by the number of apps and the hub receives the
// latest state of every app when it returns - nothing stale, nothing lost. An entry
// leaves the queue only once the hub accepted exactly that state, or refused it as
// invalid (hubapi.IsRejected): a 401/403 keeps it for a rotated token, and an
// unreachable hub, 429 or 5xx for the next attempt, after a backoff.
//
// Every request goes through internal/hubapi (its retry policy, errors and limits):
// this package adds only the queue. The token is read from its file for every
// request, so a rotated Secret is used without a restart. Trace context is propagated
// on every request.
package hubclient
