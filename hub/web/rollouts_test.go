package web_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/html"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
	"github.com/outpost-gitops/outpost/hub/web"
	"github.com/outpost-gitops/outpost/internal/hubapi/hubapitest"
)

// rolloutHub is the fake hub with runs.
type rolloutHub struct {
	*hubapitest.Hub
	mu   sync.Mutex
	runs []apiv1.Rollout // newest first
}

func (h *rolloutHub) Rollouts(_ context.Context, app string, active bool, limit int) (*apiv1.RolloutList, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := []apiv1.Rollout{}
	for _, r := range h.runs {
		if (app == "" || r.App == app) && (!active || r.State.Active()) && len(out) < limit {
			out = append(out, r)
		}
	}
	return &apiv1.RolloutList{Rollouts: out}, nil
}

func (h *rolloutHub) Rollout(_ context.Context, id string) (*apiv1.Rollout, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range h.runs {
		if r.ID == id {
			return &r, nil
		}
	}
	return nil, &apiv1.ErrorResponse{Code: apiv1.CodeNotFound, Message: "no rollout " + id}
}

func (h *rolloutHub) update(fn func(*apiv1.Rollout)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	fn(&h.runs[0])
	h.runs[0].Generation++
	h.runs[0].UpdatedAt = time.Now()
}

var _ web.RolloutSource = (*rolloutHub)(nil)

// withRuns returns the seeded fleet with two runs of web: an old one that
// succeeded and an active one in its second wave, holding prod-eu.
func withRuns() *rolloutHub {
	now := time.Now().UTC().Truncate(time.Second)
	active := apiv1.Rollout{
		ID: "web-new", App: "web", Version: "1.5.0", State: apiv1.RolloutRunning, Wave: 1, Revision: strings.Repeat("a", 40),
		Waves: []apiv1.RolloutWave{
			{Name: "staging", Clusters: []string{"staging"}, SoakSeconds: 60, StartedAt: now.Add(-time.Hour), DoneAt: now.Add(-50 * time.Minute)},
			{Name: "prod", Clusters: []string{"prod-eu"}, SoakSeconds: 1800, StartedAt: now.Add(-5 * time.Minute)},
		},
		Clusters: []apiv1.RolloutCluster{
			{Cluster: "staging", Wave: 0, Phase: apiv1.ClusterVerified, Previous: "1.4.3", Step: 0,
				Reported: &apiv1.RolloutReport{Version: "1.5.0", Phase: apiv1.PhaseSynced, Health: apiv1.HealthCurrent, ReceivedAt: now}},
			{Cluster: "prod-eu", Wave: 1, Phase: apiv1.ClusterSoaking, Previous: "1.4.2", Step: 1, FirstHealthyAt: now.Add(-2 * time.Minute),
				Reported: &apiv1.RolloutReport{Version: "1.5.0", Phase: apiv1.PhaseSynced, Health: apiv1.HealthCurrent, ReceivedAt: now}},
		},
		Steps: []apiv1.RolloutStep{
			{Kind: apiv1.StepForward, Wave: 0, Clusters: []string{"staging"}, Commit: strings.Repeat("b", 40), At: now.Add(-time.Hour)},
			{Kind: apiv1.StepForward, Wave: 1, Clusters: []string{"prod-eu"}, Commit: strings.Repeat("c", 40), At: now.Add(-5 * time.Minute)},
		},
		CreatedBy: "Jane Doe", CreatedAt: now.Add(-time.Hour), UpdatedAt: now,
	}
	old := apiv1.Rollout{ID: "web-old", App: "web", Version: "1.4.2", State: apiv1.RolloutSucceeded, Wave: 1,
		Waves: []apiv1.RolloutWave{{Name: "all", Clusters: []string{"prod-eu"}}}, CreatedBy: "Joe", CreatedAt: now.Add(-48 * time.Hour)}
	return &rolloutHub{Hub: fleet(), runs: []apiv1.Rollout{active, old}}
}

