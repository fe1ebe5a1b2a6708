package httpapi

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
	"github.com/outpost-gitops/outpost/internal/gittest"
)

// waitRollout polls the run until cond holds.
func waitRollout(t *testing.T, h *testHub, id string, cond func(apiv1.Rollout) bool) apiv1.Rollout {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := decode[apiv1.Rollout](t, h.do(t, "GET", "/api/v1/rollouts/"+id, janeToken, nil), http.StatusOK)
		if cond(r) {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("rollout %s never reached the condition: %+v", id, r)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestRolloutAPIStartsHoldsAndActs(t *testing.T) {
	h := newTestHub(t, t.TempDir(), withRollouts())
	run := decode[apiv1.Rollout](t, h.do(t, "POST", "/api/v1/rollouts", janeToken, apiv1.StartRolloutRequest{App: "web", Version: "1.6.0"}), http.StatusCreated)
	if run.App != "web" || run.State != apiv1.RolloutRunning || len(run.Waves) != 2 || run.CreatedBy != "Jane Doe" {
		t.Fatalf("run = %+v", run)
	}
	// The driver writes wave staging as one commit.
	run = waitRollout(t, h, run.ID, func(r apiv1.Rollout) bool { return len(r.Steps) == 1 && r.Steps[0].Commit != "" })
	if c, _ := h.git.Cluster(t.Context(), "staging"); c.App("web").Version != "1.6.0" {
		t.Fatalf("staging at %s after wave staging", c.App("web").Version)
	}
	wantError(t, h.do(t, "POST", "/api/v1/rollouts", janeToken, apiv1.StartRolloutRequest{App: "web", Version: "1.7.0"}), http.StatusConflict, apiv1.CodeConflict, "app")

	// A manual set on a held cluster is refused, naming the run...
	e := wantError(t, h.do(t, "PUT", "/api/v1/clusters/prod-eu/apps/web", janeToken, apiv1.SetVersionRequest{Version: "9.9.9"}), http.StatusConflict, apiv1.CodeConflict, "cluster")
	if !strings.Contains(e.Message, "rollout "+run.ID) || !strings.Contains(e.Message, "force=true") {
		t.Errorf("409 message %q does not name the run and the way out", e.Message)
	}
	// ...as is a bulk write touching one, while another app is free.
	wantError(t, h.do(t, "POST", "/api/v1/apps/web/bulk", janeToken, apiv1.BulkRequest{Action: apiv1.BulkSet, Version: "9.9.9", Selector: "env=prod"}), http.StatusConflict, apiv1.CodeConflict, "cluster")
	decode[apiv1.ChangeResult](t, h.do(t, "PUT", "/api/v1/clusters/prod-eu/apps/api", janeToken, apiv1.SetVersionRequest{Version: "2.1.0"}), http.StatusOK)

	// force=true writes, marks the cluster overridden and pauses the run.
	decode[apiv1.ChangeResult](t, h.do(t, "PUT", "/api/v1/clusters/prod-eu/apps/web?force=true", janeToken, apiv1.SetVersionRequest{Version: "9.9.9"}), http.StatusOK)
	run = decode[apiv1.Rollout](t, h.do(t, "GET", "/api/v1/rollouts/"+run.ID, janeToken, nil), http.StatusOK)
	if run.State != apiv1.RolloutPaused || !strings.Contains(run.Reason, "prod-eu") {
		t.Fatalf("after a forced write: %s (%s)", run.State, run.Reason)
	}
	for _, c := range run.Clusters {
		if c.Cluster == "prod-eu" && c.Phase != apiv1.ClusterOverridden {
			t.Errorf("prod-eu is %s, want Overridden", c.Phase)
		}
	}

	// Actions: the state decides.
	wantError(t, h.do(t, "POST", "/api/v1/rollouts/"+run.ID+"/approve", janeToken, nil), http.StatusConflict, apiv1.CodeConflict, "state")
	run = decode[apiv1.Rollout](t, h.do(t, "POST", "/api/v1/rollouts/"+run.ID+"/resume", janeToken, nil), http.StatusOK)
	if run.State != apiv1.RolloutRunning {
		t.Fatalf("resumed run is %s", run.State)
	}
	run = decode[apiv1.Rollout](t, h.do(t, "POST", "/api/v1/rollouts/"+run.ID+"/abort", janeToken, nil), http.StatusOK)
	if run.State != apiv1.RolloutAborted || run.FinishedAt.IsZero() {
		t.Fatalf("aborted run is %s", run.State)
	}
	wantError(t, h.do(t, "POST", "/api/v1/rollouts/"+run.ID+"/abort", janeToken, nil), http.StatusConflict, apiv1.CodeConflict, "state")
	// Once aborted, the clusters are free again.
	decode[apiv1.ChangeResult](t, h.do(t, "PUT", "/api/v1/clusters/staging/apps/web", janeToken, apiv1.SetVersionRequest{Version: "1.5.1"}), http.StatusOK)

	list := decode[apiv1.RolloutList](t, h.do(t, "GET", "/api/v1/rollouts?app=web", janeToken, nil), http.StatusOK)
	if len(list.Rollouts) != 1 || list.Rollouts[0].ID != run.ID {
		t.Errorf("list = %+v", list)
	}
	if l := decode[apiv1.RolloutList](t, h.do(t, "GET", "/api/v1/rollouts?active=true", janeToken, nil), http.StatusOK); len(l.Rollouts) != 0 {
		t.Errorf("active runs after the abort: %+v", l.Rollouts)
	}
	evs := decode[apiv1.EventList](t, h.do(t, "GET", "/api/v1/events?limit=100", janeToken, nil), http.StatusOK)
	var rolloutEvents int
	for _, e := range evs.Events {
		if e.Type == apiv1.EventRollout {
			rolloutEvents++
		}
	}
	if rolloutEvents < 4 {
		t.Errorf("%d rollout events, want the start, the commit, the override and the abort", rolloutEvents)
	}
}

func TestRolloutAPIRefusesBadInput(t *testing.T) {
	h := newTestHub(t, t.TempDir(), withRollouts())
	cases := map[string]struct {
		method, path string
		body         any
		status       int
		code         apiv1.ErrorCode
		field        string
	}{
		"no policy":        {"POST", "/api/v1/rollouts", apiv1.StartRolloutRequest{App: "api", Version: "1.0.0"}, http.StatusNotFound, apiv1.CodeNotFound, "app"},
		"unknown app":      {"POST", "/api/v1/rollouts", apiv1.StartRolloutRequest{App: "nope", Version: "1.0.0"}, http.StatusNotFound, apiv1.CodeNotFound, "app"},
		"bad app":          {"POST", "/api/v1/rollouts", apiv1.StartRolloutRequest{App: "Web!", Version: "1.0.0"}, http.StatusBadRequest, apiv1.CodeInvalid, "app"},
		"bad version":      {"POST", "/api/v1/rollouts", apiv1.StartRolloutRequest{App: "web", Version: "1 0"}, http.StatusBadRequest, apiv1.CodeInvalid, "version"},
		"unknown field":    {"POST", "/api/v1/rollouts", map[string]string{"app": "web", "version": "1.0.0", "wave": "x"}, http.StatusBadRequest, apiv1.CodeBadRequest, "wave"},
		"bad id":           {"GET", "/api/v1/rollouts/Bad_ID", nil, http.StatusBadRequest, apiv1.CodeInvalid, "id"},
		"unknown id":       {"GET", "/api/v1/rollouts/web-nope", nil, http.StatusNotFound, apiv1.CodeNotFound, "id"},
		"unknown action":   {"POST", "/api/v1/rollouts/web-nope/explode", nil, http.StatusNotFound, apiv1.CodeNotFound, "action"},
		"action on no run": {"POST", "/api/v1/rollouts/web-nope/pause", nil, http.StatusNotFound, apiv1.CodeNotFound, "id"},
		"bad active":       {"GET", "/api/v1/rollouts?active=maybe", nil, http.StatusBadRequest, apiv1.CodeInvalid, "active"},
		"bad limit":        {"GET", "/api/v1/rollouts?limit=0", nil, http.StatusBadRequest, apiv1.CodeInvalid, "limit"},
		"bad force":        {"PUT", "/api/v1/clusters/staging/apps/web?force=yes", apiv1.SetVersionRequest{Version: "1.0.0"}, http.StatusBadRequest, apiv1.CodeInvalid, "force"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			wantError(t, h.do(t, tc.method, tc.path, janeToken, tc.body), tc.status, tc.code, tc.field)
		})
	}
	// A policy the contract refuses names its file and field.
	srv := gittest.New(t)
	files := seedFiles(t)
	files["rollouts/api.yaml"] = "waves:\n  - name: all\n    selector: env=prod\n    soak: forever\n"
	srv.Commit(t, files, "seed", "Seeder <seed@example.com>")
	remote := newTestHub(t, t.TempDir(), withRemote(srv), withRollouts())
	e := wantError(t, remote.do(t, "POST", "/api/v1/rollouts", janeToken, apiv1.StartRolloutRequest{App: "api", Version: "2.0.0"}), http.StatusConflict, apiv1.CodeConflict, "rollouts/api.yaml")
	if !strings.Contains(e.Message, "waves[0].soak") {
		t.Errorf("message %q does not name the field", e.Message)
	}
	// Without a driver the routes answer 404.
	plain := newTestHub(t, t.TempDir())
	wantError(t, plain.do(t, "GET", "/api/v1/rollouts", janeToken, nil), http.StatusNotFound, apiv1.CodeNotFound, "")
}

// TestRolloutReadModel checks the dashboard's reads of runs: the same runs as the
// REST API, not_found for an unknown run or a hub without a driver, invalid for a
// malformed id.
func TestRolloutReadModel(t *testing.T) {
	ctx := t.Context()
	h := newTestHub(t, t.TempDir(), withRollouts())
	run := decode[apiv1.Rollout](t, h.do(t, "POST", "/api/v1/rollouts", janeToken, apiv1.StartRolloutRequest{App: "web", Version: "1.6.0"}), http.StatusCreated)
	got, err := h.api.Rollout(ctx, run.ID)
	if err != nil || got.ID != run.ID || got.Version != "1.6.0" {
		t.Fatalf("Rollout(%s) = %+v, %v", run.ID, got, err)
	}
	list, err := h.api.Rollouts(ctx, "", false, 0)
	if err != nil || len(list.Rollouts) != 1 || list.Rollouts[0].ID != run.ID {
		t.Fatalf("Rollouts = %+v, %v", list, err)
	}
	if list, err := h.api.Rollouts(ctx, "api", false, 5); err != nil || list.Rollouts == nil || len(list.Rollouts) != 0 {
		t.Errorf("Rollouts(api) = %+v, %v; want an empty list", list, err)
	}
	plain := newTestHub(t, t.TempDir())
	cases := map[string]struct {
		err  func() error
		code apiv1.ErrorCode
	}{
		"unknown run":         {func() error { _, err := h.api.Rollout(ctx, "web-nope"); return err }, apiv1.CodeNotFound},
		"malformed id":        {func() error { _, err := h.api.Rollout(ctx, "../x"); return err }, apiv1.CodeInvalid},
		"malformed app":       {func() error { _, err := h.api.Rollouts(ctx, "Web!", false, 5); return err }, apiv1.CodeInvalid},
		"no driver, run":      {func() error { _, err := plain.api.Rollout(ctx, run.ID); return err }, apiv1.CodeNotFound},
		"no driver, the list": {func() error { _, err := plain.api.Rollouts(ctx, "", false, 5); return err }, apiv1.CodeNotFound},
	}
	for name, tc := range cases {
		var er *apiv1.ErrorResponse
		if err := tc.err(); !errors.As(err, &er) || er.Code != tc.code {
			t.Errorf("%s: %v, want an ErrorResponse with code %s", name, err, tc.code)
		}
	}
}
