package web_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
	"github.com/outpost-gitops/outpost/hub/web"
	"github.com/outpost-gitops/outpost/internal/hubapi/hubapitest"
)

// fleet returns a fake hub holding the seeded fleet (2 clusters, 3 apps, web drifted
// and payments failed on prod-eu); it implements web.Source.
func fleet() *hubapitest.Hub {
	h := hubapitest.New(nil)
	h.SeedFleet()
	return h
}

var _ web.Source = (*hubapitest.Hub)(nil)

func serve(t *testing.T, src web.Source, opts web.Options) *httptest.Server {
	t.Helper()
	h, err := web.New(src, opts)
	if err != nil {
		t.Fatalf("web.New: %v", err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", url, err)
	}
	return resp, string(b)
}

func parse(t *testing.T, doc string) *html.Node {
	t.Helper()
	n, err := html.Parse(strings.NewReader(doc))
	if err != nil {
		t.Fatalf("parse HTML: %v", err)
	}
	return n
}

// find returns the element nodes under n for which match is true, in document order.
func find(n *html.Node, match func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	for d := range n.Descendants() {
		if d.Type == html.ElementNode && match(d) {
			out = append(out, d)
		}
	}
	return out
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// text returns the text under n with runs of white space collapsed.
func text(n *html.Node) string {
	var b strings.Builder
	for d := range n.Descendants() {
		if d.Type == html.TextNode {
			b.WriteString(d.Data)
			b.WriteString(" ")
		}
	}
	return strings.Join(strings.Fields(b.String()), " ")
}

func checkSecurityHeaders(t *testing.T, resp *http.Response) {
	t.Helper()
	csp := resp.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("%s: Content-Security-Policy %q lacks %q", resp.Request.URL.Path, csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
		t.Errorf("%s: Content-Security-Policy %q allows inline or eval", resp.Request.URL.Path, csp)
	}
	if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("%s: X-Content-Type-Options = %q, want nosniff", resp.Request.URL.Path, got)
	}
}

// matrixCell returns the text of the matrix cell of app on cluster.
func matrixCell(t *testing.T, doc *html.Node, cluster, app string) string {
	t.Helper()
	rows := find(doc, func(n *html.Node) bool { return n.Data == "tr" })
	for _, row := range rows {
		heads := find(row, func(n *html.Node) bool { return n.Data == "th" && attr(n, "scope") == "row" })
		if len(heads) == 0 || !strings.HasPrefix(text(heads[0]), cluster) {
			continue
		}
		cells := find(row, func(n *html.Node) bool { return n.Data == "td" && attr(n, "data-app") == app })
		if len(cells) == 1 {
			return text(cells[0])
		}
	}
	t.Fatalf("no matrix cell for %s on %s", app, cluster)
	return ""
}

func TestOverviewShowsMatrixDriftErrorsAndEvents(t *testing.T) {
	srv := serve(t, fleet(), web.Options{})
	resp, body := get(t, srv.URL+"/")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /: %s\n%s", resp.Status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type = %q", ct)
	}
	checkSecurityHeaders(t, resp)
	doc := parse(t, body)

	cells := map[[2]string][]string{
		{"prod-eu", "web"}:      {"1.4.2", "1.4.3", "Synced", "Healthy", "1 drifted"},
		{"prod-eu", "payments"}: {"2.0.0", "Failed", "Health unknown"},
		{"prod-eu", "search"}:   {"0.9.1", "Synced", "Healthy"},
		{"staging", "web"}:      {"1.5.0-rc.1", "Syncing", "Progressing"},
		{"staging", "payments"}: {"2.1.0", "Synced", "Healthy"},
	}
	for key, wants := range cells {
		got := matrixCell(t, doc, key[0], key[1])
		for _, w := range wants {
			if !strings.Contains(got, w) {
				t.Errorf("cell %s on %s = %q, want it to contain %q", key[1], key[0], got, w)
			}
		}
	}
	// staging has no search: an empty cell, not a data cell.
	for _, row := range find(doc, func(n *html.Node) bool { return n.Data == "tr" }) {
		if strings.HasPrefix(text(row), "staging") {
			if c := find(row, func(n *html.Node) bool { return attr(n, "data-app") == "search" }); len(c) != 0 {
				t.Errorf("staging shows a search cell: %q", text(c[0]))
			}
		}
	}

	page := text(doc)
	for _, want := range []string{
		// drift details: object, field paths, desired → live, managers, operation/subresource
		"Deployment.apps/shop/web", "spec.replicas", "3 → 5", "kubectl Update /scale", "(observed)",
		"spec.template.spec.containers[name=web].image", `"nginx:1.27" → "nginx:1.28"`, "kubectl-edit",
		// the failure with where it happened
		"Sync failed at render:", "mapping values are not allowed", "apps/payments/deployment.yaml:12",
		// labels, events
		"env=prod", "region=eu", "1 object(s) drifted",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("overview lacks %q", want)
		}
	}
	if got := attr(find(doc, func(n *html.Node) bool { return n.Data == "body" })[0], "data-version"); len(got) != 24 {
		t.Errorf("body data-version = %q, want a 24-digit fingerprint", got)
	}
	// Nothing inline: every script is an external one from this origin.
	for _, s := range find(doc, func(n *html.Node) bool { return n.Data == "script" }) {
		if src := attr(s, "src"); !strings.HasPrefix(src, "/static/") || text(s) != "" {
			t.Errorf("script src=%q with body %q: want only /static/ scripts", src, text(s))
		}
	}
	if n := find(doc, func(n *html.Node) bool { return attr(n, "style") != "" }); len(n) != 0 {
		t.Errorf("%d elements have inline style attributes, which the CSP blocks", len(n))
	}
}

