package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
	"github.com/outpost-gitops/outpost/hub/gitstore"
	"github.com/outpost-gitops/outpost/hub/notify"
	"github.com/outpost-gitops/outpost/hub/rollout"
	"github.com/outpost-gitops/outpost/hub/store"
	"github.com/outpost-gitops/outpost/internal/gitserve"
	"github.com/outpost-gitops/outpost/internal/gittest"
	"github.com/outpost-gitops/outpost/internal/telemetry"
)

// Admin tokens of the tests: Jane (with an email) and ci-bot (a bare name).
const (
	janeToken = "jane-token-0123456789"
	ciToken   = "ci-token-0123456789abcdef"
)

var testAdmins = "# admins\nJane Doe <jane@example.com>:" + janeToken + "\n\nci-bot:" + ciToken + "\n"

// hubSetup is what a test hub is built from.
type hubSetup struct {
	remote        *gittest.Server
	webhookSecret string
	metrics       bool
	hold          time.Duration
	quiet         bool
	logOut        io.Writer
	appRetention  time.Duration
	rollouts      bool
}

type hubOption func(*hubSetup)

// withRemote makes the hub's repository a clone of srv (seeded by the caller).
func withRemote(srv *gittest.Server) hubOption { return func(s *hubSetup) { s.remote = srv } }

// withWebhookSecret enables webhooks.
func withWebhookSecret(secret string) hubOption {
	return func(s *hubSetup) { s.webhookSecret = secret }
}

// withMetrics serves /metrics from a real telemetry setup.
func withMetrics() hubOption { return func(s *hubSetup) { s.metrics = true } }

// withLogOutput writes the hub's logs (text, info and up) to w as well.
func withLogOutput(w io.Writer) hubOption { return func(s *hubSetup) { s.logOut = w } }

// withAppRetention sets Config.UndesiredAppRetention.
func withAppRetention(d time.Duration) hubOption { return func(s *hubSetup) { s.appRetention = d } }

// withQuietLog discards the hub's logs (fuzzing).
func withQuietLog() hubOption { return func(s *hubSetup) { s.quiet = true } }

// withHold sets the notifier's hold time (no jitter).
func withHold(d time.Duration) hubOption { return func(s *hubSetup) { s.hold = d } }

// withRollouts runs a rollout driver (evaluating every 50 ms) in the hub.
func withRollouts() hubOption { return func(s *hubSetup) { s.rollouts = true } }

// testHub is a hub API on a real store and a real Git repository in dir, served by
// httptest.
type testHub struct {
	dir      string
	url      string
	api      *API
	store    *store.SQLite
	git      *gitstore.Store
	notifier *notify.Notifier
	srv      *httptest.Server
	// stopDriver stops the rollout driver (withRollouts) and waits for it.
	stopDriver context.CancelFunc
}

