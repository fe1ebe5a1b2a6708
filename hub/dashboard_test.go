//go:build unix

package hub

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
	"github.com/outpost-gitops/outpost/internal/chromiumtest"
)

// TestDashboardOfRunningHubInChromium loads the dashboard of a running hub (real store,
// real embedded Git repository) after an agent reported status and drift through the
// API, in real headless Chromium, and saves a screenshot.
func TestDashboardOfRunningHubInChromium(t *testing.T) {
	chromium := chromiumtest.Path(t)
	h := startHub(t, filepath.Join(t.TempDir(), "data"), func(c *Config) { c.DashboardPublic = true })

	var reg apiv1.RegisterClusterResponse
	if code := h.call(t, http.MethodPost, "/api/v1/clusters", adminToken, apiv1.RegisterClusterRequest{Name: "prod-eu"}, &reg); code != http.StatusCreated {
		t.Fatalf("register prod-eu: %d", code)
	}
	now := time.Now().UTC().Truncate(time.Second)
	report := apiv1.StatusReport{
		Cluster: "prod-eu", Agent: apiv1.AgentInfo{ID: "agent-0", Version: "test"}, SentAt: now,
		Apps: []apiv1.AppStatus{
			{App: "web", Generation: apiv1.Generation{Epoch: now.UnixMilli(), Sequence: 1}, Version: "1.4.1",
				Revision: strings.Repeat("ab", 20), Phase: apiv1.PhaseSynced, Health: apiv1.Health{Status: apiv1.HealthCurrent}},
			{App: "api", Generation: apiv1.Generation{Epoch: now.UnixMilli(), Sequence: 1}, Version: "2.0.0",
				Revision: strings.Repeat("ab", 20), Phase: apiv1.PhaseFailed, Health: apiv1.Health{Status: apiv1.HealthUnknown},
				Error: &apiv1.AppError{Stage: apiv1.StageRender, Message: "undefined variable \"REPLICAS\"", File: "apps/api/deploy.yaml"}},
		},
		Drift: []apiv1.Drift{{
			App: "web", Object: apiv1.ObjectRef{Group: "apps", Version: "v1", Kind: "Deployment", Namespace: "shop", Name: "web"},
			Fields: []apiv1.DriftField{{Path: "spec.replicas", Desired: json.RawMessage("3"), Live: json.RawMessage("5"),
				Manager: "kubectl", Operation: apiv1.OperationUpdate, Subresource: "scale", Time: now, TimeObserved: true}},
			ObservedAt: now,
		}},
	}
	if code := h.call(t, http.MethodPost, apiv1.ReportPath, reg.Token, report, nil); code != http.StatusOK {
		t.Fatalf("report: %d", code)
	}

	dom := string(chromiumtest.Headless(t, chromium, h.url+"/", "--dump-dom"))
	for _, want := range []string{
		">prod-eu<", ">staging<", // registered and reporting; only in Git
		"1.4.1", "Synced", "Healthy", "2.0.0", "Failed", `undefined variable "REPLICAS"`, "apps/api/deploy.yaml",
		"spec.replicas", ">kubectl<",
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("the dashboard of the running hub lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("DOM:\n%s", dom)
	}
	shot := filepath.Join(chromiumtest.ArtifactDir(t), "dashboard-running-hub.png")
	chromiumtest.Screenshot(t, chromium, h.url+"/", shot)
	t.Logf("screenshot of the running hub's dashboard: %s", shot)
}

// TestRolloutPagesArePrivate: a dashboard behind the admin token has the rollout
// pages; a public one (--dashboard-public) has none, not even for an admin, and no
// rollout event streams.
func TestRolloutPagesArePrivate(t *testing.T) {
	private := startHub(t, filepath.Join(t.TempDir(), "data"))
	if code := private.call(t, http.MethodGet, "/rollouts", adminToken, nil, nil); code != http.StatusOK {
		t.Errorf("private dashboard: GET /rollouts = %d, want 200", code)
	}
	if code := private.call(t, http.MethodGet, "/rollouts/web-nope", adminToken, nil, nil); code != http.StatusNotFound {
		t.Errorf("private dashboard: GET /rollouts/web-nope = %d, want 404", code)
	}
	public := startHub(t, filepath.Join(t.TempDir(), "data"), func(c *Config) { c.DashboardPublic = true })
	// status reads only the status line: an event stream that is served never ends.
	status := func(path, token string) int {
		req, err := http.NewRequest(http.MethodGet, public.url+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, path := range []string{"/rollouts", "/rollouts/web-nope", "/events/stream?rollouts=all", "/events/stream?rollout=web-nope"} {
		for who, token := range map[string]string{"anonymous": "", "admin": adminToken} {
			if code := status(path, token); code != http.StatusNotFound {
				t.Errorf("public dashboard, %s: GET %s = %d, want 404", who, path, code)
			}
		}
	}
}
