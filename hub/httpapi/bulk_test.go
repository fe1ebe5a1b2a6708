package httpapi

import (
	"net/http"
	"strings"
	"testing"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
)

const bulkPath = "/api/v1/apps/web/bulk"

func TestBulkSetIsOneCommitByTheCaller(t *testing.T) {
	h := newTestHub(t, t.TempDir())
	before := h.git.Head()

	dry := decode[apiv1.BulkResult](t, h.do(t, "POST", bulkPath, janeToken,
		apiv1.BulkRequest{Action: apiv1.BulkSet, Version: "2.0.0", Selector: "env in (prod,staging)", DryRun: true}), http.StatusOK)
	if !dry.DryRun || dry.Committed || dry.Revision != before || h.git.Head() != before || len(dry.Changes) != 2 {
		t.Fatalf("dry run = %+v", dry)
	}
	want := []apiv1.BulkChange{
		{Cluster: "prod-eu", PreviousVersion: "1.4.1", Version: "2.0.0", Changed: true},
		{Cluster: "staging", PreviousVersion: "1.5.0", Version: "2.0.0", Changed: true},
	}
	for i := range want {
		if dry.Changes[i] != want[i] {
			t.Errorf("dry run change %d = %+v, want %+v", i, dry.Changes[i], want[i])
		}
	}

	r := h.do(t, "POST", bulkPath, janeToken, apiv1.BulkRequest{Action: apiv1.BulkSet, Version: "2.0.0", Selector: "env in (prod,staging)"},
		"If-Match", `"`+before+`"`)
	res := decode[apiv1.BulkResult](t, r, http.StatusOK)
	if !res.Committed || res.App != "web" || res.Action != apiv1.BulkSet || r.header.Get("ETag") != `"`+res.Revision+`"` {
		t.Fatalf("result = %+v, ETag %s", res, r.header.Get("ETag"))
	}
	if !strings.HasPrefix(res.Message, "set web=2.0.0 on 2 clusters") {
		t.Errorf("message = %q", res.Message)
	}
	hist := decode[apiv1.HistoryList](t, h.do(t, "GET", "/api/v1/clusters/staging/history?app=web", janeToken, nil), http.StatusOK)
	if len(hist.Entries) == 0 || hist.Entries[0].Commit != res.Revision || hist.Entries[0].Author != "Jane Doe" {
		t.Fatalf("staging history = %+v", hist.Entries)
	}
	hist = decode[apiv1.HistoryList](t, h.do(t, "GET", "/api/v1/clusters/prod-eu/history?app=web", janeToken, nil), http.StatusOK)
	if hist.Entries[0].Commit != res.Revision || hist.Entries[0].After != "2.0.0" {
		t.Fatalf("prod-eu history = %+v", hist.Entries)
	}

	// The same request at the old revision is stale now: 409 naming If-Match, as the
	// single-cluster route answers; in the body too.
	wantError(t, h.do(t, "POST", bulkPath, janeToken,
		apiv1.BulkRequest{Action: apiv1.BulkRollback, Selector: "env=prod", IfMatch: before}), http.StatusConflict, apiv1.CodeConflict, "If-Match")
	// A bulk rollback by name goes back on both.
	rb := decode[apiv1.BulkResult](t, h.do(t, "POST", bulkPath, ciToken,
		apiv1.BulkRequest{Action: apiv1.BulkRollback, Clusters: []string{"staging", "prod-eu"}, IfMatch: res.Revision}), http.StatusOK)
	if !rb.Committed || len(rb.Changes) != 2 || rb.Changes[0].Version != "1.4.1" || rb.Changes[1].Version != "1.5.0" {
		t.Errorf("rollback = %+v", rb)
	}
}

