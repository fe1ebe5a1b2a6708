//go:build unix

package web_test

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
	"github.com/outpost-gitops/outpost/hub/web"
	"github.com/outpost-gitops/outpost/internal/chromiumtest"
)

// TestDashboardInChromium loads the dashboard of a hub holding reported status (two
// clusters, three apps, one drifted, one failed) in real headless Chromium: the DOM as
// the browser built it must show the matrix, the drift details and the failure, the
// page's script must have run under the Content-Security-Policy, and a screenshot of
// each page is saved.
func TestDashboardInChromium(t *testing.T) {
	chromium := chromiumtest.Path(t)
	srv := serve(t, fleet(), web.Options{})
	dir := chromiumtest.ArtifactDir(t)

	dom := string(chromiumtest.Headless(t, chromium, srv.URL+"/", "--dump-dom"))
	for _, want := range []string{
		// the script ran (it is blocked if the CSP or its URL is wrong)
		`<html lang="en" data-js="on">`,
		// the matrix: clusters, versions, phase and health text
		">prod-eu<", ">staging<", "1.4.2", "1.4.3", "2.0.0", "0.9.1", "1.5.0-rc.1", "2.1.0",
		"Synced", "Failed", "Syncing", "Healthy", "Progressing", "1 drifted",
		// drift: the field path and the managers
		"spec.replicas", "spec.template.spec.containers[name=web].image", ">kubectl<", ">kubectl-edit<",
		// the failure
		"mapping values are not allowed in this context", "apps/payments/deployment.yaml:12",
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("the DOM Chromium built lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("DOM:\n%s", dom)
	}

	overview := filepath.Join(dir, "dashboard-overview.png")
	chromiumtest.Screenshot(t, chromium, srv.URL+"/", overview)
	cluster := filepath.Join(dir, "dashboard-cluster-prod-eu.png")
	chromiumtest.Screenshot(t, chromium, srv.URL+"/clusters/prod-eu", cluster)
	t.Logf("screenshot of the overview: %s", overview)
	t.Logf("screenshot of cluster prod-eu: %s", cluster)
}

// TestLiveRefreshInChromium checks the page's script in a real browser: the page
// opens its event stream, and when the hub's data changes the matrix shows it
// without a reload; where the stream is refused, the page falls back to polling and
// still shows the change.
func TestLiveRefreshInChromium(t *testing.T) {
	chromium := chromiumtest.Path(t)
	h := fleet()
	srv := serve(t, h, web.Options{PollInterval: 100 * time.Millisecond})
	dash, err := web.New(h, web.Options{FallbackPoll: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	noStream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/events/stream" {
			http.Error(w, "no event streams behind this proxy", http.StatusServiceUnavailable)
			return
		}
		dash.ServeHTTP(w, r)
	}))
	t.Cleanup(noStream.Close)

	const liveState = `document.getElementById('live') ? document.getElementById('live').dataset.state : ''`
	const searchOnProd = `(function () {
		var rows = Array.from(document.querySelectorAll('.matrix tbody tr'));
		var row = rows.find(function (r) { return r.querySelector('th').textContent.indexOf('prod-eu') >= 0; });
		var cell = row && row.querySelector('td[data-app="search"] .ver > code');
		return cell ? cell.textContent.trim() : '';
	})()`
	report := func(version string) {
		t.Helper()
		st := apiv1.AppStatus{
			App: "search", Version: version, Phase: apiv1.PhaseSynced, Health: apiv1.Health{Status: apiv1.HealthCurrent},
		}
		if err := h.Report("prod-eu", st, nil); err != nil {
			t.Fatal(err)
		}
	}

	b := startBrowser(t, chromium, srv.URL+"/")
	b.waitFor("the event stream opens", liveState, "live", 30*time.Second)
	b.waitFor("the matrix is shown", searchOnProd, "0.9.1", 5*time.Second)
	b.eval(`window.outpostMarker = 'kept'`)
	report("0.9.2")
	b.waitFor("the matrix shows a new report", searchOnProd, "0.9.2", 10*time.Second)
	b.waitFor("the page was updated in place, not reloaded", `window.outpostMarker`, "kept", time.Second)

	b.navigate(noStream.URL + "/")
	b.waitFor("the page falls back to polling", liveState, "poll", 30*time.Second)
	report("0.9.3")
	b.waitFor("the polling page shows a new report", searchOnProd, "0.9.3", 10*time.Second)
}

// TestCommitDiffInChromium opens a cluster's history in real headless Chromium, then
// the page of its newest commit: the DOM must show the commit list and the commit's
// rendered per-cluster diff, with added and removed lines marked.
func TestCommitDiffInChromium(t *testing.T) {
	chromium := chromiumtest.Path(t)
	h, rev := withHistory(t)
	srv := serve(t, h, web.Options{})
	dir := chromiumtest.ArtifactDir(t)

	history := string(chromiumtest.Headless(t, chromium, srv.URL+"/clusters/prod-eu/history", "--dump-dom"))
	if !strings.Contains(history, `href="/commits/`+rev+`?cluster=prod-eu"`) || !strings.Contains(history, "History of prod-eu") {
		t.Fatalf("the history DOM lacks the commit link:\n%s", history)
	}
	page := srv.URL + "/commits/" + rev + "?cluster=prod-eu"
	dom := string(chromiumtest.Headless(t, chromium, page, "--dump-dom"))
	for _, want := range []string{
		`<html lang="en" data-js="on">`, ">prod-eu<", "Deployment.apps/web/web",
		`<span class="d-del">-  image: nginx:1.4.2</span>`, `<span class="d-add">+  image: nginx:1.4.3</span>`,
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("the commit page's DOM lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("DOM:\n%s", dom)
	}
	shot := filepath.Join(dir, "dashboard-commit.png")
	chromiumtest.Screenshot(t, chromium, page, shot)
	t.Logf("screenshot of the commit page: %s", shot)
}
