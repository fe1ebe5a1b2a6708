//go:build unix

package web_test

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
	"github.com/outpost-gitops/outpost/hub/gitstore"
	"github.com/outpost-gitops/outpost/hub/httpapi"
	"github.com/outpost-gitops/outpost/hub/notify"
	"github.com/outpost-gitops/outpost/hub/rollout"
	"github.com/outpost-gitops/outpost/hub/store"
	"github.com/outpost-gitops/outpost/hub/web"
	"github.com/outpost-gitops/outpost/internal/chromiumtest"
)

// rolloutBed is a real hub API (embedded repository, SQLite store) with a real
// rollout driver running, and the dashboard built from the API as the hub builds it.
type rolloutBed struct {
	git    *gitstore.Store
	st     *store.SQLite
	driver *rollout.Driver
	dash   *httptest.Server
	seq    int64
}

func newRolloutBed(t *testing.T) *rolloutBed {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	seed := t.TempDir()
	files := map[string]string{
		"apps/web/app.yaml":       "namespace: web\n",
		"apps/web/configmap.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\n",
		"rollouts/web.yaml":       "waves:\n  - name: dev\n    selector: env=dev\n    soak: 10m\n  - name: prod\n    selector: env=prod\n    approval: manual\nprogressDeadline: 15m\n",
	}
	clusters := map[string]string{"dev-1": "dev", "dev-2": "dev", "prod-1": "prod"}
	for c, env := range clusters {
		files["clusters/"+c+"/cluster.yaml"] = "labels:\n  env: " + env + "\n"
		files["clusters/"+c+"/apps.yaml"] = "apps:\n  - name: web\n    version: \"1.0\"\n"
	}
	for p, content := range files {
		full := filepath.Join(seed, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	gs, err := gitstore.Open(ctx, gitstore.Config{Dir: filepath.Join(t.TempDir(), "repo.git"), Seed: seed}, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, store.Config{Path: filepath.Join(t.TempDir(), "hub.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	for c := range clusters {
		if _, err := st.RegisterCluster(ctx, store.NewCluster{Name: c, TokenHash: store.HashToken("t-" + c), CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	driver, err := rollout.New(rollout.Config{Store: st, Git: gs, Interval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = driver.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	n, err := notify.New(notify.Config{Jitter: -1})
	if err != nil {
		t.Fatal(err)
	}
	admins, err := httpapi.ParseAdminTokens(strings.NewReader("Jane Doe <jane@example.com>:jane-token-0123456789\n"))
	if err != nil {
		t.Fatal(err)
	}
	api, err := httpapi.New(httpapi.Config{Store: st, Git: gs, Notifier: n, Admins: admins, Rollouts: driver})
	if err != nil {
		t.Fatal(err)
	}
	dash := serve(t, api, web.Options{PollInterval: 100 * time.Millisecond})
	return &rolloutBed{git: gs, st: st, driver: driver, dash: dash}
}

// report stores a report of web from cluster at the head, as the agent's would be.
func (b *rolloutBed) report(t *testing.T, cluster, version string) {
	t.Helper()
	b.seq++
	now := time.Now()
	_, err := b.st.ApplyReport(context.Background(), &apiv1.StatusReport{Cluster: cluster, SentAt: now, Apps: []apiv1.AppStatus{{
		App: "web", Generation: apiv1.Generation{Epoch: 1, Sequence: b.seq}, Version: version, Revision: b.git.Head(),
		Phase: apiv1.PhaseSynced, Health: apiv1.Health{Status: apiv1.HealthCurrent},
	}}}, now)
	if err != nil {
		t.Fatal(err)
	}
	b.driver.Wake()
}

// TestRolloutPageInChromium opens the page of a run of a real rollout driver behind
// the real hub API in headless Chromium: the grid shows the waves and their clusters;
// when the agents report, the cells turn Soaking and count their soak down; when a
// person pauses the run through the driver, the page shows it, all without a reload.
func TestRolloutPageInChromium(t *testing.T) {
	chromium := chromiumtest.Path(t)
	b := newRolloutBed(t)
	ctx := context.Background()
	run, err := b.driver.Start(ctx, "web", "2.0", "Jane Doe")
	if err != nil {
		t.Fatal(err)
	}

	const liveState = `document.getElementById('live') ? document.getElementById('live').dataset.state : ''`
	phase := func(cluster string) string {
		return `(function () { var c = document.querySelector('.rcell[data-cluster="` + cluster + `"]'); return c ? c.dataset.phase : ''; })()`
	}
	const soakLeft = `(function () { var e = document.querySelector('.rcell[data-cluster="dev-1"] .soak-left'); return e ? e.textContent : ''; })()`
	const state = `(function () { var e = document.querySelector('.run-state'); return e ? e.textContent.trim() : ''; })()`
	const waves = `Array.from(document.querySelectorAll('.rollout-grid tr.wave')).map(function (r) { return r.dataset.wave; }).join(',')`

	br := startBrowser(t, chromium, b.dash.URL+"/rollouts/"+run.ID)
	br.waitFor("the event stream opens", liveState, "live", 30*time.Second)
	br.waitFor("the grid has one row per wave", waves, "dev,prod", 5*time.Second)
	br.waitFor("prod-1 waits in wave 2", phase("prod-1"), "Pending", 5*time.Second)
	// The driver writes wave dev's commit at once: the page shows it, live.
	br.waitFor("dev-1 is written", phase("dev-1"), "Progressing", 10*time.Second)
	br.eval(`window.outpostMarker = 'kept'`)

	b.report(t, "dev-1", "2.0")
	b.report(t, "dev-2", "2.0")
	br.waitFor("dev-1 soaks after its report", phase("dev-1"), "Soaking", 10*time.Second)
	br.waitFor("dev-2 soaks after its report", phase("dev-2"), "Soaking", 5*time.Second)
	first := br.eval(soakLeft)
	if !regexp.MustCompile(`^(10m00|9m\d\d)s left$`).MatchString(first) {
		t.Fatalf("dev-1's soak left = %q, want about 10m left", first)
	}
	time.Sleep(2100 * time.Millisecond)
	if next := br.eval(soakLeft); next == first || !strings.HasSuffix(next, "s left") {
		t.Errorf("the soak does not count down: %q, then %q", first, next)
	}

	if _, err := b.driver.Act(ctx, run.ID, apiv1.ActionPause, "Jane Doe"); err != nil {
		t.Fatal(err)
	}
	br.waitFor("the page shows the pause", state, "‖Paused", 10*time.Second)
	br.waitFor("the page was updated in place, not reloaded", `window.outpostMarker`, "kept", time.Second)

	// The matrix marks web on every cluster the paused run still holds, linking to it.
	br.navigate(b.dash.URL + "/")
	br.waitFor("the matrix marks the held cells", `Array.from(document.querySelectorAll('td[data-app="web"] a.held')).map(function (a) { return a.getAttribute('href'); }).join(',')`,
		strings.Repeat("/rollouts/"+run.ID+",", 3)[:3*len("/rollouts/"+run.ID+",")-1], 10*time.Second)

	shot := filepath.Join(chromiumtest.ArtifactDir(t), "dashboard-rollout.png")
	chromiumtest.Screenshot(t, chromium, b.dash.URL+"/rollouts/"+run.ID, shot)
	t.Logf("screenshot of the rollout page: %s", shot)
	overview := filepath.Join(chromiumtest.ArtifactDir(t), "dashboard-overview-held.png")
	chromiumtest.Screenshot(t, chromium, b.dash.URL+"/", overview)
	t.Logf("screenshot of the overview with held cells: %s", overview)
}
