package v1

import "net/http"

// ErrorCode classifies an API error; each code has one HTTP status.
type ErrorCode string

// Error codes.
const (
	// CodeBadRequest: the body is not valid JSON, has trailing data, or a query
	// parameter is malformed (400).
	CodeBadRequest ErrorCode = "bad_request"
	// CodeInvalid: a field's value is invalid; Field names it (400).
	CodeInvalid ErrorCode = "invalid"
	// CodeUnauthorized: no token, or an unknown one (401).
	CodeUnauthorized ErrorCode = "unauthorized"
	// CodeForbidden: the token may not do this, e.g. an agent token for another cluster
	// or an admin endpoint (403).
	CodeForbidden ErrorCode = "forbidden"
	// CodeNotFound: no such cluster, app or route (404).
	CodeNotFound ErrorCode = "not_found"
	// CodeMethodNotAllowed: the route exists for other methods (405).
	CodeMethodNotAllowed ErrorCode = "method_not_allowed"
	// CodeConflict: the resource exists already (registering a cluster twice), or
	// If-Match named a revision that is no longer the current one (409).
	CodeConflict ErrorCode = "conflict"
	// CodeTooLarge: the body is over the endpoint's size limit (413).
	CodeTooLarge ErrorCode = "too_large"
	// CodeUnsupportedMediaType: the body is not application/json (415).
	CodeUnsupportedMediaType ErrorCode = "unsupported_media_type"
	// CodeInternal: the hub failed (500).
	CodeInternal ErrorCode = "internal"
	// CodeTooManyRequests: the caller holds too many long-polls or event streams, or
	// its address failed authentication too often, or too many webhooks are being
	// handled; retry after Retry-After (429).
	CodeTooManyRequests ErrorCode = "too_many_requests"
	// CodeUnavailable: the hub cannot serve now (Git remote or store down, shutting
	// down); retry later (503).
	CodeUnavailable ErrorCode = "unavailable"
)

// HTTPStatus returns the HTTP status of the code; 500 for an unknown code.
func (c ErrorCode) HTTPStatus() int {
	switch c {
	case CodeBadRequest, CodeInvalid:
		return http.StatusBadRequest
	case CodeUnauthorized:
		return http.StatusUnauthorized
	case CodeForbidden:
		return http.StatusForbidden
	case CodeNotFound:
		return http.StatusNotFound
	case CodeMethodNotAllowed:
		return http.StatusMethodNotAllowed
	case CodeConflict:
		return http.StatusConflict
	case CodeTooLarge:
		return http.StatusRequestEntityTooLarge
	case CodeUnsupportedMediaType:
		return http.StatusUnsupportedMediaType
	case CodeTooManyRequests:
		return http.StatusTooManyRequests
	case CodeUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// ErrorResponse is the body of every API error.
type ErrorResponse struct {
	// Code classifies the error.
	Code ErrorCode `json:"code"`
	// Message says what is wrong, for people.
	Message string `json:"message"`
	// Field is the JSON path of the offending field (e.g. apps[2].version) or the
	// name of the offending query parameter, header or path segment; empty otherwise.
	Field string `json:"field,omitempty"`
}

// Error formats the response as "code: field: message", so a client can return it as
// an error.
func (e *ErrorResponse) Error() string {
	if e.Field != "" {
		return string(e.Code) + ": " + e.Field + ": " + e.Message
	}
	return string(e.Code) + ": " + e.Message
}
