package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
	"github.com/outpost-gitops/outpost/hub/gitstore"
	"github.com/outpost-gitops/outpost/hub/store"
)

// apiError is an error with the response it gets.
type apiError struct {
	resp apiv1.ErrorResponse
	// retryAfter, when set, is sent as Retry-After (seconds).
	retryAfter string
}

func (e *apiError) Error() string { return e.resp.Error() }

// Unwrap returns the response, so that callers of the API's Go methods (the
// dashboard) can tell its code with errors.As.
func (e *apiError) Unwrap() error { return &e.resp }

func newError(code apiv1.ErrorCode, field, format string, args ...any) *apiError {
	return &apiError{resp: apiv1.ErrorResponse{Code: code, Field: field, Message: fmt.Sprintf(format, args...)}}
}

func errUnauthorized(msg string) *apiError { return newError(apiv1.CodeUnauthorized, "", "%s", msg) }
func errForbidden(msg string) *apiError    { return newError(apiv1.CodeForbidden, "", "%s", msg) }

// errNotFound says which cluster (or app) does not exist; field names the path
// parameter.
func errNotFound(field, format string, args ...any) *apiError {
	return newError(apiv1.CodeNotFound, field, format, args...)
}

// errInvalid is a 400 invalid naming field.
func errInvalid(field, format string, args ...any) *apiError {
	return newError(apiv1.CodeInvalid, field, format, args...)
}

// toResponse maps an error of a handler to its response; internal is true when the
// error is the hub's fault (its detail is logged, not sent).
func toResponse(err error) (resp apiv1.ErrorResponse, retryAfter string, internal bool) {
	var (
		ae  *apiError
		ve  *gitstore.ValidationError
		ce  *gitstore.ContentError
		nf  *gitstore.NotFoundError
		ex  *gitstore.ExistsError
		rce *store.ConflictError
		mbe *http.MaxBytesError
	)
	if r, ok := apiv1.ErrorResponseFor(err); ok {
		return r, "", false
	}
	switch {
	case errors.As(err, &ae):
		return ae.resp, ae.retryAfter, false
	case errors.Is(err, gitstore.ErrStaleRevision):
		return apiv1.ErrorResponse{Code: apiv1.CodeConflict, Field: "If-Match", Message: err.Error()}, "", false
	case errors.Is(err, gitstore.ErrPushConflict):
		return apiv1.ErrorResponse{Code: apiv1.CodeUnavailable, Message: err.Error()}, "5", false
	case errors.As(err, &ve):
		r := inputResponse(ve)
		return r, "", r.Code == apiv1.CodeInternal
	case errors.As(err, &ce):
		return contentResponse(ce.File, ce.Msg), "", false
	case errors.As(err, &nf):
		return apiv1.ErrorResponse{Code: apiv1.CodeNotFound, Field: notFoundField(nf.Kind), Message: nf.Error()}, "", false
	case errors.As(err, &ex):
		return apiv1.ErrorResponse{Code: apiv1.CodeConflict, Field: "name", Message: ex.Error()}, "", false
	case errors.As(err, &rce):
		return apiv1.ErrorResponse{Code: apiv1.CodeConflict, Field: "name", Message: rce.Error()}, "", false
	case errors.Is(err, store.ErrNotFound):
		return apiv1.ErrorResponse{Code: apiv1.CodeNotFound, Field: "cluster", Message: err.Error()}, "", false
	case errors.As(err, &mbe):
		return apiv1.ErrorResponse{Code: apiv1.CodeTooLarge, Message: fmt.Sprintf("body is larger than the limit of %d bytes", mbe.Limit)}, "", false
	case errors.Is(err, context.Canceled):
		// The caller left (or the hub is shutting down): nobody reads this answer.
		return apiv1.ErrorResponse{Code: apiv1.CodeUnavailable, Message: "the request was canceled"}, "", false
	case errors.Is(err, context.DeadlineExceeded):
		return apiv1.ErrorResponse{Code: apiv1.CodeUnavailable, Message: "the request took too long; retry later"}, "5", true
	}
	return apiv1.ErrorResponse{Code: apiv1.CodeInternal, Message: "internal error"}, "", true
}

// inputResponse maps an input the git store rejected. An input a request
// carries is a 400 invalid naming it (ifMatch as the If-Match header). The
// others are not the caller's to fix: the author is the identity of the admin
// token, the rest are Changed's revisions and Open's configuration. They keep
// the answer they had when this mapping matched strings: a 409 naming the input.
// An Input missing here is a 500, and TestErrorKindsMapToResponses fails.
func inputResponse(ve *gitstore.ValidationError) apiv1.ErrorResponse {
	switch ve.Field {
	case gitstore.InputCluster, gitstore.InputApp, gitstore.InputVersion, gitstore.InputLabels,
		gitstore.InputLimit, gitstore.InputRevision, gitstore.InputAction, gitstore.InputSelector,
		gitstore.InputClusters, gitstore.InputVarsFrom:
		return apiv1.ErrorResponse{Code: apiv1.CodeInvalid, Field: string(ve.Field), Message: ve.Msg}
	case gitstore.InputIfMatch:
		return apiv1.ErrorResponse{Code: apiv1.CodeInvalid, Field: "If-Match", Message: ve.Msg}
	case gitstore.InputAuthorName, gitstore.InputAuthorEmail, gitstore.InputOldRev, gitstore.InputNewRev,
		gitstore.InputDir, gitstore.InputURL, gitstore.InputBranch, gitstore.InputSeed,
		gitstore.InputCommitterName, gitstore.InputCommitterEmail:
		return contentResponse(string(ve.Field), ve.Msg)
	}
	return apiv1.ErrorResponse{Code: apiv1.CodeInternal, Message: "internal error"}
}

// contentResponse is the 409 of a repository whose content prevents the change,
// naming the file (or input) field.
func contentResponse(field, msg string) apiv1.ErrorResponse {
	return apiv1.ErrorResponse{Code: apiv1.CodeConflict, Field: field,
		Message: "the repository's content prevents the change: " + msg}
}

// notFoundField names the path parameter of what was not found: "" for a
// revision, which no path carries.
func notFoundField(k gitstore.Kind) string {
	switch k {
	case gitstore.KindCluster:
		return "cluster"
	case gitstore.KindApp, gitstore.KindPreviousVersion, gitstore.KindRolloutPolicy:
		return "app"
	}
	return ""
}

// writeError sends err as an ErrorResponse, logging the hub's own failures.
func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	resp, retryAfter, internal := toResponse(err)
	if internal {
		a.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	} else {
		a.log.Debug("request refused", "method", r.Method, "path", r.URL.Path, "code", resp.Code, "field", resp.Field, "message", resp.Message)
	}
	status := resp.Code.HTTPStatus()
	switch status {
	case http.StatusUnauthorized:
		if w.Header().Get("WWW-Authenticate") == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="outpost"`)
		}
	case http.StatusServiceUnavailable, http.StatusTooManyRequests:
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
	}
	writeJSON(w, status, resp)
}

// writeJSON sends v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		// Every value sent is a struct of the wire types, validated on the way in.
		http.Error(w, `{"code":"internal","message":"internal error"}`, http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(data, '\n'))
}
