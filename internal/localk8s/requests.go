package localk8s

import (
	"net/http"
	"sync"
)

// Requests records the requests a client sends to a cluster, so tests can assert
// what an operation cost: writes (POST, PUT, PATCH, DELETE) and dry-runs by method and
// path, reads by count. Use it with rest.Config.Wrap(r.Wrap).
type Requests struct {
	// Ignore, when set, leaves matching requests uncounted (e.g. leader-election
	// renewals, which are not sync work).
	Ignore func(*http.Request) bool

	mu      sync.Mutex
	writes  []string
	dryRuns []string
	reads   int
}

// Wrap counts every request going through rt.
func (r *Requests) Wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		if r.Ignore == nil || !r.Ignore(req) {
			r.record(req)
		}
		return rt.RoundTrip(req)
	})
}

func (r *Requests) record(req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	line := req.Method + " " + req.URL.Path
	switch {
	case req.URL.Query().Get("dryRun") != "":
		r.dryRuns = append(r.dryRuns, line)
	case req.Method == http.MethodGet || req.Method == http.MethodHead:
		r.reads++
	default:
		r.writes = append(r.writes, line)
	}
}

// Reset forgets what was recorded.
func (r *Requests) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writes, r.dryRuns, r.reads = nil, nil, 0
}

// Counts returns the number of writes, dry-runs and reads recorded.
func (r *Requests) Counts() (writes, dryRuns, reads int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.writes), len(r.dryRuns), r.reads
}

// Writes returns the recorded writes as "METHOD path" lines.
func (r *Requests) Writes() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.writes...)
}

// DryRuns returns the recorded dry-runs as "METHOD path" lines.
func (r *Requests) DryRuns() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.dryRuns...)
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