func TestRolloutPages(t *testing.T) {
	h := withRuns()
	srv := serve(t, h, web.Options{})

	resp, body := get(t, srv.URL+"/rollouts")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /rollouts: %s\n%s", resp.Status, body)
	}
	checkSecurityHeaders(t, resp)
	list := text(parse(t, body))
	iNew, iOld := strings.Index(list, "web-new"), strings.Index(list, "web-old")
	if iNew < 0 || iOld < 0 || iNew > iOld {
		t.Errorf("the list does not show web-new before web-old: %q", list)
	}
	for _, want := range []string{"1.5.0", "Running", "2/2 prod", "Jane Doe", "Succeeded", "done", `href="/rollouts/web-new"`} {
		if !strings.Contains(body, want) {
			t.Errorf("the list lacks %q", want)
		}
	}

	resp, body = get(t, srv.URL+"/rollouts/web-new")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /rollouts/web-new: %s\n%s", resp.Status, body)
	}
	doc := parse(t, body)
	cells := map[string]string{}
	for _, c := range find(doc, func(n *html.Node) bool { return attr(n, "data-cluster") != "" }) {
		cells[attr(c, "data-cluster")] = attr(c, "class") + " | " + text(c)
	}
	wants := map[string][]string{
		"staging": {"p-ok", "Verified", "1.4.3", "1.5.0", "Synced", "Healthy"},
		"prod-eu": {"p-soak", "Soaking", "1.4.2", "s left"},
	}
	// 30m soak, healthy since 2m before the run was made: 28m left, or a second less.
	if c := cells["prod-eu"]; !strings.Contains(c, "28m00s left") && !strings.Contains(c, "27m59s left") {
		t.Errorf("cell prod-eu = %q, want 28m00s (or 27m59s) left", c)
	}
	for cl, ws := range wants {
		for _, w := range ws {
			if !strings.Contains(cells[cl], w) {
				t.Errorf("cell %s = %q, want it to contain %q", cl, cells[cl], w)
			}
		}
	}
	if n := find(doc, func(n *html.Node) bool { return attr(n, "data-soak-end") != "" }); len(n) != 1 {
		t.Errorf("%d elements with data-soak-end, want 1 (prod-eu)", len(n))
	}
	if b := find(doc, func(n *html.Node) bool { return n.Data == "body" })[0]; attr(b, "data-stream") != "/events/stream?rollout=web-new" {
		t.Errorf("data-stream = %q", attr(b, "data-stream"))
	}
	// Without a HistorySource the commits are not links.
	if strings.Contains(body, `href="/commits/`) || !strings.Contains(body, "cccccccccccc") {
		t.Errorf("the commits are links without a history source, or missing")
	}

	// The overview links the pages and marks the held cell.
	_, body = get(t, srv.URL+"/")
	doc = parse(t, body)
	if !strings.Contains(body, `<a href="/rollouts">Rollouts</a>`) {
		t.Errorf("the overview has no Rollouts link")
	}
	if c := matrixCell(t, doc, "prod-eu", "web"); !strings.Contains(c, "rollout") {
		t.Errorf("the prod-eu web cell %q is not marked as held", c)
	}
	if c := matrixCell(t, doc, "prod-eu", "search"); strings.Contains(c, "rollout") {
		t.Errorf("the prod-eu search cell %q is marked as held", c)
	}
	if !strings.Contains(body, `href="/rollouts/web-new"`) {
		t.Errorf("the held cell does not link its run")
	}

	// A source without runs has no such pages, and no link.
	plain := serve(t, fleet(), web.Options{})
	for _, p := range []string{"/rollouts", "/rollouts/web-new", "/events/stream?rollout=web-new", "/events/stream?rollouts=all"} {
		if resp, _ := get(t, plain.URL+p); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s without a RolloutSource: %d, want 404", p, resp.StatusCode)
		}
	}
	if _, body := get(t, plain.URL+"/"); strings.Contains(body, `href="/rollouts"`) {
		t.Errorf("the overview links rollouts without a RolloutSource")
	}
}

