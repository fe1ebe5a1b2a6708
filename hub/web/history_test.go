package web_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
	"github.com/outpost-gitops/outpost/hub/web"
	"github.com/outpost-gitops/outpost/internal/hubapi/hubapitest"
	"github.com/outpost-gitops/outpost/sync/fleetdiff"
	"github.com/outpost-gitops/outpost/sync/object"
)

// historyHub is the fake hub with the history and diff reads the dashboard's
// history and commit pages use.
type historyHub struct {
	*hubapitest.Hub
	diffs map[string]*fleetdiff.Result
}

func (h *historyHub) History(_ context.Context, cluster string, limit int) (*apiv1.HistoryList, error) {
	return h.Hub.History(cluster, "", limit)
}

func (h *historyHub) Diff(_ context.Context, base, head string) (*fleetdiff.Result, error) {
	if d, ok := h.diffs[head]; ok && base == "" {
		return d, nil
	}
	return nil, &apiv1.ErrorResponse{Code: apiv1.CodeNotFound, Message: "no commit " + head}
}

var _ web.HistorySource = (*historyHub)(nil)

// withHistory returns the seeded fleet with the rendered diff of prod-eu's newest
// commit (web 1.4.2 → 1.4.3).
func withHistory(t *testing.T) (*historyHub, string) {
	t.Helper()
	h := &historyHub{Hub: fleet(), diffs: map[string]*fleetdiff.Result{}}
	list, err := h.Hub.History("prod-eu", "", 1)
	if err != nil || len(list.Entries) == 0 {
		t.Fatalf("history of the seeded fleet: %v", err)
	}
	rev := list.Entries[0].Commit
	h.diffs[rev] = &fleetdiff.Result{
		Base: "parent", Head: rev,
		Clusters: []fleetdiff.ClusterDiff{{Cluster: "prod-eu", Apps: []fleetdiff.AppDiff{{
			App: "web", BaseVersion: "1.4.2", HeadVersion: "1.4.3",
			Objects: []fleetdiff.ObjectDiff{{
				Object: object.Ref{Group: "apps", Kind: "Deployment", Namespace: "web", Name: "web"}, Version: "v1", Action: fleetdiff.Changed,
				Diff: "--- base/Deployment.apps/web/web\n+++ head/Deployment.apps/web/web\n@@ -1,3 +1,3 @@\n spec:\n-  image: nginx:1.4.2\n+  image: nginx:1.4.3\n",
			}},
		}}}},
		Counts: fleetdiff.Counts{Clusters: 1, Apps: 1, Changed: 1},
	}
	return h, rev
}

func TestHistoryAndCommitPages(t *testing.T) {
	h, rev := withHistory(t)
	srv := serve(t, h, web.Options{})

	resp, body := get(t, srv.URL+"/clusters/prod-eu/history")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `href="/commits/`+rev+`?cluster=prod-eu"`) || !strings.Contains(body, "set web=1.4.3 on prod-eu") {
		t.Fatalf("history page %d (rev %s):\n%s", resp.StatusCode, rev, body)
	}
	_, cluster := get(t, srv.URL+"/clusters/prod-eu")
	if !strings.Contains(cluster, `href="/clusters/prod-eu/history"`) {
		t.Error("the cluster page does not link to its history")
	}
	resp, body = get(t, srv.URL+"/commits/"+rev+"?cluster=prod-eu")
	for _, want := range []string{`<span class="d-del">-  image: nginx:1.4.2</span>`, `<span class="d-add">&#43;  image: nginx:1.4.3</span>`,
		"Deployment.apps/web/web", "1.4.2 → 1.4.3", `href="/clusters/prod-eu/history"`} {
		if !strings.Contains(body, want) {
			t.Errorf("commit page lacks %q", want)
		}
	}
	if resp.StatusCode != http.StatusOK || t.Failed() {
		t.Fatalf("commit page %d:\n%s", resp.StatusCode, body)
	}

	notFound := map[string]string{
		"unknown cluster":  "/clusters/nope/history",
		"bad cluster name": "/clusters/No_Pe/history",
		"not a revision":   "/commits/main",
		"unknown commit":   "/commits/" + strings.Repeat("b", 40),
	}
	for name, path := range notFound {
		t.Run(name, func(t *testing.T) {
			if resp, body := get(t, srv.URL+path); resp.StatusCode != http.StatusNotFound {
				t.Fatalf("GET %s: %d, want 404\n%s", path, resp.StatusCode, body)
			}
		})
	}
	// A source without history has no such pages.
	plain := serve(t, fleet(), web.Options{})
	if resp, _ := get(t, plain.URL+"/clusters/prod-eu/history"); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("history without a HistorySource: %d", resp.StatusCode)
	}
}