func TestClusterPage(t *testing.T) {
	srv := serve(t, fleet(), web.Options{})
	resp, body := get(t, srv.URL+"/clusters/prod-eu")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /clusters/prod-eu: %s\n%s", resp.Status, body)
	}
	checkSecurityHeaders(t, resp)
	doc := parse(t, body)
	page := text(doc)
	for _, want := range []string{
		"prod-eu", "env=prod", "outpost-agent-prod-eu", "v0.1.0",
		"web", "1.4.2", "1.4.3", "payments", "search", "0.9.1", "Failed", "Synced",
		"spec.replicas", "kubectl", "apps/payments/deployment.yaml:12", "1.6s",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("cluster page lacks %q", want)
		}
	}
	if strings.Contains(page, "staging") {
		t.Errorf("the prod-eu page shows staging")
	}
	stream := attr(find(doc, func(n *html.Node) bool { return n.Data == "body" })[0], "data-stream")
	if stream != "/events/stream?cluster=prod-eu" {
		t.Errorf("data-stream = %q", stream)
	}
}

func TestErrorsAndRoutes(t *testing.T) {
	srv := serve(t, fleet(), web.Options{})
	tests := map[string]struct {
		method, path string
		status       int
		contains     string
	}{
		"unknown cluster":    {"GET", "/clusters/nope", 404, "No such cluster"},
		"invalid name":       {"GET", "/clusters/Bad_Name", 404, "Page not found"},
		"dot dot":            {"GET", "/clusters/..%2f..%2fetc", 404, "Page not found"},
		"unknown page":       {"GET", "/nope", 404, "Page not found"},
		"post":               {"POST", "/", 405, "read-only"},
		"unknown asset":      {"GET", "/static/nope.js", 404, "Page not found"},
		"stream bad cluster": {"GET", "/events/stream?cluster=a/b", 400, "not a cluster name"},
		"stream no cluster":  {"GET", "/events/stream?cluster=nope", 404, "no such cluster"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, srv.URL+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status || !strings.Contains(string(b), tc.contains) {
				t.Errorf("%s %s = %s, want %d with %q:\n%s", tc.method, tc.path, resp.Status, tc.status, tc.contains, b)
			}
			checkSecurityHeaders(t, resp)
		})
	}
}

func TestStaticAssets(t *testing.T) {
	srv := serve(t, fleet(), web.Options{})
	_, body := get(t, srv.URL+"/")
	doc := parse(t, body)
	urls := map[string]string{}
	for _, n := range find(doc, func(n *html.Node) bool { return n.Data == "script" || n.Data == "link" }) {
		u := attr(n, "src") + attr(n, "href")
		urls[u[:strings.Index(u, "?")]] = u
	}
	for path, ct := range map[string]string{
		"/static/app.js": "text/javascript; charset=utf-8", "/static/app.css": "text/css; charset=utf-8",
		"/static/favicon.svg": "image/svg+xml",
	} {
		u, ok := urls[path]
		if !ok {
			t.Errorf("the page does not link %s", path)
			continue
		}
		resp, b := get(t, srv.URL+u)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != ct || len(b) == 0 {
			t.Errorf("GET %s = %s %q (%d bytes), want 200 %q", u, resp.Status, resp.Header.Get("Content-Type"), len(b), ct)
		}
		if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "immutable") {
			t.Errorf("GET %s: Cache-Control %q, want immutable for a versioned URL", u, cc)
		}
		resp, _ = get(t, srv.URL+path)
		if cc := resp.Header.Get("Cache-Control"); cc != "no-cache" {
			t.Errorf("GET %s: Cache-Control %q, want no-cache without the version", path, cc)
		}
	}
}

