package hubapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
)

// APIError is an answer of the hub with an error status: the status and the hub's
// ErrorResponse. For an answer that did not carry an ErrorResponse (e.g. from a proxy)
// Code is empty and Message holds the start of the body.
type APIError struct {
	// Status is the HTTP status, e.g. 409.
	Status int
	// Code classifies the error (apiv1.CodeConflict, ...); empty when the answer did not
	// hold an ErrorResponse.
	Code apiv1.ErrorCode
	// Message says what is wrong, for people.
	Message string
	// Field is the JSON path of the offending field, or the query parameter, header or
	// path segment at fault; empty otherwise.
	Field string
}

// Error formats the error on one line: "code: field: message (HTTP status)".
func (e *APIError) Error() string {
	var b strings.Builder
	if e.Code != "" {
		b.WriteString(string(e.Code))
	} else {
		b.WriteString(strings.ToLower(http.StatusText(e.Status)))
	}
	if e.Field != "" {
		b.WriteString(": ")
		b.WriteString(e.Field)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	fmt.Fprintf(&b, " (HTTP %d)", e.Status)
	return oneLine(b.String())
}

// NotFound tells whether the hub answered 404: no such cluster, app or route.
func (e *APIError) NotFound() bool { return e.Status == http.StatusNotFound }

// Conflict tells whether the hub answered 409: a duplicate, or a stale If-Match.
func (e *APIError) Conflict() bool { return e.Status == http.StatusConflict }

// Unauthorized tells whether the hub refused the token: 401 or 403.
func (e *APIError) Unauthorized() bool {
	return e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden
}

// Unavailable tells whether the hub or a proxy in front of it cannot serve now: 502,
// 503 or 504. Retrying later may succeed.
func (e *APIError) Unavailable() bool {
	return e.Status == http.StatusBadGateway || e.Status == http.StatusServiceUnavailable ||
		e.Status == http.StatusGatewayTimeout
}

// UnreachableError is a call that got no answer from the hub: the connection failed,
// the name did not resolve, TLS failed or the call timed out.
type UnreachableError struct {
	// URL is the hub's base URL.
	URL string
	// Err is the cause.
	Err error
}

// Error implements error.
func (e *UnreachableError) Error() string {
	return oneLine(fmt.Sprintf("hub %s unreachable: %v", e.URL, e.Err))
}

// Unwrap returns the cause.
func (e *UnreachableError) Unwrap() error { return e.Err }

// IsUnauthorized tells whether err is the hub refusing the token: an *APIError with
// status 401 or 403. The same call may succeed once the token is rotated.
func IsUnauthorized(err error) bool {
	var e *APIError
	return errors.As(err, &e) && e.Unauthorized()
}

// IsRetryable tells whether the same call may succeed later, unchanged: the hub could
// not be reached (*UnreachableError), or it answered 429 (too many requests) or a 5xx.
func IsRetryable(err error) bool {
	var un *UnreachableError
	if errors.As(err, &un) {
		return true
	}
	var e *APIError
	return errors.As(err, &e) && (e.Status == http.StatusTooManyRequests || e.Status >= 500)
}

// IsRejected tells whether the hub refused the request itself: an *APIError with a
// status that is neither retryable (IsRetryable) nor an auth failure (IsUnauthorized),
// e.g. 400 invalid or 409 conflict. Sending it again unchanged cannot succeed.
func IsRejected(err error) bool {
	var e *APIError
	return errors.As(err, &e) && !IsRetryable(err) && !IsUnauthorized(err)
}

// decodeError turns an error answer into an *APIError.
func decodeError(resp *http.Response) *APIError {
	body := readBody(resp, maxErrorBody)
	e := &APIError{Status: resp.StatusCode}
	var er apiv1.ErrorResponse
	if json.Unmarshal(body, &er) == nil && er.Code != "" {
		e.Code, e.Message, e.Field = er.Code, er.Message, er.Field
		return e
	}
	msg := strings.TrimSpace(string(body))
	if len(msg) > 200 {
		msg = msg[:200] + "…"
	}
	e.Message = msg
	return e
}

// oneLine replaces control characters (newlines included) by spaces, so an error
// prints on one line and cannot move a terminal's cursor.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}
