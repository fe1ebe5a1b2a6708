package httpapi

import (
	"mime"
	"net/http"
	"strconv"
	"strings"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
)

// pathName returns the path parameter param, checked as a cluster or app name: a
// DNS-1123 label, so never a path.
func pathName(r *http.Request, param string) (string, error) {
	v := r.PathValue(param)
	if err := apiv1.ValidateName(param, v); err != nil {
		return "", err
	}
	return v, nil
}

// queryName returns an optional name query parameter ("" when absent).
func queryName(r *http.Request, param string) (string, error) {
	v, err := singleQuery(r, param)
	if err != nil || v == "" {
		return "", err
	}
	if err := apiv1.ValidateName(param, v); err != nil {
		return "", err
	}
	return v, nil
}

// queryBool returns an optional boolean query parameter (true or false), false
// when absent.
func queryBool(r *http.Request, param string) (bool, error) {
	v, err := singleQuery(r, param)
	switch {
	case err != nil:
		return false, err
	case v == "" || v == "false":
		return false, nil
	case v == "true":
		return true, nil
	}
	return false, errInvalid(param, "must be true or false, got %q", v)
}

// singleQuery returns a query parameter given at most once.
func singleQuery(r *http.Request, param string) (string, error) {
	vs := r.URL.Query()[param]
	switch len(vs) {
	case 0:
		return "", nil
	case 1:
		return vs[0], nil
	}
	return "", newError(apiv1.CodeBadRequest, param, "is given %d times", len(vs))
}

// queryInt returns an optional integer query parameter in [min, max], def when
// absent.
func queryInt(r *http.Request, param string, def, min, max int64) (int64, error) {
	v, err := singleQuery(r, param)
	if err != nil || v == "" {
		return def, err
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, newError(apiv1.CodeBadRequest, param, "%s is not an integer", strconv.Quote(truncate(v)))
	}
	if n < min || n > max {
		return 0, errInvalid(param, "%d is not between %d and %d", n, min, max)
	}
	return n, nil
}

// ifMatch returns the revision of an If-Match header: "<revision>" (quoted, as an
// ETag) or bare; empty when absent or "*" (any revision).
func ifMatch(r *http.Request) (string, error) {
	vs := r.Header.Values("If-Match")
	if len(vs) == 0 {
		return "", nil
	}
	if len(vs) > 1 || strings.Contains(vs[0], ",") {
		return "", errInvalid("If-Match", "must name one revision")
	}
	v := strings.TrimSpace(vs[0])
	if v == "*" {
		return "", nil
	}
	if strings.HasPrefix(v, "W/") {
		return "", errInvalid("If-Match", "a weak ETag cannot guard a write: send the revision")
	}
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	if v == "" {
		return "", errInvalid("If-Match", "must not be empty")
	}
	if err := apiv1.ValidateRevision("If-Match", v); err != nil {
		return "", err
	}
	return v, nil
}

// decodeBody checks the content type and decodes a JSON body of at most limit bytes
// into v, validating it.
func decodeBody(r *http.Request, limit int64, v apiv1.Validator) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return newError(apiv1.CodeUnsupportedMediaType, "Content-Type", "%s is not application/json", strconv.Quote(truncate(ct)))
		}
	}
	if r.ContentLength > limit {
		return &apiv1.TooLargeError{Limit: limit}
	}
	return apiv1.Decode(r.Body, limit, v)
}

// setETag sends the revision as the response's ETag.
func setETag(w http.ResponseWriter, rev string) {
	if rev != "" {
		w.Header().Set("ETag", `"`+rev+`"`)
	}
}

// truncate shortens s to 80 bytes for a message.
func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
