package httpapi

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
)

// countingReader counts what the server read of a request body.
type countingReader struct {
	r    io.Reader
	read atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.read.Add(int64(n))
	return n, err
}

// TestAttackUnsignedWebhookBodyNeverRead: a webhook without a signature header is
// refused before a byte of its body is read, so unauthenticated clients cannot make
// the hub buffer 5 MiB each (security review M6).
func TestAttackUnsignedWebhookBodyNeverRead(t *testing.T) {
	h := newTestHub(t, t.TempDir(), withWebhookSecret("s3cret"))
	body := &countingReader{r: bytes.NewReader(make([]byte, MaxWebhookBytes))}
	req := httptest.NewRequest("POST", WebhookPath, body)
	req.Header.Set("X-GitHub-Event", "push")
	rec := httptest.NewRecorder()
	h.api.ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized || body.read.Load() != 0 {
		t.Errorf("unsigned webhook: status %d, %d body bytes read; want 401 and none", rec.Code, body.read.Load())
	}
}

// TestAttackWebhookReplayFetchesOnce: a captured signed push replayed (same delivery
// id, or the same body under a new id) is acknowledged without a fetch; too many
// webhooks at once are refused with 429 (security review M6).
func TestAttackWebhookReplayFetchesOnce(t *testing.T) {
	const secret = "webhook-s3cret"
	h, srv := newRemoteHub(t, secret)
	rev := srv.Commit(t, map[string]string{"clusters/staging/apps.yaml": "apps:\n  - name: web\n    version: \"1.6.0\"\n"}, "staging", "Pat <pat@example.com>")
	body := pushBody("refs/heads/main", rev)
	send := func(id string) WebhookResponse {
		return decode[WebhookResponse](t, h.do(t, "POST", WebhookPath, "", body,
			"X-GitHub-Event", "push", "X-Hub-Signature-256", sign(secret, body), "X-GitHub-Delivery", id), http.StatusOK)
	}
	if first := send("d-1"); !first.Refreshed {
		t.Fatalf("first delivery: %+v, want a fetch", first)
	}
	for _, id := range []string{"d-1", "d-2"} {
		if again := send(id); again.Refreshed || !strings.Contains(again.Message, "handled already") {
			t.Errorf("replay with delivery id %s: %+v, want no fetch", id, again)
		}
	}
	// Concurrency: with every slot taken, the next signed webhook is 429.
	for range cap(h.api.webhooks) {
		h.api.webhooks <- struct{}{}
	}
	other := pushBody("refs/heads/main", strings.Repeat("b", 40))
	wantError(t, h.do(t, "POST", WebhookPath, "", other, "X-GitHub-Event", "push", "X-Hub-Signature-256", sign(secret, other)),
		http.StatusTooManyRequests, apiv1.CodeTooManyRequests, "")
	for range cap(h.api.webhooks) {
		<-h.api.webhooks
	}
}

// TestAttackTokenGuessingIsRateLimited: an address that keeps sending unknown tokens
// is refused with 429 after a burst, before its tokens are even looked up; the
// failures are logged at warn with the address and never the token (security review
// L2).
func TestAttackTokenGuessingIsRateLimited(t *testing.T) {
	var logs bytes.Buffer
	h := newTestHub(t, t.TempDir(), withLogOutput(&logs))
	codes := map[int]int{}
	for i := range DefaultAuthFailureBurst + 5 {
		r := h.do(t, "GET", "/api/v1/clusters", "guess-"+strings.Repeat("x", i+16), nil)
		codes[r.status]++
	}
	if codes[http.StatusUnauthorized] != DefaultAuthFailureBurst || codes[http.StatusTooManyRequests] != 5 {
		t.Errorf("statuses %v, want %d × 401 then 429", codes, DefaultAuthFailureBurst)
	}
	// The right token from the same address waits too: the limit is per address.
	wantError(t, h.do(t, "GET", "/api/v1/clusters", janeToken, nil), http.StatusTooManyRequests, apiv1.CodeTooManyRequests, "")
	out := logs.String()
	if !strings.Contains(out, "level=WARN") || !strings.Contains(out, "authentication failed") || !strings.Contains(out, "addr=127.0.0.1") || strings.Contains(out, "guess-") {
		t.Errorf("log:\n%s\nwant warn lines naming the address and no token", out)
	}
}

