package httpapi

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
	"github.com/outpost-gitops/outpost/hub/gitstore"
)

func TestParseAdminTokens(t *testing.T) {
	const tok = "0123456789abcdef"
	cases := map[string]struct {
		file    string
		token   string
		want    gitstore.Author
		errLine int // > 0: a *TokenFileError on that line
	}{
		"bare token":           {file: tok + "\n", token: tok, want: gitstore.Author{Name: "admin", Email: "admin@outpost.invalid"}},
		"bare name":            {file: "ci-bot:" + tok, token: tok, want: gitstore.Author{Name: "ci-bot", Email: "ci-bot@outpost.invalid"}},
		"name with spaces":     {file: "Jane Doe:" + tok, token: tok, want: gitstore.Author{Name: "Jane Doe", Email: "jane.doe@outpost.invalid"}},
		"name and email":       {file: "Jane Doe <jane@example.com>:" + tok, token: tok, want: gitstore.Author{Name: "Jane Doe", Email: "jane@example.com"}},
		"email only":           {file: "jane@example.com:" + tok, token: tok, want: gitstore.Author{Name: "jane@example.com", Email: "jane@example.com"}},
		"comments and blanks":  {file: "# people\n\n  ci:" + tok + "  \n", token: tok, want: gitstore.Author{Name: "ci", Email: "ci@outpost.invalid"}},
		"CRLF":                 {file: "ci:" + tok + "\r\n", token: tok, want: gitstore.Author{Name: "ci", Email: "ci@outpost.invalid"}},
		"short token":          {file: "# x\nci:short", errLine: 2},
		"duplicate token":      {file: "a:" + tok + "\nb:" + tok, errLine: 2},
		"empty name":           {file: ":" + tok, errLine: 1},
		"angle brackets":       {file: "Jane <jane:" + tok, errLine: 1},
		"whitespace in token":  {file: "ci:0123456789 abcdef", errLine: 1},
		"no token at all":      {file: "# nothing\n", errLine: 1},
		"control char in name": {file: "ci\x07:" + tok, errLine: 1},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			at, err := ParseAdminTokens(strings.NewReader(tc.file))
			if tc.errLine > 0 {
				var tfe *TokenFileError
				if !errors.As(err, &tfe) || tfe.Line != tc.errLine {
					t.Fatalf("err = %v, want a TokenFileError on line %d", err, tc.errLine)
				}
				if strings.Contains(err.Error(), tok) {
					t.Errorf("the error shows the token: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, ok := at.lookup(tc.token)
			if !ok || got != tc.want {
				t.Errorf("lookup = %+v, %v; want %+v", got, ok, tc.want)
			}
			if _, ok := at.lookup(tc.token + "x"); ok {
				t.Error("a longer token matched")
			}
		})
	}
}

func TestDrainAnswersHeldLongPolls(t *testing.T) {
	h := newTestHub(t, t.TempDir())
	tok := h.register(t, "prod-eu")
	if r := h.do(t, "GET", "/readyz", "", nil); r.status != http.StatusOK {
		t.Fatalf("/readyz: %d %s", r.status, r.body)
	}
	poll := h.longPoll(tok, "prod-eu", h.git.Head())
	h.waitForWaiters(t, 1)
	h.api.Drain()
	select {
	case p := <-poll:
		wantError(t, p.r, http.StatusServiceUnavailable, apiv1.CodeUnavailable, "")
		if p.r.header.Get("Retry-After") == "" {
			t.Error("no Retry-After")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Drain did not answer the held long-poll")
	}
	wantError(t, h.do(t, "GET", apiv1.DesiredPath+"?cluster=prod-eu&since="+h.git.Head(), tok, nil), http.StatusServiceUnavailable, apiv1.CodeUnavailable, "")
	wantError(t, h.do(t, "GET", "/readyz", "", nil), http.StatusServiceUnavailable, apiv1.CodeUnavailable, "")
	if r := h.do(t, "GET", "/healthz", "", nil); r.status != http.StatusOK {
		t.Errorf("/healthz: %d", r.status)
	}
}

func TestMetrics(t *testing.T) {
	h := newTestHub(t, t.TempDir(), withMetrics())
	tok := h.register(t, "prod-eu")
	decode[apiv1.ReportResponse](t, h.do(t, "POST", apiv1.ReportPath, tok, report("prod-eu", "web", "1.0.0", 1, apiv1.PhaseSynced)), http.StatusOK)
	decode[apiv1.ReportResponse](t, h.do(t, "POST", apiv1.ReportPath, tok, report("prod-eu", "web", "1.0.0", 1, apiv1.PhaseSynced)), http.StatusOK)
	h.do(t, "GET", "/api/v1/clusters", "", nil)
	poll := h.longPoll(tok, "prod-eu", h.git.Head())
	h.waitForWaiters(t, 1)
	r := h.do(t, "GET", "/metrics", "", nil)
	if r.status != http.StatusOK {
		t.Fatalf("/metrics: %d", r.status)
	}
	body := string(r.body)
	for _, want := range [][]string{
		{"outpost_hub_http_requests_total", `http_request_method="POST"`, `http_response_status_code="200"`, `http_route="POST /api/v1/agent/report"`},
		{"outpost_hub_http_requests_total", `http_response_status_code="401"`, `http_route="GET /api/v1/clusters"`},
		{"outpost_hub_http_request_duration_seconds_bucket", `http_route="POST /api/v1/clusters"`},
		{"outpost_hub_report_apps_total", `result="stored"`},
		{"outpost_hub_report_apps_total", `result="stale"`},
		{"outpost_hub_longpoll_waiting"},
	} {
		if !hasSample(body, want[0], want[1:]...) {
			t.Errorf("/metrics has no sample of %s with %v", want[0], want[1:])
		}
	}
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, "outpost_hub_longpoll_waiting{") && !strings.HasSuffix(l, " 1") {
			t.Errorf("waiting gauge: %s, want 1", l)
		}
	}
	h.api.Drain()
	<-poll
}

// hasSample tells whether a Prometheus exposition has a sample of metric with every
// one of labels.
func hasSample(body, metric string, labels ...string) bool {
	for _, l := range strings.Split(body, "\n") {
		if !strings.HasPrefix(l, metric+"{") {
			continue
		}
		ok := true
		for _, lb := range labels {
			ok = ok && strings.Contains(l, lb)
		}
		if ok {
			return true
		}
	}
	return false
}