// newTestHub opens (or reopens) the hub whose state lives in dir: the store in
// dir/hub.db, the repository in dir/repo.git (the embedded one seeded from
// testdata/seed, unless withRemote).
func newTestHub(t testing.TB, dir string, opts ...hubOption) *testHub {
	t.Helper()
	var s hubSetup
	for _, o := range opts {
		o(&s)
	}
	ctx := context.Background()
	log := testLogger(t)
	if s.quiet {
		log = slog.New(slog.DiscardHandler)
	}
	if s.logOut != nil {
		log = slog.New(slog.NewTextHandler(s.logOut, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	st, err := store.Open(ctx, store.Config{Path: filepath.Join(dir, "hub.db")})
	if err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	ncfg := notify.Config{Timeout: s.hold, Jitter: -1}
	n, err := notify.New(ncfg)
	if err != nil {
		t.Fatal(err)
	}
	pub := NewPublisher(n, log)
	gcfg := gitstore.Config{Dir: filepath.Join(dir, "repo.git"), Seed: filepath.Join("testdata", "seed"), HeadChanged: pub.HeadChanged}
	if s.remote != nil {
		gcfg.URL, gcfg.Password, gcfg.Seed = s.remote.URL(), s.remote.Token(), ""
	}
	gs, err := gitstore.Open(ctx, gcfg, log)
	if err != nil {
		t.Fatalf("gitstore.Open: %v", err)
	}
	pub.Start(gs)
	admins, err := ParseAdminTokens(strings.NewReader(testAdmins))
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Store: st, Git: gs, Notifier: n, Admins: admins, Logger: log, SummaryTTL: -1,
		WebhookSecret: []byte(s.webhookSecret)}
	if s.hold > 0 {
		cfg.LongPollHold = s.hold
	}
	cfg.UndesiredAppRetention = s.appRetention
	if s.quiet {
		cfg.AuthFailureBurst = -1 // fuzzing sends bad tokens from one address on purpose
	}
	if s.remote == nil {
		cfg.GitServer, err = gitserve.New(gitserve.Config{Dir: gs.Dir(), Refs: gs, Authorize: gitserve.AllowAll, View: gitserve.ViewOf}, log)
		if err != nil {
			t.Fatal(err)
		}
	}
	if s.metrics {
		tel, err := telemetry.Setup(ctx, "outpost-hub-test", func(string) string { return "" }, nil)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Meter, cfg.Tracer, cfg.Metrics = tel.Meter, tel.Tracer, tel.Metrics
	}
	var stopDriver context.CancelFunc = func() {}
	if s.rollouts {
		d, err := rollout.New(rollout.Config{Store: st, Git: gs, Interval: 50 * time.Millisecond, Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Rollouts = d
		var dctx context.Context
		dctx, stopDriver = context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { _ = d.Run(dctx); close(done) }()
		prev := stopDriver
		stopDriver = func() { prev(); <-done }
	}
	api, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := &testHub{dir: dir, api: api, store: st, git: gs, notifier: n, stopDriver: stopDriver}
	h.srv = httptest.NewServer(api)
	h.url = h.srv.URL
	t.Cleanup(h.close)
	return h
}

// close stops the server and closes the store (idempotent).
func (h *testHub) close() {
	if h.srv == nil {
		return
	}
	h.api.Drain()
	h.srv.Close()
	h.stopDriver()
	_ = h.store.Close()
	h.srv = nil
}

// testLogger logs to the test's output at info level.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// noRedirects is the tests' client: a redirect is an answer to check, not to follow.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// response is an HTTP answer read whole.
type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request: body is nil, a string or []byte sent as is, or a value sent as
// JSON; hdr are header name/value pairs.
func (h *testHub) do(t testing.TB, method, path, token string, body any, hdr ...string) response {
	t.Helper()
	r, err := h.try(method, path, token, body, hdr...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// try is do returning its error, for goroutines other than the test's.
func (h *testHub) try(method, path, token string, body any, hdr ...string) (response, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			return response{}, err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, h.url+path, rd)
	if err != nil {
		return response{}, err
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := noRedirects.Do(req)
	if err != nil {
		return response{}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, fmt.Errorf("%s %s: read the answer: %w", method, path, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: data}, nil
}

// decode decodes a response of the wanted status into a T.
func decode[T any](t testing.TB, r response, status int) T {
	t.Helper()
	var v T
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("decode %T: %v: %s", v, err, r.body)
	}
	return v
}

// wantError checks an error response: status, code and field.
func wantError(t testing.TB, r response, status int, code apiv1.ErrorCode, field string) apiv1.ErrorResponse {
	t.Helper()
	e := decode[apiv1.ErrorResponse](t, r, status)
	if e.Code != code || e.Field != field {
		t.Errorf("error = %+v, want code %s field %q", e, code, field)
	}
	if e.Code.HTTPStatus() != r.status {
		t.Errorf("code %s has status %d, the response %d", e.Code, e.Code.HTTPStatus(), r.status)
	}
	if e.Message == "" {
		t.Errorf("error %+v has no message", e)
	}
	return e
}

// register registers a cluster as Jane and returns its agent token.
func (h *testHub) register(t testing.TB, name string) string {
	t.Helper()
	out := decode[apiv1.RegisterClusterResponse](t, h.do(t, "POST", "/api/v1/clusters", janeToken,
		apiv1.RegisterClusterRequest{Name: name}), http.StatusCreated)
	if !strings.HasPrefix(out.Token, store.TokenPrefix) || out.Cluster.Name != name {
		t.Fatalf("register %s: %+v", name, out)
	}
	return out.Token
}

// report is a valid report of one app's state.
func report(cluster, app, version string, seq int64, phase apiv1.Phase) apiv1.StatusReport {
	now := time.Now().UTC()
	return apiv1.StatusReport{
		Cluster: cluster,
		Agent:   apiv1.AgentInfo{ID: "agent-" + cluster, Version: "test"},
		SentAt:  now,
		Apps: []apiv1.AppStatus{{
			App: app, Generation: apiv1.Generation{Epoch: 1, Sequence: seq}, Version: version,
			Revision: strings.Repeat("a", 40), Phase: phase, Health: apiv1.Health{Status: apiv1.HealthCurrent},
			Counts: apiv1.Counts{Desired: 1, Unchanged: 1}, LastSyncedAt: now,
		}},
	}
}

// seedFiles reads testdata/seed as a map of repo path to content, for a remote.
func seedFiles(t testing.TB) map[string]string {
	t.Helper()
	files := map[string]string{}
	root := filepath.Join("testdata", "seed")
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		files[filepath.ToSlash(rel)] = string(data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}
