package httpapi

import (
	"net/http"
	"strings"
	"testing"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
	"github.com/outpost-gitops/outpost/sync/fleetdiff"
)

// GET /api/v1/diff renders a commit against its parent (or any two revisions) with the
// agent's renderer and answers what outpost diff -o json prints.
func TestDiffOfACommitThroughTheAPI(t *testing.T) {
	h := newTestHub(t, t.TempDir())
	set := decode[apiv1.ChangeResult](t, h.do(t, "PUT", "/api/v1/clusters/prod-eu/apps/web", janeToken, apiv1.SetVersionRequest{Version: "1.4.2"}), http.StatusOK)

	res := decode[fleetdiff.Result](t, h.do(t, "GET", "/api/v1/diff?head="+set.Revision, janeToken, nil), http.StatusOK)
	if res.Head != set.Revision || len(res.Errors) != 0 {
		t.Fatalf("head %s, errors %+v", res.Head, res.Errors)
	}
	if len(res.Clusters) != 1 || res.Clusters[0].Cluster != "prod-eu" || len(res.Clusters[0].Apps) != 1 {
		t.Fatalf("clusters %+v, want prod-eu's web only", res.Clusters)
	}
	app := res.Clusters[0].Apps[0]
	if app.App != "web" || app.BaseVersion != "1.4.1" || app.HeadVersion != "1.4.2" || len(app.Objects) != 1 ||
		!strings.Contains(app.Objects[0].Diff, "+      - image: example.com/web:1.4.2") {
		t.Fatalf("web diff %+v", app)
	}

	// The same commit diffed against itself: nothing; the default head is the head.
	same := decode[fleetdiff.Result](t, h.do(t, "GET", "/api/v1/diff?base="+set.Revision, janeToken, nil), http.StatusOK)
	if len(same.Clusters) != 0 || same.Head != set.Revision {
		t.Fatalf("head against itself: %+v", same)
	}
	// A selector that matches no changed cluster.
	none := decode[fleetdiff.Result](t, h.do(t, "GET", "/api/v1/diff?head="+set.Revision+"&cluster=staging", janeToken, nil), http.StatusOK)
	if len(none.Clusters) != 0 {
		t.Fatalf("cluster=staging: %+v", none.Clusters)
	}
}

func TestDiffBadInput(t *testing.T) {
	h := newTestHub(t, t.TempDir())
	unknown := strings.Repeat("a", 40)
	tests := map[string]struct {
		query  string
		token  string
		status int
		code   apiv1.ErrorCode
		field  string
	}{
		"no token":             {"", "", http.StatusUnauthorized, apiv1.CodeUnauthorized, ""},
		"head not a hash":      {"?head=main", janeToken, http.StatusBadRequest, apiv1.CodeInvalid, "head"},
		"unknown head":         {"?head=" + unknown, janeToken, http.StatusNotFound, apiv1.CodeNotFound, "head"},
		"unknown base":         {"?base=" + unknown, janeToken, http.StatusNotFound, apiv1.CodeNotFound, "base"},
		"bad selector":         {"?selector=env%20in%20(a", janeToken, http.StatusBadRequest, apiv1.CodeInvalid, "selector"},
		"cluster and selector": {"?cluster=prod-eu&selector=env%3Dprod", janeToken, http.StatusBadRequest, apiv1.CodeInvalid, "selector"},
		"bad cluster name":     {"?cluster=Prod_EU", janeToken, http.StatusBadRequest, apiv1.CodeInvalid, "cluster"},
		"head twice":           {"?head=a&head=b", janeToken, http.StatusBadRequest, apiv1.CodeBadRequest, "head"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			wantError(t, h.do(t, "GET", "/api/v1/diff"+tc.query, tc.token, nil), tc.status, tc.code, tc.field)
		})
	}
}

// Diffs render the fleet: beyond maxDiffs at once the hub answers 429, not more CPU.
func TestDiffsAreBounded(t *testing.T) {
	h := newTestHub(t, t.TempDir())
	for range maxDiffs {
		h.api.diffs <- struct{}{}
	}
	r := h.do(t, "GET", "/api/v1/diff", janeToken, nil)
	wantError(t, r, http.StatusTooManyRequests, apiv1.CodeTooManyRequests, "")
	for range maxDiffs {
		<-h.api.diffs
	}
	decode[fleetdiff.Result](t, h.do(t, "GET", "/api/v1/diff", janeToken, nil), http.StatusOK)
}
