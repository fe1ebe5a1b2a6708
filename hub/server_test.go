package hub

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
)

const adminToken = "jane-token-0123456789"

// runningHub is a hub started with Run on a loopback listener.
type runningHub struct {
	url  string
	stop func() error // cancels Run's context and returns what Run returned
}

// startHub runs the hub on the state in dataDir and waits until it is ready; mutate
// adjusts the configuration.
func startHub(t *testing.T, dataDir string, mutate ...func(*Config)) *runningHub {
	t.Helper()
	tokens := filepath.Join(t.TempDir(), "admins")
	if err := os.WriteFile(tokens, []byte("Jane Doe <jane@example.com>:"+adminToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Listener, cfg.DataDir, cfg.AdminTokensFile = l, dataDir, tokens
	cfg.GitSeedDir = filepath.Join("httpapi", "testdata", "seed")
	cfg.ShutdownTimeout = 5 * time.Second
	for _, m := range mutate {
		m(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	go func() { done <- Run(ctx, cfg, log) }()
	h := &runningHub{url: "http://" + l.Addr().String()}
	stopped := false
	h.stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(15 * time.Second):
			t.Fatal("Run did not return 15 s after its context ended")
			return nil
		}
	}
	t.Cleanup(func() { _ = h.stop() })
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(h.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return h
			}
		}
		select {
		case err := <-done:
			t.Fatalf("Run returned before it was ready: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the hub was not ready within 20 s: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// call sends a JSON request and decodes a JSON answer into out (when not nil).
func (h *runningHub) call(t *testing.T, method, path, token string, body, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, h.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: decode %T: %v: %s", method, path, out, err, data)
		}
	}
	return resp.StatusCode
}

func TestRestartKeepsStatusAndHistory(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	h := startHub(t, data)

	var reg apiv1.RegisterClusterResponse
	if s := h.call(t, "POST", "/api/v1/clusters", adminToken, apiv1.RegisterClusterRequest{Name: "prod-eu"}, &reg); s != http.StatusCreated {
		t.Fatalf("register: %d", s)
	}
	var set apiv1.ChangeResult
	if s := h.call(t, "PUT", "/api/v1/clusters/prod-eu/apps/web", adminToken, apiv1.SetVersionRequest{Version: "1.4.2"}, &set); s != http.StatusOK || !set.Changed {
		t.Fatalf("set: %d %+v", s, set)
	}
	now := time.Now().UTC()
	rep := apiv1.StatusReport{Cluster: "prod-eu", Agent: apiv1.AgentInfo{ID: "agent-1"}, SentAt: now, Apps: []apiv1.AppStatus{{
		App: "web", Generation: apiv1.Generation{Epoch: 1, Sequence: 1}, Version: "1.4.2", Revision: set.Revision,
		Phase: apiv1.PhaseSynced, Health: apiv1.Health{Status: apiv1.HealthCurrent}, LastSyncedAt: now,
	}}}
	var rr apiv1.ReportResponse
	if s := h.call(t, "POST", apiv1.ReportPath, reg.Token, rep, &rr); s != http.StatusOK || len(rr.Stored) != 1 {
		t.Fatalf("report: %d %+v", s, rr)
	}
	// A held long-poll does not delay the shutdown.
	go func() {
		req, _ := http.NewRequest("GET", h.url+apiv1.DesiredPath+"?cluster=prod-eu&since="+set.Revision, nil)
		req.Header.Set("Authorization", "Bearer "+reg.Token)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	if err := h.stop(); err != nil {
		t.Fatalf("Run returned %v", err)
	}
	t.Logf("shutdown with a held long-poll took %v", time.Since(start).Round(time.Millisecond))

	h = startHub(t, data)
	var st apiv1.ClusterStatus
	if s := h.call(t, "GET", "/api/v1/clusters/prod-eu/status", adminToken, nil, &st); s != http.StatusOK {
		t.Fatalf("status after restart: %d", s)
	}
	if len(st.Apps) != 2 || st.Apps[1].App != "web" || st.Apps[1].Phase != apiv1.PhaseSynced || st.Apps[1].DesiredVersion != "1.4.2" || st.Revision != set.Revision {
		t.Errorf("status after restart = %+v", st)
	}
	var hist apiv1.HistoryList
	if s := h.call(t, "GET", "/api/v1/clusters/prod-eu/history?app=web", adminToken, nil, &hist); s != http.StatusOK || len(hist.Entries) == 0 ||
		hist.Entries[0].Message != "set web=1.4.2 on prod-eu" || hist.Entries[0].Author != "Jane Doe" {
		t.Errorf("history after restart: %d %+v", s, hist)
	}
	if s := h.call(t, "POST", "/api/v1/clusters", adminToken, apiv1.RegisterClusterRequest{Name: "prod-eu"}, nil); s != http.StatusConflict {
		t.Errorf("registering prod-eu again: %d, want 409", s)
	}
	// The token survived; the same report is now stale.
	if s := h.call(t, "POST", apiv1.ReportPath, reg.Token, rep, &rr); s != http.StatusOK || len(rr.Stale) != 1 {
		t.Errorf("report after restart: %d %+v", s, rr)
	}
	// A revision the restarted hub never published answers at once with the head.
	var d apiv1.DesiredRevision
	if s := h.call(t, "GET", apiv1.DesiredPath+"?cluster=prod-eu&since="+strings.Repeat("0", 40), reg.Token, nil, &d); s != http.StatusOK || !d.Changed || d.Revision != set.Revision {
		t.Errorf("long-poll after restart: %d %+v", s, d)
	}
	// The dashboard is mounted and asks for an admin token.
	resp, err := http.Get(h.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("dashboard without a token: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest("GET", h.url+"/", nil)
	req.SetBasicAuth("jane", adminToken)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(string(page), "prod-eu") {
		t.Errorf("dashboard: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, p := range []string{"/healthz", "/metrics"} {
		resp, err := http.Get(h.url + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %d", p, resp.StatusCode)
		}
	}
}

// TestPprof checks that --pprof-listen serves the runtime's profiles on their own
// address, and nothing of the API there.
func TestPprof(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	startHub(t, t.TempDir(), func(c *Config) { c.PprofAddr = addr })
	for path, want := range map[string]int{
		"/debug/pprof/goroutine?debug=1": http.StatusOK,
		"/debug/pprof/heap":              http.StatusOK,
		"/api/v1/clusters":               http.StatusNotFound,
	} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: %s, want %d", path, resp.Status, want)
		}
	}
}

func TestRunRefusesBadConfig(t *testing.T) {
	dir := t.TempDir()
	short := filepath.Join(dir, "short")
	if err := os.WriteFile(short, []byte("ci:short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good")
	if err := os.WriteFile(good, []byte("ci:0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		edit func(*Config)
		flag string
	}{
		"no admin tokens":        {func(c *Config) { c.AdminTokensFile = "" }, "admin-tokens-file"},
		"missing admin tokens":   {func(c *Config) { c.AdminTokensFile = filepath.Join(dir, "nope") }, "admin-tokens-file"},
		"short admin token":      {func(c *Config) { c.AdminTokensFile = short }, "admin-tokens-file"},
		"ftp git url":            {func(c *Config) { c.GitURL = "ftp://example.com/repo.git" }, "git-url"},
		"seed with a remote":     {func(c *Config) { c.GitURL, c.GitSeedDir = "https://example.com/r.git", dir }, "git-seed"},
		"bad branch":             {func(c *Config) { c.GitBranch = "a..b" }, "git-branch"},
		"cert without key":       {func(c *Config) { c.TLSCertFile = good }, "tls-cert-file"},
		"long-poll too long":     {func(c *Config) { c.LongPollTimeout = time.Minute }, "long-poll-timeout"},
		"bad listen address":     {func(c *Config) { c.ListenAddr = "nope" }, "listen"},
		"missing webhook secret": {func(c *Config) { c.WebhookSecretFile = filepath.Join(dir, "nope") }, "webhook-secret-file"},
		"bad pprof address":      {func(c *Config) { c.PprofAddr = "nope" }, "pprof-listen"},
		"pprof off loopback":     {func(c *Config) { c.PprofAddr = "0.0.0.0:6060" }, "pprof-listen"},
		"store not postgres":     {func(c *Config) { c.Store = "mysql://u:0123456789abcdef@db/outpost" }, "store"},
		"store and store file":   {func(c *Config) { c.Store, c.StoreFile = "postgres://db/outpost", good }, "store"},
		"missing store file":     {func(c *Config) { c.StoreFile = filepath.Join(dir, "nope") }, "store-file"},
		"ftp rollout webhook":    {func(c *Config) { c.RolloutWebhookURL = "ftp://hooks.example.com/x" }, "rollout-webhook-url"},
		"webhook secret alone":   {func(c *Config) { c.RolloutWebhookSecretFile = good }, "rollout-webhook-secret-file"},
		"missing webhook key": {func(c *Config) {
			c.RolloutWebhookURL, c.RolloutWebhookSecretFile = "https://h.example.com", filepath.Join(dir, "nope")
		}, "rollout-webhook-secret-file"},
		"zero rollout interval": {func(c *Config) { c.RolloutInterval = 0 }, "rollout-interval"},
		"plain http, require tls": {func(c *Config) {
			c.GitURL, c.RequireTLS = "http://git.example.com/fleet.git", true
		}, "require-tls"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.DataDir, cfg.AdminTokensFile = filepath.Join(dir, "data"), good
			tc.edit(&cfg)
			err := Run(context.Background(), cfg, slog.New(slog.DiscardHandler))
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Flag != tc.flag || ce.Env != EnvName(tc.flag) {
				t.Fatalf("err = %v, want a ConfigError of --%s", err, tc.flag)
			}
			if strings.Contains(err.Error(), "0123456789abcdef") {
				t.Errorf("the error shows a token: %v", err)
			}
		})
	}
}
