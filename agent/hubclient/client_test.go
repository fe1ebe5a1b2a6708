package hubclient

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
	"github.com/outpost-gitops/outpost/internal/hubapi"
	"github.com/outpost-gitops/outpost/internal/testenv"
)

// fakeHub is a hub's report endpoint: it checks the token, decodes and validates reports
// with the real wire types, and keeps the newest status per app.
type fakeHub struct {
	mu       sync.Mutex
	status   int // answer for reports; 0 means 200
	latest   map[string]apiv1.AppStatus
	drift    map[string][]apiv1.Drift
	received []apiv1.Generation
	srv      *http.Server
}

func (h *fakeHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer tok-dev" {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if r.URL.Path == apiv1.DesiredPath {
		_ = json.NewEncoder(w).Encode(apiv1.DesiredRevision{Revision: "since=" + r.URL.Query().Get("since"), Changed: true})
		return
	}
	var rep apiv1.StatusReport
	if err := apiv1.Decode(r.Body, apiv1.MaxReportBytes, &rep); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(apiv1.ErrorResponse{Code: apiv1.CodeBadRequest, Message: err.Error()})
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.status != 0 {
		w.WriteHeader(h.status)
		return
	}
	for _, a := range rep.Apps {
		h.received = append(h.received, a.Generation)
		if old, ok := h.latest[a.App]; !ok || a.Generation.Compare(old.Generation) > 0 {
			h.latest[a.App] = a
			h.drift[a.App] = nil
		}
	}
	for _, d := range rep.Drift {
		h.drift[d.App] = append(h.drift[d.App], d)
	}
	_ = json.NewEncoder(w).Encode(apiv1.ReportResponse{Stored: []string{}})
}

func (h *fakeHub) start(t *testing.T, addr string) {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	h.srv = &http.Server{Handler: h}
	go func() { _ = h.srv.Serve(l) }()
	t.Cleanup(func() { _ = h.srv.Close() })
}

