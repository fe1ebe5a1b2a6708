package agent

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

// hubStub is the hub's agent endpoints: reports are decoded and validated with the real
// wire types, and the desired-revision long-poll answers when publish is called.
type hubStub struct {
	t    *testing.T
	addr string

	mu       sync.Mutex
	srv      *http.Server
	rev      string
	changed  chan struct{} // closed and replaced on publish
	latest   map[string]apiv1.AppStatus
	drift    map[string][]apiv1.Drift
	seen     map[string]time.Time // when each app's newest status arrived
	longPoll bool
}

func newHubStub(t *testing.T) *hubStub {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &hubStub{t: t, addr: l.Addr().String(), changed: make(chan struct{}), latest: map[string]apiv1.AppStatus{},
		drift: map[string][]apiv1.Drift{}, seen: map[string]time.Time{}, longPoll: true}
	h.serve(l)
	t.Cleanup(h.stop)
	return h
}

func (h *hubStub) url() string { return "http://" + h.addr }

func (h *hubStub) serve(l net.Listener) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+apiv1.ReportPath, h.report)
	mux.HandleFunc("GET "+apiv1.DesiredPath, h.desired)
	srv := &http.Server{Handler: mux}
	h.mu.Lock()
	h.srv = srv
	h.mu.Unlock()
	go func() { _ = srv.Serve(l) }()
}

// stop takes the hub down (connections refused).
func (h *hubStub) stop() {
	h.mu.Lock()
	srv := h.srv
	h.srv = nil
	h.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// start brings the hub back on the same address.
func (h *hubStub) start() {
	l, err := net.Listen("tcp", h.addr)
	if err != nil {
		h.t.Fatal(err)
	}
	h.serve(l)
}

func (h *hubStub) report(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer agent-token" {
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
		h.seen[a.App] = time.Now()
		h.drift[a.App] = nil
		for _, d := range rep.Drift {
			if d.App == a.App {
				h.drift[a.App] = append(h.drift[a.App], d)
			}
		}
	}
}

func (h *hubStub) desired(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	rev, ch, enabled := h.rev, h.changed, h.longPoll
	h.mu.Unlock()
	since := r.URL.Query().Get("since")
	if !enabled {
		http.Error(w, "long-poll disabled", http.StatusServiceUnavailable)
		return
	}
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

// publish says the desired state changed at rev, answering held long-polls.
func (h *hubStub) publish(rev string) {
	h.mu.Lock()
	h.rev = rev
	close(h.changed)
	h.changed = make(chan struct{})
	h.mu.Unlock()
}

// status returns the newest status of app and its drift.
func (h *hubStub) status(app string) (apiv1.AppStatus, []apiv1.Drift, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	st, ok := h.latest[app]
	return st, h.drift[app], ok
}

// waitStatus waits until app's newest status satisfies cond.
func (h *hubStub) waitStatus(t *testing.T, app string, timeout time.Duration, cond func(apiv1.AppStatus, []apiv1.Drift) bool) apiv1.AppStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	for {
		st, drift, ok := h.status(app)
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
