package chart

import (
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFileCredentials(t *testing.T) {
	file := filepath.Join(t.TempDir(), "creds.yaml")
	tests := map[string]struct {
		content, host string
		want          Credential
		found         bool
		wantErr       string
	}{
		"found":         {content: "ghcr.io: {username: bot, password: tok}\n", host: "ghcr.io", want: Credential{Username: "bot", Password: "tok"}, found: true},
		"other host":    {content: "ghcr.io: {username: bot, password: tok}\n", host: "charts.example.com"},
		"unknown field": {content: "ghcr.io: {user: bot}\n", host: "ghcr.io", wantErr: file + ": not a mapping of host to {username, password}"},
		"not a mapping": {content: "- ghcr.io\n", host: "ghcr.io", wantErr: "not a mapping of host"},
		"empty file":    {content: "\n", host: "ghcr.io", wantErr: file + " is empty"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if err := os.WriteFile(file, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			got, found, err := FileCredentials(file)(tc.host)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "bot") {
					t.Errorf("err = %v shows the file's content", err)
				}
				return
			}
			if err != nil || found != tc.found || got != tc.want {
				t.Errorf("got %+v %v %v, want %+v %v", got, found, err, tc.want, tc.found)
			}
		})
	}
	if _, err := ReadCredentials(filepath.Join(t.TempDir(), "missing.yaml")); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("missing file: err = %v, want it named", err)
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
