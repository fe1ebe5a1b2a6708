package httpapi

import (
	"context"
	"strings"
	"testing"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
	"github.com/outpost-gitops/outpost/hub/store"
)

// unchanged records what a refused request must not change: the Git head, the
// registered clusters and every stored app status.
type unchanged struct {
	head     string
	clusters int
	apps     int
	events   int
}

func (h *testHub) snapshot(t testing.TB) unchanged {
	t.Helper()
	ctx := context.Background()
	cs, err := h.store.ListClusters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	apps, err := h.store.AppSummaries(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	evs, err := h.store.Events(ctx, store.EventQuery{Limit: apiv1.MaxHistoryLimit})
	if err != nil {
		t.Fatal(err)
	}
	return unchanged{head: h.git.Head(), clusters: len(cs), apps: len(apps), events: len(evs)}
}

func TestAuthNegatives(t *testing.T) {
	h := newTestHub(t, t.TempDir())
	tokA := h.register(t, "prod-eu")
	h.register(t, "staging")
	before := h.snapshot(t)

	cases := map[string]struct {
		method, path, token string
		body                any
		status              int
		code                apiv1.ErrorCode
		field               string
	}{
		"no token on an admin endpoint":  {"PUT", "/api/v1/clusters/prod-eu/apps/web", "", apiv1.SetVersionRequest{Version: "9.9.9"}, 401, apiv1.CodeUnauthorized, ""},
		"bad token on an admin endpoint": {"PUT", "/api/v1/clusters/prod-eu/apps/web", "not-a-token-at-all-0123", apiv1.SetVersionRequest{Version: "9.9.9"}, 401, apiv1.CodeUnauthorized, ""},
		"bad agent-like token":           {"POST", apiv1.ReportPath, store.TokenPrefix + "AAAAAAAAAAAAAAAAAAAAAAAAAA", report("prod-eu", "web", "1.0.0", 1, apiv1.PhaseSynced), 401, apiv1.CodeUnauthorized, ""},
		"no token on report":             {"POST", apiv1.ReportPath, "", report("prod-eu", "web", "1.0.0", 1, apiv1.PhaseSynced), 401, apiv1.CodeUnauthorized, ""},
		"no token on long-poll":          {"GET", apiv1.DesiredPath + "?cluster=prod-eu", "", nil, 401, apiv1.CodeUnauthorized, ""},
		"A reports for B":                {"POST", apiv1.ReportPath, tokA, report("staging", "web", "1.0.0", 1, apiv1.PhaseSynced), 403, apiv1.CodeForbidden, "cluster"},
		"A long-polls B":                 {"GET", apiv1.DesiredPath + "?cluster=staging&since=", tokA, nil, 403, apiv1.CodeForbidden, "cluster"},
		"agent sets a version":           {"PUT", "/api/v1/clusters/prod-eu/apps/web", tokA, apiv1.SetVersionRequest{Version: "9.9.9"}, 403, apiv1.CodeForbidden, ""},
		"agent rolls back":               {"POST", "/api/v1/clusters/prod-eu/apps/web/rollback", tokA, nil, 403, apiv1.CodeForbidden, ""},
		"agent registers":                {"POST", "/api/v1/clusters", tokA, apiv1.RegisterClusterRequest{Name: "evil"}, 403, apiv1.CodeForbidden, ""},
		"agent deletes":                  {"DELETE", "/api/v1/clusters/staging", tokA, nil, 403, apiv1.CodeForbidden, ""},
		"agent lists clusters":           {"GET", "/api/v1/clusters", tokA, nil, 403, apiv1.CodeForbidden, ""},
		"agent reads its status":         {"GET", "/api/v1/clusters/prod-eu/status", tokA, nil, 403, apiv1.CodeForbidden, ""},
		"admin reports":                  {"POST", apiv1.ReportPath, janeToken, report("prod-eu", "web", "1.0.0", 1, apiv1.PhaseSynced), 403, apiv1.CodeForbidden, ""},
		"basic auth on the API":          {"GET", "/api/v1/clusters", "", nil, 401, apiv1.CodeUnauthorized, ""},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var hdr []string
			if name == "basic auth on the API" {
				hdr = []string{"Authorization", "Basic eDpqYW5lLXRva2VuLTAxMjM0NTY3ODk="} // x:<jane's token>
			}
			r := h.do(t, tc.method, tc.path, tc.token, tc.body, hdr...)
			wantError(t, r, tc.status, tc.code, tc.field)
			if tc.status == 401 && !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("WWW-Authenticate = %q", r.header.Get("WWW-Authenticate"))
			}
		})
	}
	if after := h.snapshot(t); after != before {
		t.Errorf("refused requests changed the hub: before %+v, after %+v", before, after)
	}
}

