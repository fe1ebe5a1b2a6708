// Package hubapi is a typed Go client of the Outpost hub's REST API (/api/v1), as
// docs/api.md describes it: one method per route, taking and returning the wire types
// of api/v1. The CLI verbs use it, and so can tests, the e2e suite and scripts written
// in Go.
//
// # Errors
//
// An answer with a 4xx/5xx status is returned as an *APIError holding the status and
// the hub's ErrorResponse (code, message, field); a hub that cannot be reached (refused
// connection, DNS failure, TLS handshake, timeout) as an *UnreachableError. Callers
// tell them apart with errors.As, e.g. to map them to exit codes, or classify them with
// IsRetryable (unreachable, 429, 5xx: the same call may succeed later), IsUnauthorized
// (401, 403: it may succeed with a rotated token) and IsRejected (any other 4xx: it
// cannot succeed as it is). The token is never part of an error or a log line.
//
// The token is given to New, or read for every call from Options.Token (for rotation);
// Options.Header adds headers such as the trace context.
//
// # Retries
//
// Requests go through go-retryablehttp. Reads and idempotent writes (GET, PUT, DELETE)
// are retried, with exponential backoff, on network errors and on 429, 502, 503 and 504.
// Writes that are not idempotent (register, rollback, report) are retried only when the
// request surely did not take effect: the connection could not be made, or the hub
// answered 429 or 503 (a failed request changes nothing at the hub). A 500 is never
// retried. Every call is bounded by Options.Timeout, retries included.
package hubapi