// hostile is a Source whose every string tries to break out of the HTML.
type hostile struct{ *hubapitest.Hub }

const evil = `<script>alert(1)</script>"'><img src=x onerror=alert(2)>`

func (h hostile) Events(ctx context.Context, cluster string, limit int) (*apiv1.EventList, error) {
	return &apiv1.EventList{Events: []apiv1.Event{{
		ID: 1, Cluster: "prod-eu", App: "web", Type: apiv1.EventError, Time: time.Now(), Message: evil,
	}}}, nil
}

func (h hostile) Matrix(ctx context.Context) (*apiv1.Matrix, error) {
	m, err := h.Hub.Matrix(ctx)
	if err != nil {
		return nil, err
	}
	m.Apps = append(m.Apps, evil)
	m.Clusters[0].Labels = map[string]string{"x": evil}
	m.Clusters[0].Apps[evil] = apiv1.MatrixCell{Version: evil, Phase: apiv1.PhaseFailed}
	return m, nil
}

func TestEverythingIsEscaped(t *testing.T) {
	h := fleet()
	srv := serve(t, hostile{h}, web.Options{})
	_, body := get(t, srv.URL+"/")
	if strings.Contains(body, "<script>alert") || strings.Contains(body, "<img src=x") {
		t.Fatalf("the page holds unescaped markup from the Source:\n%s", body)
	}
	if !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Errorf("the page does not show the escaped text")
	}
}

// failing is a Source that cannot read its store.
type failing struct{ *hubapitest.Hub }

func (failing) Matrix(context.Context) (*apiv1.Matrix, error) {
	return nil, errors.New("database is locked")
}

func TestSourceErrorIsA503ThatPolls(t *testing.T) {
	srv := serve(t, failing{fleet()}, web.Options{FallbackPoll: 3 * time.Second})
	resp, body := get(t, srv.URL+"/")
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "database is locked") {
		t.Fatalf("GET / = %s:\n%s", resp.Status, body)
	}
	b := find(parse(t, body), func(n *html.Node) bool { return n.Data == "body" })[0]
	if attr(b, "data-poll-ms") != "3000" || attr(b, "data-stream") != "" {
		t.Errorf("error page body: data-poll-ms=%q data-stream=%q, want 3000 and none", attr(b, "data-poll-ms"), attr(b, "data-stream"))
	}
	resp, _ = get(t, srv.URL+"/events/stream")
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("GET /events/stream = %s, want 503", resp.Status)
	}
}

// sse reads the events of a stream.
type sse struct {
	events chan map[string]string
	resp   *http.Response
}

func openStream(t *testing.T, url, lastEventID string) *sse {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream; charset=utf-8" {
		t.Fatalf("GET %s: Content-Type %q", url, ct)
	}
	s := &sse{events: make(chan map[string]string, 16), resp: resp}
	go func() {
		defer close(s.events)
		r := bufio.NewReader(resp.Body)
		ev := map[string]string{}
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimRight(line, "\n")
			if line == "" {
				if len(ev) > 0 {
					s.events <- ev
				}
				ev = map[string]string{}
				continue
			}
			k, v, _ := strings.Cut(line, ":")
			ev[k] = strings.TrimPrefix(v, " ")
		}
	}()
	return s
}

// next returns the next event that is not a comment, or nil when none comes within d
// or the stream ended.
func (s *sse) next(d time.Duration) map[string]string {
	timeout := time.After(d)
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				return nil
			}
			if _, comment := ev[""]; comment && len(ev) == 1 {
				continue
			}
			if _, retry := ev["retry"]; retry && len(ev) == 1 {
				continue
			}
			return ev
		case <-timeout:
			return nil
		}
	}
}

func pageVersion(t *testing.T, url string) string {
	t.Helper()
	_, body := get(t, url)
	return attr(find(parse(t, body), func(n *html.Node) bool { return n.Data == "body" })[0], "data-version")
}

