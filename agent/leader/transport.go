package leader

import (
	"fmt"
	"net/http"
)

// Transport returns a RoundTripper that checks fence just before each mutating
// request (POST, PUT, PATCH, DELETE) is handed to next, which puts it on the wire, and
// refuses the request without sending it when the fence fails. Reads pass unchecked.
//
// This is the last moment a client can check: a check earlier in the write path (per
// stage, per object) leaves the time to build and encode the request, during which a
// replica may be paused beyond its Lease and then send the request on resuming. What
// remains is the time between this check and the request's bytes reaching the socket.
//
// The Lease itself must be written through a client without this Transport: the
// renewal is what restores the fence.
func Transport(next http.RoundTripper, fence func() error) http.RoundTripper {
	return &fencedTransport{next: next, fence: fence}
}

type fencedTransport struct {
	next  http.RoundTripper
	fence func() error
}

func (t *fencedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if mutating(r.Method) {
		if err := t.fence(); err != nil {
			if r.Body != nil {
				_ = r.Body.Close() // a RoundTripper closes the body, even on error
			}
			return nil, fmt.Errorf("%s %s not sent: %w", r.Method, r.URL.Path, err)
		}
	}
	return t.next.RoundTrip(r)
}

// mutating tells whether an HTTP method may change an object.
func mutating(method string) bool {
	switch method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return true
	}
	return false
}
