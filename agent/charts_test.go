package agent

import (
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outpost-gitops/outpost/sync/chart"
)

func TestChartCredential(t *testing.T) {
	file := filepath.Join(t.TempDir(), "creds.yaml")
	tests := map[string]struct {
		content, host string
		want          chart.Credential
		found         bool
		wantErr       string
	}{
		"found":         {content: "ghcr.io: {username: bot, password: tok}\n", host: "ghcr.io", want: chart.Credential{Username: "bot", Password: "tok"}, found: true},
		"other host":    {content: "ghcr.io: {username: bot, password: tok}\n", host: "charts.example.com"},
		"unknown field": {content: "ghcr.io: {user: bot}\n", host: "ghcr.io", wantErr: "not a mapping of host to {username, password}"},
		"empty file":    {content: "\n", host: "ghcr.io", wantErr: "is empty"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if err := os.WriteFile(file, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			got, found, err := chartCredential(file, tc.host)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || found != tc.found || got != tc.want {
				t.Errorf("got %+v %v %v, want %+v %v", got, found, err, tc.want, tc.found)
			}
		})
	}
}

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