func TestStreamSendsChangedOnlyWhenTheDataChanges(t *testing.T) {
	h := fleet()
	srv := serve(t, h, web.Options{PollInterval: 20 * time.Millisecond, KeepAlive: 50 * time.Millisecond})
	v0 := pageVersion(t, srv.URL+"/")

	s := openStream(t, srv.URL+"/events/stream?since="+v0, "")
	if ev := s.next(300 * time.Millisecond); ev != nil {
		t.Fatalf("event %v although nothing changed since the page was rendered", ev)
	}

	// A new report changes the matrix and the events.
	st := apiv1.AppStatus{App: "search", Version: "0.9.2", Phase: apiv1.PhaseSynced, Health: apiv1.Health{Status: apiv1.HealthCurrent}}
	if err := h.Report("prod-eu", st, nil); err != nil {
		t.Fatal(err)
	}
	ev := s.next(5 * time.Second)
	v1 := pageVersion(t, srv.URL+"/")
	if ev == nil || ev["event"] != "changed" || ev["id"] != v1 || ev["data"] != v1 || v1 == v0 {
		t.Fatalf("after a report: event %v, want changed with id and data %s (was %s)", ev, v1, v0)
	}
	if ev := s.next(300 * time.Millisecond); ev != nil {
		t.Fatalf("a second event %v without a change", ev)
	}

	// A reconnecting EventSource sends the last id: nothing is resent, and a stale
	// id gets the current fingerprint at once.
	if ev := openStream(t, srv.URL+"/events/stream?since="+v0, v1).next(300 * time.Millisecond); ev != nil {
		t.Errorf("reconnect with the current id: event %v", ev)
	}
	if ev := openStream(t, srv.URL+"/events/stream", v0).next(2 * time.Second); ev == nil || ev["id"] != v1 {
		t.Errorf("reconnect with a stale id: event %v, want changed %s", ev, v1)
	}
}

func TestClusterStreamIgnoresOtherClustersAndHeartbeats(t *testing.T) {
	h := fleet()
	srv := serve(t, h, web.Options{PollInterval: 20 * time.Millisecond})
	v0 := pageVersion(t, srv.URL+"/clusters/staging")
	s := openStream(t, srv.URL+"/events/stream?cluster=staging&since="+v0, "")

	st := apiv1.AppStatus{App: "search", Version: "0.9.2", Phase: apiv1.PhaseSynced, Health: apiv1.Health{Status: apiv1.HealthCurrent}}
	if err := h.Report("prod-eu", st, nil); err != nil {
		t.Fatal(err)
	}
	if ev := s.next(300 * time.Millisecond); ev != nil {
		t.Fatalf("the staging stream sent %v for a report of prod-eu", ev)
	}
	st.Version = "0.9.3"
	if err := h.Report("staging", st, nil); err != nil {
		t.Fatal(err)
	}
	if ev := s.next(5 * time.Second); ev == nil || ev["event"] != "changed" {
		t.Fatalf("no changed event after a staging report: %v", ev)
	}
}

func TestStreamEndsAfterMaxAge(t *testing.T) {
	srv := serve(t, fleet(), web.Options{PollInterval: 20 * time.Millisecond, StreamMaxAge: 200 * time.Millisecond})
	s := openStream(t, srv.URL+"/events/stream", "")
	if ev := s.next(2 * time.Second); ev == nil || ev["event"] != "changed" {
		t.Fatalf("first event without since = %v, want the current fingerprint", ev)
	}
	select {
	case _, ok := <-s.events:
		if ok {
			t.Fatal("unexpected event")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the stream did not end after StreamMaxAge")
	}
}

// TestStreamOutlivesServerReadTimeout: an event stream stays open past the server's
// ReadTimeout, until StreamMaxAge. The security review suspected streams ended at the
// ReadTimeout (L6); this test showed they did not (it passes without the stream's
// explicit clearing of the read deadline too) and keeps it so.
func TestStreamOutlivesServerReadTimeout(t *testing.T) {
	h, err := web.New(fleet(), web.Options{KeepAlive: 200 * time.Millisecond, PollInterval: 100 * time.Millisecond, StreamMaxAge: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ReadTimeout = time.Second
	srv.Start()
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL + "/events/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	start := time.Now()
	buf := make([]byte, 256)
	for time.Since(start) < 3*time.Second {
		if _, err := resp.Body.Read(buf); err != nil {
			t.Fatalf("stream ended after %s (server ReadTimeout 1s): %v", time.Since(start).Round(time.Millisecond), err)
		}
	}
}
