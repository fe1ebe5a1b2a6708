package hubapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
	"github.com/outpost-gitops/outpost/internal/hubapi"
	"github.com/outpost-gitops/outpost/internal/hubapi/hubapitest"
)

const token = "secret-admin-token"

func fastOptions() hubapi.Options {
	return hubapi.Options{RetryWaitMin: time.Millisecond, RetryWaitMax: 5 * time.Millisecond}
}

func newClient(t *testing.T, url string, opts hubapi.Options) *hubapi.Client {
	t.Helper()
	c, err := hubapi.New(url, token, opts)
	if err != nil {
		t.Fatalf("hubapi.New(%q): %v", url, err)
	}
	return c
}

func TestRoutesAgainstTheFakeHub(t *testing.T) {
	h := hubapitest.New(nil)
	h.AddToken(token, "ada")
	h.SeedFleet()
	srv := httptest.NewServer(h.Handler())
	defer srv.Close()
	c := newClient(t, srv.URL+"/", fastOptions())
	ctx := context.Background()

	list, err := c.ListClusters(ctx)
	if err != nil || len(list.Clusters) != 2 || list.Clusters[0].Name != "prod-eu" || list.Clusters[0].Summary.Drifted != 1 {
		t.Fatalf("ListClusters = %+v, %v", list, err)
	}
	cl, err := c.GetCluster(ctx, "staging")
	if err != nil || cl.Labels["env"] != "staging" {
		t.Errorf("GetCluster = %+v, %v", cl, err)
	}
	m, err := c.Matrix(ctx)
	if err != nil || m.Clusters[0].Apps["web"].Drifted != 1 || m.Clusters[0].Apps["web"].DesiredVersion != "1.4.3" {
		t.Errorf("Matrix = %+v, %v", m, err)
	}
	st, err := c.ClusterStatus(ctx, "prod-eu")
	if err != nil || len(st.Apps) != 3 || st.Apps[0].Error == nil || len(st.Apps[2].Drift) != 1 {
		t.Errorf("ClusterStatus = %+v, %v", st, err)
	}
	if got := string(st.Apps[2].Drift[0].Fields[0].Live); got != "5" {
		t.Errorf("drift live value = %s, want 5", got)
	}

	rev := h.Revision()
	res, err := c.SetVersion(ctx, "prod-eu", "web", "1.4.4", hubapi.WriteOptions{IfMatch: rev})
	if err != nil || !res.Changed || res.PreviousVersion != "1.4.3" || res.Revision == rev {
		t.Errorf("SetVersion = %+v, %v", res, err)
	}
	res, err = c.Rollback(ctx, "prod-eu", "web", hubapi.WriteOptions{})
	if err != nil || res.Version != "1.4.3" {
		t.Errorf("Rollback = %+v, %v", res, err)
	}
	res, err = c.UnsetApp(ctx, "staging", "web", hubapi.WriteOptions{IfMatch: `"` + h.Revision() + `"`})
	if err != nil || !res.Changed || res.Version != "" {
		t.Errorf("UnsetApp = %+v, %v", res, err)
	}
	bulk, err := c.Bulk(ctx, "web", apiv1.BulkRequest{Action: apiv1.BulkSet, Version: "1.4.4", Selector: "env in (prod)", DryRun: true}, hubapi.WriteOptions{})
	if err != nil || !bulk.DryRun || bulk.Committed || len(bulk.Changes) != 1 || bulk.Changes[0].Cluster != "prod-eu" {
		t.Errorf("Bulk = %+v, %v", bulk, err)
	}
	hl, err := c.History(ctx, "prod-eu", hubapi.HistoryQuery{App: "web", Limit: 2})
	if err != nil || len(hl.Entries) != 2 || hl.Entries[0].Message != "rollback web on prod-eu to 1.4.3" {
		t.Errorf("History = %+v, %v", hl, err)
	}
	reg, err := c.RegisterCluster(ctx, apiv1.RegisterClusterRequest{Name: "prod-us", Labels: map[string]string{"env": "prod"}})
	if err != nil || reg.Token == "" || reg.Cluster.Name != "prod-us" {
		t.Errorf("RegisterCluster = %+v, %v", reg, err)
	}
	if err := c.DeleteCluster(ctx, "prod-us", hubapi.WriteOptions{}); err != nil {
		t.Errorf("DeleteCluster: %v", err)
	}
	ev, err := c.Events(ctx, hubapi.EventQuery{Cluster: "staging", Limit: 1})
	if err != nil || len(ev.Events) != 1 || ev.Events[0].Cluster != "staging" {
		t.Errorf("Events = %+v, %v", ev, err)
	}

	// What went over the wire.
	want := []string{
		"GET /api/v1/clusters", "GET /api/v1/clusters/staging", "GET /api/v1/matrix",
		"GET /api/v1/clusters/prod-eu/status", "PUT /api/v1/clusters/prod-eu/apps/web",
		"POST /api/v1/clusters/prod-eu/apps/web/rollback", "DELETE /api/v1/clusters/staging/apps/web",
		"POST /api/v1/apps/web/bulk", "GET /api/v1/clusters/prod-eu/history?app=web&limit=2", "POST /api/v1/clusters",
		"DELETE /api/v1/clusters/prod-us", "GET /api/v1/events?cluster=staging&limit=1",
	}
	reqs := h.Requests()
	if len(reqs) != len(want) {
		t.Fatalf("%d requests, want %d", len(reqs), len(want))
	}
	for i, r := range reqs {
		got := r.Method + " " + r.Path
		if r.Query != "" {
			got += "?" + r.Query
		}
		if got != want[i] {
			t.Errorf("request %d = %s, want %s", i, got, want[i])
		}
		if r.Author != "ada" || r.Header.Get("Accept") != "application/json" {
			t.Errorf("request %d: author %q, Accept %q", i, r.Author, r.Header.Get("Accept"))
		}
	}
	if got := reqs[4].Header.Get("If-Match"); got != `"`+rev+`"` {
		t.Errorf("If-Match of a bare revision = %q, want it quoted", got)
	}
	if got := reqs[6].Header.Get("If-Match"); strings.Count(got, `"`) != 2 {
		t.Errorf("If-Match of a quoted revision = %q, want it quoted once", got)
	}
	if ct := reqs[4].Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type of a body = %q", ct)
	}
}

