package httpapi

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
)

// fuzzRoutes are the requests FuzzAPIRequest builds: seg goes into the path (or a
// query parameter), body is the request body (or a second query parameter).
var fuzzRoutes = []func(seg string, body []byte) (method, target string, admin bool, sendBody bool, hdr []string){
	// 0: an agent's report for prod-eu.
	func(_ string, _ []byte) (string, string, bool, bool, []string) {
		return "POST", apiv1.ReportPath, false, true, nil
	},
	// 1: register a cluster.
	func(_ string, _ []byte) (string, string, bool, bool, []string) {
		return "POST", "/api/v1/clusters", true, true, nil
	},
	// 2: set web on cluster seg.
	func(seg string, _ []byte) (string, string, bool, bool, []string) {
		return "PUT", "/api/v1/clusters/" + url.PathEscape(seg) + "/apps/web", true, true, nil
	},
	// 3: set app seg on prod-eu, with the body's first bytes as If-Match.
	func(seg string, body []byte) (string, string, bool, bool, []string) {
		return "PUT", "/api/v1/clusters/prod-eu/apps/" + url.PathEscape(seg), true, true, []string{"If-Match", headerSafe(body)}
	},
	// 4: prod-eu's agent long-polls cluster seg since the body.
	func(seg string, body []byte) (string, string, bool, bool, []string) {
		return "GET", apiv1.DesiredPath + "?cluster=" + url.QueryEscape(seg) + "&since=" + url.QueryEscape(string(body)), false, false, nil
	},
	// 5: a signed GitHub push webhook.
	func(_ string, body []byte) (string, string, bool, bool, []string) {
		return "POST", WebhookPath, false, true, []string{"X-GitHub-Event", "push", "X-Hub-Signature-256", sign(fuzzSecret, string(body))}
	},
	// 6: the history of cluster seg with the body as limit.
	func(seg string, body []byte) (string, string, bool, bool, []string) {
		return "GET", "/api/v1/clusters/" + url.PathEscape(seg) + "/history?limit=" + url.QueryEscape(string(body)), true, false, nil
	},
	// 7: delete cluster seg, with the body as If-Match.
	func(seg string, body []byte) (string, string, bool, bool, []string) {
		return "DELETE", "/api/v1/clusters/" + url.PathEscape(seg), true, false, []string{"If-Match", headerSafe(body)}
	},
}

const fuzzSecret = "fuzz-webhook-secret"

// headerSafe keeps the printable ASCII of b, at most 100 bytes: what a header can carry.
func headerSafe(b []byte) string {
	out := make([]byte, 0, len(b))
	for _, c := range b {
		if c >= 0x20 && c < 0x7f && len(out) < 100 {
			out = append(out, c)
		}
	}
	return string(out)
}

// FuzzAPIRequest sends arbitrary path segments, query values, headers and bodies to
// the API's write and agent routes, on a real store and Git repository. Seeds:
// testdata/fuzz/FuzzAPIRequest/.
//
// Properties: the hub never answers 5xx; every error is an ErrorResponse whose code
// has the response's status and a message; a refused request changes nothing (Git
// head, clusters, app states, events).
func FuzzAPIRequest(f *testing.F) {
	h := newTestHub(f, f.TempDir(), withQuietLog(), withWebhookSecret(fuzzSecret), withHold(10*time.Millisecond))
	agentToken := h.register(f, "prod-eu")
	f.Fuzz(func(t *testing.T, route uint8, seg string, body []byte) {
		if int(route)%len(fuzzRoutes) == 7 && seg == "prod-eu" {
			t.Skip("deleting the agent's own cluster would refuse every later report")
		}
		method, target, admin, sendBody, hdr := fuzzRoutes[int(route)%len(fuzzRoutes)](seg, body)
		token := agentToken
		if admin {
			token = janeToken
		}
		var b any
		if sendBody {
			b = body
		}
		before := h.snapshot(t)
		r := h.do(t, method, target, token, b, hdr...)
		if r.status >= 500 {
			t.Fatalf("%s %s: %d %s", method, target, r.status, r.body)
		}
		if r.status < 400 {
			return
		}
		var e apiv1.ErrorResponse
		if err := json.Unmarshal(r.body, &e); err != nil {
			t.Fatalf("%s %s: %d with a body that is no ErrorResponse: %v: %q", method, target, r.status, err, r.body)
		}
		if e.Code.HTTPStatus() != r.status || e.Message == "" {
			t.Fatalf("%s %s: status %d with %+v", method, target, r.status, e)
		}
		if r.status == http.StatusMethodNotAllowed {
			return
		}
		if after := h.snapshot(t); after != before {
			t.Fatalf("%s %s refused with %+v changed the hub: %+v -> %+v", method, target, e, before, after)
		}
	})
}