func TestRolloutPagesBadInput(t *testing.T) {
	srv := serve(t, withRuns(), web.Options{})
	tests := map[string]struct {
		path     string
		status   int
		contains string
	}{
		"unknown run":                 {"/rollouts/web-nope", 404, "No such rollout"},
		"upper case id":               {"/rollouts/Web-New", 404, "Page not found"},
		"id with a dot":               {"/rollouts/web.new", 404, "Page not found"},
		"id too long":                 {"/rollouts/" + strings.Repeat("a", 101), 404, "Page not found"},
		"id ending in a dash":         {"/rollouts/web-", 404, "Page not found"},
		"path below a run":            {"/rollouts/web-new/pause", 404, "Page not found"},
		"post an action":              {"/rollouts/web-new", 405, "read-only"},
		"stream bad id":               {"/events/stream?rollout=..%2Fx", 400, "rollout: not a rollout ID"},
		"stream unknown run":          {"/events/stream?rollout=web-nope", 404, "no such rollout"},
		"stream bad rollouts":         {"/events/stream?rollouts=some", 400, "rollouts: the only value is all"},
		"stream cluster and rollout":  {"/events/stream?cluster=prod-eu&rollout=web-new", 400, "at most one"},
		"stream rollout and rollouts": {"/events/stream?rollouts=all&rollout=web-new", 400, "at most one"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			method := http.MethodGet
			if name == "post an action" {
				method = http.MethodPost
			}
			req, err := http.NewRequest(method, srv.URL+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status || !strings.Contains(string(b), tc.contains) {
				t.Errorf("%s %s = %s, want %d with %q:\n%s", method, tc.path, resp.Status, tc.status, tc.contains, b)
			}
		})
	}
}

func TestRolloutStreamSendsChangedWhenTheRunChanges(t *testing.T) {
	h := withRuns()
	srv := serve(t, h, web.Options{PollInterval: 20 * time.Millisecond})
	v0 := pageVersion(t, srv.URL+"/rollouts/web-new")
	s := openStream(t, srv.URL+"/events/stream?rollout=web-new&since="+v0, "")
	l0 := pageVersion(t, srv.URL+"/rollouts")
	list := openStream(t, srv.URL+"/events/stream?rollouts=all&since="+l0, "")

	// What the page does not show moving: no event.
	h.update(func(r *apiv1.Rollout) { r.Clusters[1].Reported.ReceivedAt = time.Now().Add(time.Minute) })
	if ev := s.next(300 * time.Millisecond); ev != nil {
		t.Fatalf("event %v after a change of volatile fields only", ev)
	}
	// A report the page shows: changed, with the page's new fingerprint.
	h.update(func(r *apiv1.Rollout) { r.Clusters[1].Reported.Health = apiv1.HealthFailed })
	ev := s.next(5 * time.Second)
	v1 := pageVersion(t, srv.URL+"/rollouts/web-new")
	if ev == nil || ev["event"] != "changed" || ev["data"] != v1 || v1 == v0 {
		t.Fatalf("after a report: event %v, want changed %s (was %s)", ev, v1, v0)
	}
	if ev := list.next(300 * time.Millisecond); ev != nil {
		t.Fatalf("the list's stream sent %v for a change the list does not show", ev)
	}
	// The run pauses: both streams tell.
	h.update(func(r *apiv1.Rollout) { r.State, r.Reason = apiv1.RolloutPaused, "paused by Jane Doe" })
	if ev := s.next(5 * time.Second); ev == nil || ev["event"] != "changed" {
		t.Fatalf("no changed event on the run's stream after it paused: %v", ev)
	}
	if ev := list.next(5 * time.Second); ev == nil || ev["event"] != "changed" || ev["data"] != pageVersion(t, srv.URL+"/rollouts") {
		t.Fatalf("the list's stream after the run paused: %v", ev)
	}
	// The run is gone (a store reset): the page hears it.
	h.mu.Lock()
	h.runs[0].ID = "web-other"
	h.mu.Unlock()
	if ev := s.next(5 * time.Second); ev == nil || ev["data"] != "gone" {
		t.Fatalf("after the run went away: %v, want changed gone", ev)
	}
}
