// Package hubtest is a stand-in for the hub's agent endpoints, for tests of the agent
// and of its install: reports are decoded and validated with the real wire types
// (api/v1) and kept per app by generation, and the desired-revision long-poll answers
// when the test publishes a revision. The stub can be stopped and started again on
// the same address to play a hub outage.
package hubtest

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
)

// Stub is the hub's agent endpoints.
type Stub struct {
	// URL is the stub's base URL.
	URL string
	// Token is the agent token it accepts (as a bearer token).
	Token string

	t       testing.TB
	addr    string
	mu      sync.Mutex
	srv     *http.Server
	rev     string
	changed chan struct{} // closed and replaced on Publish
	latest  map[string]apiv1.AppStatus
	drift   map[string][]apiv1.Drift
}

// New starts a stub accepting token; it stops when the test ends.
func New(t testing.TB, token string) *Stub {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &Stub{URL: "http://" + l.Addr().String(), Token: token, t: t, addr: l.Addr().String(),
		changed: make(chan struct{}), latest: map[string]apiv1.AppStatus{}, drift: map[string][]apiv1.Drift{}}
	h.serve(l)
	t.Cleanup(h.Stop)
	return h
}

func (h *Stub) serve(l net.Listener) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+apiv1.ReportPath, h.report)
	mux.HandleFunc("GET "+apiv1.DesiredPath, h.desired)
	srv := &http.Server{Handler: mux}
	h.mu.Lock()
	h.srv = srv
	h.mu.Unlock()
	go func() { _ = srv.Serve(l) }()
}

// Stop takes the stub down: connections are refused until Start.
func (h *Stub) Stop() {
	h.mu.Lock()
	srv := h.srv
	h.srv = nil
	h.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// Start brings the stub back on the same address.
func (h *Stub) Start() {
	l, err := net.Listen("tcp", h.addr)
	if err != nil {
		h.t.Fatal(err)
	}
	h.serve(l)
}

func (h *Stub) report(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+h.Token {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	var rep apiv1.StatusReport
	if err := apiv1.Decode(r.Body, apiv1.MaxReportBytes, &rep); err != nil {
		h.t.Errorf("hub stub: invalid report from the agent: %v", err)
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(apiv1.ErrorResponse{Code: apiv1.CodeBadRequest, Message: err.Error()})
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, a := range rep.Apps {
		if old, ok := h.latest[a.App]; ok && a.Generation.Compare(old.Generation) <= 0 {
			continue
		}
		h.latest[a.App] = a
		h.drift[a.App] = nil
		for _, d := range rep.Drift {
			if d.App == a.App {
				h.drift[a.App] = append(h.drift[a.App], d)
			}
		}
	}
	_ = json.NewEncoder(w).Encode(apiv1.ReportResponse{})
}

func (h *Stub) desired(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+h.Token {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	h.mu.Lock()
	rev, ch := h.rev, h.changed
	h.mu.Unlock()
	since := r.URL.Query().Get("since")
	if since != rev {
		_ = json.NewEncoder(w).Encode(apiv1.DesiredRevision{Revision: rev, Changed: true})
		return
	}
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
	case <-r.Context().Done():
		return
	}
	h.mu.Lock()
	rev = h.rev
	h.mu.Unlock()
	_ = json.NewEncoder(w).Encode(apiv1.DesiredRevision{Revision: rev, Changed: rev != since})
}

// Publish says the desired state changed at rev, answering held long-polls.
func (h *Stub) Publish(rev string) {
	h.mu.Lock()
	h.rev = rev
	close(h.changed)
	h.changed = make(chan struct{})
	h.mu.Unlock()
}

// Status returns the newest status of app and its drift.
func (h *Stub) Status(app string) (apiv1.AppStatus, []apiv1.Drift, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	st, ok := h.latest[app]
	return st, h.drift[app], ok
}

// Wait waits until app's newest status satisfies cond and returns it; it fails the
// test with the last status after timeout.
func (h *Stub) Wait(t testing.TB, app string, timeout time.Duration, cond func(apiv1.AppStatus, []apiv1.Drift) bool) apiv1.AppStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		st, drift, ok := h.Status(app)
		if ok && cond(st, drift) {
			return st
		}
		select {
		case <-ctx.Done():
			t.Fatalf("hub: status of %s not reached within %s; last: %+v drift %+v", app, timeout, st, drift)
		case <-time.After(5 * time.Millisecond):
		}
	}
}