// TestAttackLongPollsPerClusterAreBounded: one cluster's token cannot hold more than
// its share of long-polls (each holds a connection and a goroutine); the next is 429
// (security review L2).
func TestAttackLongPollsPerClusterAreBounded(t *testing.T) {
	h := newTestHub(t, t.TempDir(), withHold(time.Minute))
	tok := h.register(t, "prod-eu")
	first := decode[apiv1.DesiredRevision](t, h.do(t, "GET", apiv1.DesiredPath+"?cluster=prod-eu", tok, nil), http.StatusOK)
	for range DefaultMaxLongPollsPerCluster {
		h.longPoll(tok, "prod-eu", first.Revision)
	}
	h.waitForWaiters(t, DefaultMaxLongPollsPerCluster)
	wantError(t, h.do(t, "GET", apiv1.DesiredPath+"?cluster=prod-eu&since="+first.Revision, tok, nil),
		http.StatusTooManyRequests, apiv1.CodeTooManyRequests, "")
	// Another cluster is not affected.
	other := h.register(t, "staging")
	poll := h.longPoll(other, "staging", first.Revision)
	h.waitForWaiters(t, DefaultMaxLongPollsPerCluster+1)
	select {
	case r := <-poll:
		t.Errorf("staging's long-poll answered at once: %d %s", r.r.status, r.r.body)
	default:
	}
}

// TestAttackMethodLabelCardinality: invented HTTP methods are counted as "_OTHER",
// so an anonymous client cannot fill the metrics' series limit (security review L3).
func TestAttackMethodLabelCardinality(t *testing.T) {
	h := newTestHub(t, t.TempDir(), withMetrics())
	for i := range 20 {
		h.do(t, "M"+strings.Repeat("X", i), "/api/v1/clusters", "", nil)
	}
	r := h.do(t, "GET", "/metrics", "", nil)
	if strings.Contains(string(r.body), `method="MX`) || !strings.Contains(string(r.body), `_OTHER`) {
		t.Errorf("metrics name invented methods, or no _OTHER series:\n%s", grepLines(string(r.body), "method"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestAttackMadeUpAppsAreForgotten: an agent token that reports app names its
// cluster's apps.yaml does not list (up to 1000 per report) cannot grow the hub's store
// for ever: their rows go once not reported for the retention, while the cluster's real
// apps stay (security review L1).
func TestAttackMadeUpAppsAreForgotten(t *testing.T) {
	h := newTestHub(t, t.TempDir(), withAppRetention(time.Nanosecond))
	tok := h.register(t, "prod-eu")
	rep := report("prod-eu", "web", "1.4.1", 1, apiv1.PhaseSynced)
	for i := range 50 {
		fake := rep.Apps[0]
		fake.App = "made-up-" + strings.Repeat("x", i%5) + string(rune('a'+i%26)) + string(rune('a'+i/26))
		rep.Apps = append(rep.Apps, fake)
	}
	decode[apiv1.ReportResponse](t, h.do(t, "POST", apiv1.ReportPath, tok, rep), http.StatusOK)
	time.Sleep(10 * time.Millisecond)
	h.api.forgotten.last = map[string]time.Time{} // the next report's turn has come
	decode[apiv1.ReportResponse](t, h.do(t, "POST", apiv1.ReportPath, tok, report("prod-eu", "web", "1.4.1", 2, apiv1.PhaseSynced)), http.StatusOK)
	cs := decode[apiv1.ClusterStatus](t, h.do(t, "GET", "/api/v1/clusters/prod-eu/status", janeToken, nil), http.StatusOK)
	var names []string
	for _, a := range cs.Apps {
		if !a.ReceivedAt.IsZero() {
			names = append(names, a.App)
		}
	}
	if len(names) != 1 || names[0] != "web" {
		t.Errorf("apps with a stored status: %v, want only web", names)
	}
}
