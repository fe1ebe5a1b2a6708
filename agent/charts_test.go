package agent

import (
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outpost-gitops/outpost/sync/chart"
)

// TestNewChartFetcherVerify: the fetcher takes the keyring and policy of the config:
// under --chart-verify=always a chart without a .prov fails for an app without
// helm.verify; under if-required it is fetched.
func TestNewChartFetcherVerify(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/index.yaml":
			w.Write([]byte("apiVersion: v1\nentries:\n  web:\n    - version: 1.0.0\n      urls: [web-1.0.0.tgz]\n"))
		case "/web-1.0.0.tgz":
			w.Write([]byte("archive"))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	keyring := filepath.Join(dir, "keyring.asc")
	writeTestKeyring(t, keyring)
	l := &loop{log: slog.New(slog.DiscardHandler)}
	ref := chart.Ref{Repo: srv.URL, Chart: "web", Version: "1.0.0"}
	cfg := Config{CacheDir: t.TempDir(), ChartKeyring: filepath.Join(dir, "gone.asc"), ChartVerify: "always"}
	if _, err := newChartFetcher(cfg, l); err == nil || !strings.Contains(err.Error(), "--chart-keyring: keyring") {
		t.Fatalf("missing keyring: err = %v", err)
	}
	cfg.ChartKeyring = keyring
	f, err := newChartFetcher(cfg, l)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Fetch(t.Context(), ref)
	var ve *chart.VerifyError
	if !errors.As(err, &ve) || ve.Reason != chart.ReasonMissing {
		t.Fatalf("always: err = %v, want %q", err, chart.ReasonMissing)
	}
	cfg.ChartVerify = "if-required"
	if f, err = newChartFetcher(cfg, l); err != nil {
		t.Fatal(err)
	}
	if data, err := f.Fetch(t.Context(), ref); err != nil || string(data) != "archive" {
		t.Fatalf("if-required: %q, %v", data, err)
	}
}