func TestBulkBadRequests(t *testing.T) {
	h := newTestHub(t, t.TempDir())
	tokA := h.register(t, "prod-eu")
	head := h.git.Head()
	many := make([]string, apiv1.MaxBulkClusters+1)
	for i := range many {
		many[i] = "c"
	}
	set := func(sel string) apiv1.BulkRequest {
		return apiv1.BulkRequest{Action: apiv1.BulkSet, Version: "2.0.0", Selector: sel}
	}
	cases := map[string]struct {
		path, token string
		body        any
		hdr         []string
		status      int
		code        apiv1.ErrorCode
		field       string
	}{
		"agent token":                   {bulkPath, tokA, set("env=prod"), nil, 403, apiv1.CodeForbidden, ""},
		"no token":                      {bulkPath, "", set("env=prod"), nil, 401, apiv1.CodeUnauthorized, ""},
		"unknown field":                 {bulkPath, janeToken, `{"action":"set","version":"2.0.0","selector":"env=prod","dryrun":true}`, nil, 400, apiv1.CodeBadRequest, "dryrun"},
		"malformed JSON":                {bulkPath, janeToken, `{"action":`, nil, 400, apiv1.CodeBadRequest, ""},
		"wrong type":                    {bulkPath, janeToken, `{"action":"set","version":"2.0.0","clusters":"prod-eu"}`, nil, 400, apiv1.CodeBadRequest, "clusters"},
		"no action":                     {bulkPath, janeToken, `{"selector":"env=prod"}`, nil, 400, apiv1.CodeInvalid, "action"},
		"unknown action":                {bulkPath, janeToken, apiv1.BulkRequest{Action: "bump", Selector: "env=prod"}, nil, 400, apiv1.CodeInvalid, "action"},
		"set without version":           {bulkPath, janeToken, apiv1.BulkRequest{Action: apiv1.BulkSet, Selector: "env=prod"}, nil, 400, apiv1.CodeInvalid, "version"},
		"unset with version":            {bulkPath, janeToken, apiv1.BulkRequest{Action: apiv1.BulkUnset, Version: "1", Selector: "env=prod"}, nil, 400, apiv1.CodeInvalid, "version"},
		"no selector, no cluster":       {bulkPath, janeToken, apiv1.BulkRequest{Action: apiv1.BulkUnset}, nil, 400, apiv1.CodeInvalid, "selector"},
		"bad selector syntax":           {bulkPath, janeToken, set("env in prod"), nil, 400, apiv1.CodeInvalid, "selector"},
		"selector matching none":        {bulkPath, janeToken, set("env=nowhere"), nil, 400, apiv1.CodeInvalid, "selector"},
		"selector control char":         {bulkPath, janeToken, set("env=prod\n"), nil, 400, apiv1.CodeInvalid, "selector"},
		"selector too long":             {bulkPath, janeToken, set("env=" + strings.Repeat("a", apiv1.MaxSelectorLen)), nil, 400, apiv1.CodeInvalid, "selector"},
		"bad cluster name":              {bulkPath, janeToken, apiv1.BulkRequest{Action: apiv1.BulkUnset, Clusters: []string{"prod-eu", "../x"}}, nil, 400, apiv1.CodeInvalid, "clusters[1]"},
		"too many clusters":             {bulkPath, janeToken, apiv1.BulkRequest{Action: apiv1.BulkUnset, Clusters: many}, nil, 400, apiv1.CodeInvalid, "clusters"},
		"unknown cluster":               {bulkPath, janeToken, apiv1.BulkRequest{Action: apiv1.BulkSet, Version: "2.0.0", Clusters: []string{"prod-eu", "nope"}}, nil, 404, apiv1.CodeNotFound, "cluster"},
		"unknown app":                   {"/api/v1/apps/nope/bulk", janeToken, set("env=prod"), nil, 404, apiv1.CodeNotFound, "app"},
		"bad app":                       {"/api/v1/apps/Web/bulk", janeToken, set("env=prod"), nil, 400, apiv1.CodeInvalid, "app"},
		"unset on a cluster without it": {"/api/v1/apps/api/bulk", janeToken, apiv1.BulkRequest{Action: apiv1.BulkUnset, Selector: "env"}, nil, 404, apiv1.CodeNotFound, "app"},
		"varsFrom with unset":           {bulkPath, janeToken, apiv1.BulkRequest{Action: apiv1.BulkUnset, Selector: "env=prod", VarsFrom: "staging"}, nil, 400, apiv1.CodeInvalid, "varsFrom"},
		"varsFrom bad name":             {bulkPath, janeToken, apiv1.BulkRequest{Action: apiv1.BulkSet, Version: "1", Selector: "env=prod", VarsFrom: "a/b"}, nil, 400, apiv1.CodeInvalid, "varsFrom"},
		"varsFrom unknown cluster":      {bulkPath, janeToken, apiv1.BulkRequest{Action: apiv1.BulkSet, Version: "1", Selector: "env=prod", VarsFrom: "nope"}, nil, 404, apiv1.CodeNotFound, "cluster"},
		"bad ifMatch":                   {bulkPath, janeToken, apiv1.BulkRequest{Action: apiv1.BulkUnset, Selector: "env=prod", IfMatch: "main"}, nil, 400, apiv1.CodeInvalid, "ifMatch"},
		"stale If-Match":                {bulkPath, janeToken, set("env=prod"), []string{"If-Match", strings.Repeat("b", 40)}, 409, apiv1.CodeConflict, "If-Match"},
		"ifMatch and header differ": {bulkPath, janeToken, apiv1.BulkRequest{Action: apiv1.BulkUnset, Selector: "env=prod", IfMatch: strings.Repeat("a", 40)},
			[]string{"If-Match", strings.Repeat("b", 40)}, 400, apiv1.CodeInvalid, "ifMatch"},
		"body over the limit": {bulkPath, janeToken, `{"action":"set","selector":"` + strings.Repeat("a", apiv1.MaxRequestBytes) + `"}`, nil, 413, apiv1.CodeTooLarge, ""},
		"not JSON":            {bulkPath, janeToken, `action=set`, []string{"Content-Type", "text/plain"}, 415, apiv1.CodeUnsupportedMediaType, "Content-Type"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			r := h.do(t, "POST", tc.path, tc.token, tc.body, tc.hdr...)
			e := wantError(t, r, tc.status, tc.code, tc.field)
			t.Logf("%d %s", r.status, e.Message)
		})
	}
	if h.git.Head() != head {
		t.Errorf("a refused bulk write committed")
	}
}