func TestBadRequests(t *testing.T) {
	h := newTestHub(t, t.TempDir(), withWebhookSecret("s3cret"))
	tokA := h.register(t, "prod-eu")
	before := h.snapshot(t)
	bigReport := report("prod-eu", "web", "1.0.0", 1, apiv1.PhaseSynced)
	bigReport.Apps[0].Health.Message = strings.Repeat("x", apiv1.MaxReportBytes)

	cases := map[string]struct {
		method, path, token string
		body                any
		hdr                 []string
		status              int
		code                apiv1.ErrorCode
		field               string
	}{
		"malformed JSON set":         {"PUT", "/api/v1/clusters/prod-eu/apps/web", janeToken, `{"version": `, nil, 400, apiv1.CodeBadRequest, ""},
		"wrong type":                 {"PUT", "/api/v1/clusters/prod-eu/apps/web", janeToken, `{"version": 142}`, nil, 400, apiv1.CodeBadRequest, "version"},
		"trailing data":              {"PUT", "/api/v1/clusters/prod-eu/apps/web", janeToken, `{"version": "1.0.0"} {}`, nil, 400, apiv1.CodeBadRequest, ""},
		"malformed JSON register":    {"POST", "/api/v1/clusters", janeToken, `[`, nil, 400, apiv1.CodeBadRequest, ""},
		"malformed JSON report":      {"POST", apiv1.ReportPath, tokA, `{"cluster": "prod-eu",`, nil, 400, apiv1.CodeBadRequest, ""},
		"set body over the limit":    {"PUT", "/api/v1/clusters/prod-eu/apps/web", janeToken, `{"version": "` + strings.Repeat("1", apiv1.MaxRequestBytes) + `"}`, nil, 413, apiv1.CodeTooLarge, ""},
		"report over the limit":      {"POST", apiv1.ReportPath, tokA, bigReport, nil, 413, apiv1.CodeTooLarge, ""},
		"not JSON":                   {"PUT", "/api/v1/clusters/prod-eu/apps/web", janeToken, `version=1`, []string{"Content-Type", "application/x-www-form-urlencoded"}, 415, apiv1.CodeUnsupportedMediaType, "Content-Type"},
		"unknown cluster":            {"PUT", "/api/v1/clusters/nope/apps/web", janeToken, apiv1.SetVersionRequest{Version: "1.0.0"}, nil, 404, apiv1.CodeNotFound, "cluster"},
		"unknown app":                {"PUT", "/api/v1/clusters/prod-eu/apps/nope", janeToken, apiv1.SetVersionRequest{Version: "1.0.0"}, nil, 404, apiv1.CodeNotFound, "app"},
		"unknown cluster status":     {"GET", "/api/v1/clusters/nope/status", janeToken, nil, nil, 404, apiv1.CodeNotFound, "cluster"},
		"unknown cluster history":    {"GET", "/api/v1/clusters/nope/history", janeToken, nil, nil, 404, apiv1.CodeNotFound, "cluster"},
		"unknown cluster events":     {"GET", "/api/v1/events?cluster=nope", janeToken, nil, nil, 404, apiv1.CodeNotFound, "cluster"},
		"rollback without previous":  {"POST", "/api/v1/clusters/prod-eu/apps/api/rollback", janeToken, nil, nil, 404, apiv1.CodeNotFound, "app"},
		"invalid version":            {"PUT", "/api/v1/clusters/prod-eu/apps/web", janeToken, apiv1.SetVersionRequest{Version: "1.4 beta"}, nil, 400, apiv1.CodeInvalid, "version"},
		"empty version":              {"PUT", "/api/v1/clusters/prod-eu/apps/web", janeToken, `{}`, nil, 400, apiv1.CodeInvalid, "version"},
		"version with a newline":     {"PUT", "/api/v1/clusters/prod-eu/apps/web", janeToken, apiv1.SetVersionRequest{Version: "1.0\nx: y"}, nil, 400, apiv1.CodeInvalid, "version"},
		"cluster with a slash":       {"PUT", "/api/v1/clusters/prod%2Feu/apps/web", janeToken, apiv1.SetVersionRequest{Version: "1.0.0"}, nil, 400, apiv1.CodeInvalid, "cluster"},
		"app with a slash":           {"PUT", "/api/v1/clusters/prod-eu/apps/..%2Fweb", janeToken, apiv1.SetVersionRequest{Version: "1.0.0"}, nil, 400, apiv1.CodeInvalid, "app"},
		"cluster ..":                 {"PUT", "/api/v1/clusters/../apps/web", janeToken, apiv1.SetVersionRequest{Version: "1.0.0"}, nil, 400, apiv1.CodeInvalid, "cluster"},
		"app .. escaped":             {"PUT", "/api/v1/clusters/prod-eu/apps/%2E%2E", janeToken, apiv1.SetVersionRequest{Version: "1.0.0"}, nil, 400, apiv1.CodeInvalid, "app"},
		"cluster .":                  {"GET", "/api/v1/clusters/./status", janeToken, nil, nil, 400, apiv1.CodeInvalid, "cluster"},
		"empty cluster segment":      {"GET", "/api/v1/clusters//status", janeToken, nil, nil, 400, apiv1.CodeInvalid, "cluster"},
		"cluster with a NUL":         {"GET", "/api/v1/clusters/prod%00eu/status", janeToken, nil, nil, 400, apiv1.CodeInvalid, "cluster"},
		"cluster with a newline":     {"DELETE", "/api/v1/clusters/prod%0Aeu", janeToken, nil, nil, 400, apiv1.CodeInvalid, "cluster"},
		"register ../x":              {"POST", "/api/v1/clusters", janeToken, apiv1.RegisterClusterRequest{Name: "../x"}, nil, 400, apiv1.CodeInvalid, "name"},
		"register with control char": {"POST", "/api/v1/clusters", janeToken, apiv1.RegisterClusterRequest{Name: "a\x07b"}, nil, 400, apiv1.CodeInvalid, "name"},
		"register bad label":         {"POST", "/api/v1/clusters", janeToken, apiv1.RegisterClusterRequest{Name: "ok", Labels: map[string]string{"a b": "c"}}, nil, 400, apiv1.CodeInvalid, `labels["a b"]`},
		"report with a bad app name": {"POST", apiv1.ReportPath, tokA, report("prod-eu", "../web", "1.0.0", 1, apiv1.PhaseSynced), nil, 400, apiv1.CodeInvalid, "apps[0].app"},
		"long-poll bad since":        {"GET", apiv1.DesiredPath + "?cluster=prod-eu&since=HEAD", tokA, nil, nil, 400, apiv1.CodeInvalid, "since"},
		"long-poll without cluster":  {"GET", apiv1.DesiredPath, tokA, nil, nil, 400, apiv1.CodeInvalid, "cluster"},
		"long-poll cluster twice":    {"GET", apiv1.DesiredPath + "?cluster=prod-eu&cluster=staging", tokA, nil, nil, 400, apiv1.CodeBadRequest, "cluster"},
		"history bad limit":          {"GET", "/api/v1/clusters/prod-eu/history?limit=ten", janeToken, nil, nil, 400, apiv1.CodeBadRequest, "limit"},
		"history limit too big":      {"GET", "/api/v1/clusters/prod-eu/history?limit=1001", janeToken, nil, nil, 400, apiv1.CodeInvalid, "limit"},
		"history bad app":            {"GET", "/api/v1/clusters/prod-eu/history?app=a/b", janeToken, nil, nil, 400, apiv1.CodeInvalid, "app"},
		"events bad type":            {"GET", "/api/v1/events?type=boom", janeToken, nil, nil, 400, apiv1.CodeInvalid, "type"},
		"bad If-Match":               {"PUT", "/api/v1/clusters/prod-eu/apps/web", janeToken, apiv1.SetVersionRequest{Version: "1.0.0"}, []string{"If-Match", `"main"`}, 400, apiv1.CodeInvalid, "If-Match"},
		"unknown If-Match revision":  {"PUT", "/api/v1/clusters/prod-eu/apps/web", janeToken, apiv1.SetVersionRequest{Version: "1.0.0"}, []string{"If-Match", strings.Repeat("b", 40)}, 409, apiv1.CodeConflict, "If-Match"},
		"unknown route":              {"GET", "/api/v1/nothing", janeToken, nil, nil, 404, apiv1.CodeNotFound, ""},
		"wrong method":               {"PATCH", "/api/v1/clusters/prod-eu/apps/web", janeToken, nil, nil, 405, apiv1.CodeMethodNotAllowed, ""},
		"webhook without signature":  {"POST", WebhookPath, "", `{"ref":"refs/heads/main"}`, []string{"X-GitHub-Event", "push"}, 401, apiv1.CodeUnauthorized, ""},
		"webhook bad signature": {"POST", WebhookPath, "", `{"ref":"refs/heads/main"}`,
			[]string{"X-GitHub-Event", "push", "X-Hub-Signature-256", "sha256=" + strings.Repeat("0", 64)}, 401, apiv1.CodeUnauthorized, ""},
		"webhook bad gitlab token": {"POST", WebhookPath, "", `{"ref":"refs/heads/main"}`,
			[]string{"X-Gitlab-Event", "Push Hook", "X-Gitlab-Token", "guess"}, 401, apiv1.CodeUnauthorized, ""},
		"webhook bad gitea signature": {"POST", WebhookPath, "", `{"ref":"refs/heads/main"}`,
			[]string{"X-Gitea-Event", "push", "X-Gitea-Signature", "00"}, 401, apiv1.CodeUnauthorized, ""},
		"webhook signed, not JSON": {"POST", WebhookPath, "", `{"ref":`,
			[]string{"X-GitHub-Event", "push", "X-Hub-Signature-256", sign("s3cret", `{"ref":`)}, 400, apiv1.CodeBadRequest, ""},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			r := h.do(t, tc.method, tc.path, tc.token, tc.body, tc.hdr...)
			e := wantError(t, r, tc.status, tc.code, tc.field)
			if tc.status == 405 && r.header.Get("Allow") != "PUT, DELETE" {
				t.Errorf("Allow = %q", r.header.Get("Allow"))
			}
			t.Logf("%d %s", r.status, e.Message)
		})
	}
	if after := h.snapshot(t); after != before {
		t.Errorf("refused requests changed the hub: before %+v, after %+v", before, after)
	}
	// The long-poll with a bad request did not wait.
	if n := h.notifier.Waiting(); n != 0 {
		t.Errorf("%d long-polls held", n)
	}
}