// scripted answers each request with the next status of a script (200 {} after it),
// counting requests per path.
type scripted struct {
	mu       sync.Mutex
	statuses []int
	count    int
}

func (s *scripted) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	status := http.StatusOK
	if s.count < len(s.statuses) {
		status = s.statuses[s.count]
	}
	s.count++
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if status != http.StatusOK {
		w.WriteHeader(status)
		code := map[int]string{500: "internal", 503: "unavailable", 429: "unavailable"}[status]
		_ = json.NewEncoder(w).Encode(apiv1.ErrorResponse{Code: apiv1.ErrorCode(code), Message: "scripted"})
		return
	}
	_, _ = io.WriteString(w, "{}")
}

func TestRetries(t *testing.T) {
	type call func(ctx context.Context, c *hubapi.Client) error
	get := func(ctx context.Context, c *hubapi.Client) error { _, err := c.Matrix(ctx); return err }
	put := func(ctx context.Context, c *hubapi.Client) error {
		_, err := c.SetVersion(ctx, "a", "b", "1", hubapi.WriteOptions{})
		return err
	}
	rollback := func(ctx context.Context, c *hubapi.Client) error {
		_, err := c.Rollback(ctx, "a", "b", hubapi.WriteOptions{})
		return err
	}
	register := func(ctx context.Context, c *hubapi.Client) error {
		_, err := c.RegisterCluster(ctx, apiv1.RegisterClusterRequest{Name: "a"})
		return err
	}
	tests := map[string]struct {
		call     call
		statuses []int
		attempts int
		status   int // of the final *APIError; 0 for success
	}{
		"GET retried on 503":           {get, []int{503, 503}, 3, 0},
		"GET retried on 502 and 504":   {get, []int{502, 504}, 3, 0},
		"GET retried on 429":           {get, []int{429}, 2, 0},
		"GET gives up after 3 retries": {get, []int{503, 503, 503, 503, 503}, 4, 503},
		"GET not retried on 500":       {get, []int{500}, 1, 500},
		"GET not retried on 404":       {get, []int{404}, 1, 404},
		"PUT retried on 502":           {put, []int{502}, 2, 0},
		"rollback retried on 503":      {rollback, []int{503}, 2, 0},
		"rollback not retried on 502":  {rollback, []int{502}, 1, 502},
		"rollback not retried on 504":  {rollback, []int{504}, 1, 504},
		"register not retried on 500":  {register, []int{500}, 1, 500},
		"register retried on 429":      {register, []int{429}, 2, 0},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := &scripted{statuses: tc.statuses}
			srv := httptest.NewServer(s)
			defer srv.Close()
			err := tc.call(context.Background(), newClient(t, srv.URL, fastOptions()))
			if s.count != tc.attempts {
				t.Errorf("%d attempts, want %d", s.count, tc.attempts)
			}
			var apiErr *hubapi.APIError
			switch {
			case tc.status == 0 && err != nil:
				t.Errorf("error %v, want success", err)
			case tc.status != 0 && (!errors.As(err, &apiErr) || apiErr.Status != tc.status):
				t.Errorf("error %v, want an *APIError with status %d", err, tc.status)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	t.Run("hub error", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"code":"invalid","message":"\"1.4 beta\" must hold only letters,\ndigits","field":"version"}`)
		}))
		defer srv.Close()
		_, err := newClient(t, srv.URL, fastOptions()).SetVersion(context.Background(), "a", "b", "1", hubapi.WriteOptions{})
		var apiErr *hubapi.APIError
		if !errors.As(err, &apiErr) || apiErr.Code != apiv1.CodeInvalid || apiErr.Field != "version" || apiErr.Status != 400 {
			t.Fatalf("error %#v", err)
		}
		if got, want := err.Error(), `invalid: version: "1.4 beta" must hold only letters, digits (HTTP 400)`; got != want {
			t.Errorf("Error() = %q, want %q (one line)", got, want)
		}
	})
	t.Run("proxy error", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusForbidden)
			_, _ = io.WriteString(w, "<html>denied by proxy</html>")
		}))
		defer srv.Close()
		_, err := newClient(t, srv.URL, fastOptions()).Matrix(context.Background())
		var apiErr *hubapi.APIError
		if !errors.As(err, &apiErr) || apiErr.Code != "" || !apiErr.Unauthorized() {
			t.Fatalf("error %#v", err)
		}
		if got := err.Error(); got != "forbidden: <html>denied by proxy</html> (HTTP 403)" {
			t.Errorf("Error() = %q", got)
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		srv := httptest.NewServer(nil)
		url := srv.URL
		srv.Close()
		_, err := newClient(t, url, fastOptions()).Rollback(context.Background(), "a", "b", hubapi.WriteOptions{})
		var un *hubapi.UnreachableError
		if !errors.As(err, &un) || !strings.Contains(err.Error(), "connection refused") {
			t.Fatalf("error %v, want an *UnreachableError", err)
		}
		if strings.Contains(err.Error(), token) {
			t.Errorf("the error shows the token: %v", err)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-release }))
		defer srv.Close()
		defer close(release)
		opts := fastOptions()
		opts.Timeout = 100 * time.Millisecond
		_, err := newClient(t, srv.URL, opts).Matrix(context.Background())
		var un *hubapi.UnreachableError
		if !errors.As(err, &un) || !strings.Contains(err.Error(), "no answer to GET /api/v1/matrix within 100ms") {
			t.Fatalf("error %v, want an *UnreachableError naming the timeout", err)
		}
	})
	t.Run("canceled by the caller", func(t *testing.T) {
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-release }))
		defer srv.Close()
		defer close(release)
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(50*time.Millisecond, cancel)
		_, err := newClient(t, srv.URL, fastOptions()).Matrix(ctx)
		var un *hubapi.UnreachableError
		if !errors.Is(err, context.Canceled) || errors.As(err, &un) {
			t.Fatalf("error %v, want context.Canceled and not unreachable", err)
		}
	})
}

func TestNew(t *testing.T) {
	tests := map[string]struct {
		url, token string
		ok         bool
	}{
		"http":          {"http://hub:8080", token, true},
		"https, prefix": {"https://example.com/outpost/", token, true},
		"no token":      {"http://hub", "", true},
		"ftp":           {"ftp://hub", token, false},
		"no host":       {"http://", token, false},
		"no scheme":     {"hub:8080", token, false},
		"credentials":   {"https://user:pw@hub", token, false},
		"query":         {"https://hub/?x=1", token, false},
		"token newline": {"https://hub", "a\nb", false},
		"not a URL":     {"http://[::1", token, false},
		"bad, with pw":  {"http://user:pw@[::1", token, false},
		"ftp with pw":   {"ftp://user:pw@hub", token, false},
	}
	for name, tc := range tests {
		_, err := hubapi.New(tc.url, tc.token, hubapi.Options{})
		if (err == nil) != tc.ok {
			t.Errorf("%s: New(%q) error %v, want ok %v", name, tc.url, err, tc.ok)
		}
		if err != nil && strings.Contains(err.Error(), "pw") {
			t.Errorf("%s: the error shows the password: %v", name, err)
		}
	}
}

func TestPathPrefixAndAgentRoutes(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Method+" "+r.URL.RequestURI())
		switch r.URL.Path {
		case "/outpost" + apiv1.ReportPath:
			_, _ = io.WriteString(w, `{"stored":["web"]}`)
		case "/outpost" + apiv1.DesiredPath:
			_, _ = io.WriteString(w, `{"revision":"`+strings.Repeat("b", 40)+`","changed":true}`)
		}
	}))
	defer srv.Close()
	c := newClient(t, srv.URL+"/outpost/", fastOptions())
	ctx := context.Background()
	rr, err := c.Report(ctx, &apiv1.StatusReport{Cluster: "prod-eu"})
	if err != nil || len(rr.Stored) != 1 {
		t.Errorf("Report = %+v, %v", rr, err)
	}
	d, err := c.Desired(ctx, "prod-eu", strings.Repeat("a", 40))
	if err != nil || !d.Changed {
		t.Errorf("Desired = %+v, %v", d, err)
	}
	want := []string{
		"POST /outpost/api/v1/agent/report",
		"GET /outpost/api/v1/agent/desired?cluster=prod-eu&since=" + strings.Repeat("a", 40),
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("requests:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// The error taxonomy as the hub's callers see it: for each answer, whether the same
// call may succeed later (retry), with a rotated token (auth), or never (give up).
func TestErrorTaxonomy(t *testing.T) {
	type class struct{ retryable, unauthorized, rejected bool }
	retry, auth, giveUp, local := class{retryable: true}, class{unauthorized: true}, class{rejected: true}, class{}
	tests := map[string]struct {
		status int // of the hub's answer; 0: no answer (connection refused)
		want   class
	}{
		"400 invalid":         {400, giveUp},
		"401 unknown token":   {401, auth},
		"403 not allowed":     {403, auth},
		"404 not found":       {404, giveUp},
		"409 conflict":        {409, giveUp},
		"413 too large":       {413, giveUp},
		"429 too many":        {429, retry},
		"500 internal":        {500, retry},
		"502 bad gateway":     {502, retry},
		"503 unavailable":     {503, retry},
		"504 gateway timeout": {504, retry},
		"unreachable":         {0, retry},
	}
	opts := fastOptions()
	opts.RetryMax = -1
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(&scripted{statuses: []int{tc.status}})
			url := srv.URL
			if tc.status == 0 {
				srv.Close()
			}
			defer srv.Close()
			_, err := newClient(t, url, opts).Report(context.Background(), &apiv1.StatusReport{Cluster: "dev"})
			if err == nil {
				t.Fatal("no error")
			}
			err = fmt.Errorf("wrapped by a caller: %w", err)
			got := class{hubapi.IsRetryable(err), hubapi.IsUnauthorized(err), hubapi.IsRejected(err)}
			if got != tc.want {
				t.Errorf("%v: (retryable, unauthorized, rejected) = %+v, want %+v", err, got, tc.want)
			}
		})
	}
	for _, err := range []error{errors.New("reading the hub token: no such file"), context.Canceled} {
		if got := (class{hubapi.IsRetryable(err), hubapi.IsUnauthorized(err), hubapi.IsRejected(err)}); got != local {
			t.Errorf("%v: classified %+v, want no class (not an answer of the hub)", err, got)
		}
	}
}

// Options.Token is read for every call (a rotated token is used at once) and
// Options.Header adds its headers; a token that cannot be read fails the call without
// a request.
func TestTokenSourceAndHeaderHook(t *testing.T) {
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Header.Get("Authorization")+" "+r.Header.Get("Traceparent"))
		mu.Unlock()
		_, _ = io.WriteString(w, `{"stored":[]}`)
	}))
	defer srv.Close()
	tok, tokErr := "first\n", error(nil)
	opts := fastOptions()
	opts.Token = func() (string, error) { return tok, tokErr }
	opts.Header = func(_ context.Context, h http.Header) { h.Set("Traceparent", "00-trace") }
	c, err := hubapi.New(srv.URL, "", opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, next := range []string{"second", "", ""} {
		if _, err := c.Report(ctx, &apiv1.StatusReport{Cluster: "dev"}); err != nil {
			t.Fatal(err)
		}
		tok = next
	}
	tokErr = errors.New("open /var/run/token: permission denied")
	if _, err := c.Report(ctx, &apiv1.StatusReport{Cluster: "dev"}); err == nil || !strings.Contains(err.Error(), "reading the hub token") ||
		!errors.Is(err, tokErr) {
		t.Errorf("unreadable token: error %v", err)
	}
	tok, tokErr = "a\nb", nil
	if _, err := c.Report(ctx, &apiv1.StatusReport{Cluster: "dev"}); err == nil || strings.Contains(err.Error(), "a\nb") {
		t.Errorf("two-line token: error %v", err)
	}
	want := []string{"Bearer first 00-trace", "Bearer second 00-trace", " 00-trace"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("requests had %q, want %q", got, want)
	}
}

// A failed attempt is the caller's to report: go-retryablehttp's records (its
// "request failed" on a cancelled long-poll at shutdown, its retries) reach the
// logger at Debug only.
func TestRetryLogIsDebugOnly(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // a long-poll held until the agent shuts down
	}))
	t.Cleanup(srv.Close)
	var buf strings.Builder
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return buf.Write(p)
	}), &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, err := hubapi.New(srv.URL, "token", hubapi.Options{Logger: log, RetryMax: 2, RetryWaitMin: time.Millisecond, RetryWaitMax: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if _, err := c.Desired(ctx, "prod-eu", ""); err == nil {
		t.Fatal("no error from a long-poll cancelled at shutdown")
	}
	mu.Lock()
	defer mu.Unlock()
	out := buf.String()
	if !strings.Contains(out, "level=DEBUG") || strings.Contains(out, "level=ERROR") || strings.Contains(out, "level=INFO") || strings.Contains(out, "level=WARN") {
		t.Fatalf("retry log:\n%s\nwant Debug records only", out)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