func freeAddr(t *testing.T) string {
	t.Helper()
	addr, err := testenv.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

func newClient(t *testing.T, addr string) *Client {
	t.Helper()
	c, err := New(Config{
		HubURL: "http://" + addr, Cluster: "dev", Agent: apiv1.AgentInfo{ID: "agent-0"},
		Token:      func() (string, error) { return "tok-dev\n", nil },
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

const rev = "0123456789abcdef0123456789abcdef01234567"

func status(app string, seq int64, version string) apiv1.AppStatus {
	return apiv1.AppStatus{
		App: app, Generation: apiv1.Generation{Epoch: 1700000000000, Sequence: seq}, Version: version, Revision: rev,
		Phase: apiv1.PhaseSynced, Health: apiv1.Health{Status: apiv1.HealthCurrent},
	}
}

func TestHubDownThenUpGetsLatestOfEveryApp(t *testing.T) {
	addr := freeAddr(t) // nothing listens: the hub is down
	c := newClient(t, addr)
	go c.Run(t.Context())
	c.Put(status("web", 1, "1.0.0"), nil)
	c.Put(status("web", 2, "1.1.0"), nil)
	c.Put(status("web", 1, "1.0.0"), nil) // a late, older state never replaces a newer one
	drift := []apiv1.Drift{{App: "cache", Object: apiv1.ObjectRef{Group: "apps", Version: "v1", Kind: "StatefulSet", Namespace: "cache", Name: "redis"},
		Fields: []apiv1.DriftField{{Path: "spec.replicas", Desired: json.RawMessage("1"), Live: json.RawMessage("3"), Manager: "kubectl"}}, ObservedAt: time.Now()}}
	c.Put(status("cache", 7, "7.2"), drift)
	time.Sleep(200 * time.Millisecond) // several failed deliveries
	if c.Len() != 2 {
		t.Fatalf("pending = %d, want 2 (one per app, coalesced)", c.Len())
	}

	hub := &fakeHub{latest: map[string]apiv1.AppStatus{}, drift: map[string][]apiv1.Drift{}}
	hub.start(t, addr)
	waitFor(t, func() bool { return c.Len() == 0 })
	hub.mu.Lock()
	defer hub.mu.Unlock()
	if got := hub.latest["web"]; got.Version != "1.1.0" || got.Generation.Sequence != 2 {
		t.Errorf("hub has web %+v, want version 1.1.0 at sequence 2", got)
	}
	if got := hub.latest["cache"]; got.Version != "7.2" || len(hub.drift["cache"]) != 1 || hub.drift["cache"][0].Fields[0].Manager != "kubectl" {
		t.Errorf("hub has cache %+v with drift %+v", got, hub.drift["cache"])
	}
	for _, g := range hub.received {
		if g.Sequence == 1 {
			t.Errorf("hub received the stale web state %+v", g)
		}
	}
}

func TestServerErrorsAreRetriedRejectionsDropped(t *testing.T) {
	addr := freeAddr(t)
	hub := &fakeHub{latest: map[string]apiv1.AppStatus{}, drift: map[string][]apiv1.Drift{}, status: http.StatusServiceUnavailable}
	hub.start(t, addr)
	c := newClient(t, addr)
	go c.Run(t.Context())
	c.Put(status("web", 1, "1.0.0"), nil)
	time.Sleep(300 * time.Millisecond)
	if c.Len() != 1 {
		t.Fatalf("pending = %d after 503s, want the state kept", c.Len())
	}
	hub.mu.Lock()
	hub.status = 0
	hub.mu.Unlock()
	waitFor(t, func() bool { return c.Len() == 0 })

	// An invalid report (bad revision) is refused with 400: dropped, not retried forever.
	bad := status("web", 2, "1.2.0")
	bad.Revision = "not-a-sha"
	c.Put(bad, nil)
	waitFor(t, func() bool { return c.Len() == 0 })
	hub.mu.Lock()
	defer hub.mu.Unlock()
	if hub.latest["web"].Version != "1.0.0" {
		t.Errorf("hub has %+v, want the invalid report refused", hub.latest["web"])
	}
}

func TestFlushAndLongPoll(t *testing.T) {
	addr := freeAddr(t)
	hub := &fakeHub{latest: map[string]apiv1.AppStatus{}, drift: map[string][]apiv1.Drift{}}
	hub.start(t, addr)
	c := newClient(t, addr)
	c.Put(status("web", 1, "1.0.0"), nil)
	if err := c.Flush(t.Context()); err != nil || c.Len() != 0 {
		t.Fatalf("Flush: %v, pending %d", err, c.Len())
	}
	d, err := c.WaitDesired(t.Context(), "abc")
	if err != nil || !d.Changed || d.Revision != "since=abc" {
		t.Fatalf("WaitDesired = %+v, %v", d, err)
	}
	// An unreadable token is an error that says so, not a silent success.
	unreadable, err := New(Config{HubURL: "http://" + addr, Cluster: "dev",
		Token: func() (string, error) { return "", errors.New("token file unreadable") }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := unreadable.WaitDesired(t.Context(), ""); err == nil || !strings.Contains(err.Error(), "token file unreadable") {
		t.Errorf("WaitDesired with no token: %v", err)
	}
	// A wrong token is an auth failure: the state stays queued for a rotated token.
	wrong, err := New(Config{HubURL: "http://" + addr, Cluster: "dev", MinBackoff: time.Millisecond,
		Token: func() (string, error) { return "tok-other", nil }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wrong.WaitDesired(t.Context(), ""); !hubapi.IsUnauthorized(err) {
		t.Errorf("WaitDesired with a wrong token: %v, want unauthorized", err)
	}
	wrong.Put(status("web", 2, "1.1.0"), nil)
	if err := wrong.Flush(t.Context()); !hubapi.IsUnauthorized(err) || wrong.Len() != 1 {
		t.Errorf("Flush with a wrong token: %v, pending %d; want unauthorized and the state kept", err, wrong.Len())
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// What the queue does with a report the hub answers with an error: keep it for the next
// attempt when the hub may accept it later (unreachable, 429, 5xx) or with a rotated
// token (401, 403); drop it only when the hub refused it as it is (other 4xx).
func TestQueueKeepsOrDropsByAnswer(t *testing.T) {
	tests := map[string]struct {
		status int // the hub's answer; 0: nothing listens
		kept   bool
	}{
		"400 invalid":       {http.StatusBadRequest, false},
		"401 unknown token": {http.StatusUnauthorized, true},
		"403 not allowed":   {http.StatusForbidden, true},
		"409 conflict":      {http.StatusConflict, false},
		"413 too large":     {http.StatusRequestEntityTooLarge, false},
		"429 too many":      {http.StatusTooManyRequests, true},
		"500 internal":      {http.StatusInternalServerError, true},
		"502 bad gateway":   {http.StatusBadGateway, true},
		"503 unavailable":   {http.StatusServiceUnavailable, true},
		"unreachable":       {0, true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			addr := freeAddr(t)
			if tc.status != 0 {
				hub := &fakeHub{latest: map[string]apiv1.AppStatus{}, drift: map[string][]apiv1.Drift{}, status: tc.status}
				hub.start(t, addr)
			}
			c, err := New(Config{HubURL: "http://" + addr, Cluster: "dev", Agent: apiv1.AgentInfo{ID: "agent-0"}, RequestTimeout: 300 * time.Millisecond,
				Token: func() (string, error) { return "tok-dev", nil }})
			if err != nil {
				t.Fatal(err)
			}
			c.Put(status("web", 1, "1.0.0"), nil)
			err = c.Flush(t.Context())
			if kept := c.Len() == 1; kept != tc.kept || kept != (err != nil) {
				t.Errorf("after Flush (error %v): pending %d, want kept %v and an error exactly when kept", err, c.Len(), tc.kept)
			}
		})
	}
}

// TestFailsOverToTheNextHub: with two hub URLs of which the first is down, or answers
// 503, reports and long-polls go to the second, which stays in use.
func TestFailsOverToTheNextHub(t *testing.T) {
	for name, firstStatus := range map[string]int{"first down": 0, "first 503": http.StatusServiceUnavailable, "first 502": http.StatusBadGateway} {
		t.Run(name, func(t *testing.T) {
			down := freeAddr(t)
			if firstStatus != 0 {
				(&fakeHub{latest: map[string]apiv1.AppStatus{}, drift: map[string][]apiv1.Drift{}, status: firstStatus}).start(t, down)
			}
			up := freeAddr(t)
			hub := &fakeHub{latest: map[string]apiv1.AppStatus{}, drift: map[string][]apiv1.Drift{}}
			hub.start(t, up)
			c, err := New(Config{
				HubURL: "http://" + down + ", http://" + up, Cluster: "dev", Agent: apiv1.AgentInfo{ID: "agent-0"},
				Token:      func() (string, error) { return "tok-dev", nil },
				MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
			})
			if err != nil {
				t.Fatal(err)
			}
			c.Put(status("web", 1, "1.0.0"), nil)
			if err := c.Flush(t.Context()); err != nil {
				t.Fatalf("flush with one hub up: %v", err)
			}
			hub.mu.Lock()
			got := hub.latest["web"].Version
			hub.mu.Unlock()
			if got != "1.0.0" {
				t.Fatalf("second hub has web %q, want 1.0.0", got)
			}
			if c.cur.Load() != 1 {
				t.Errorf("hub in use %d, want the second (1)", c.cur.Load())
			}
			d, err := c.WaitDesired(t.Context(), "x")
			if err != nil || d.Revision != "since=x" {
				t.Fatalf("long-poll: %+v, %v", d, err)
			}
		})
	}
}

func TestSplitURLs(t *testing.T) {
	for in, want := range map[string][]string{
		"":                       nil,
		"http://a":               {"http://a"},
		" http://a , http://b ,": {"http://a", "http://b"},
	} {
		if got := SplitURLs(in); strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("SplitURLs(%q) = %q, want %q", in, got, want)
		}
	}
}
