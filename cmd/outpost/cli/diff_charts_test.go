package cli

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"helm.sh/helm/v4/pkg/registry"

	"github.com/outpost-gitops/outpost/internal/chartrepotest"
)

// chartArchive packs chart name at version, whose one template is ConfigMap web
// with one line of data.
func chartArchive(t *testing.T, name, version, data string) []byte {
	t.Helper()
	archive, err := chartrepotest.Package(name, map[string]string{
		"Chart.yaml":        "apiVersion: v2\nname: " + name + "\nversion: " + version + "\n",
		"templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  " + data + "\n",
	})
	if err != nil {
		t.Fatal(err)
	}
	return archive
}

// chartServer serves an HTTP chart repository holding chart web 1.1.0 to the
// basic-auth user "ci" with password "pw".
func chartServer(t *testing.T) *httptest.Server {
	t.Helper()
	archive := chartArchive(t, "web", "1.1.0", "from: chart-{{ .Chart.Version }}")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "ci" || p != "pw" {
			http.Error(w, "who are you", http.StatusUnauthorized)
			return
		}
		switch r.URL.Path {
		case "/index.yaml":
			_, _ = w.Write([]byte("apiVersion: v1\nentries:\n  web:\n    - version: 1.1.0\n      urls: [web-1.1.0.tgz]\n"))
		case "/web-1.1.0.tgz":
			_, _ = w.Write(archive)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// The head turns web into a remote Helm chart: diff downloads it with the
// credentials file's credential into the cache directory and shows its objects; a
// credentials file that does not parse, or is missing, is one error naming it.
func TestDiffRemoteChart(t *testing.T) {
	dir := diffRepo(t)
	srv := chartServer(t)
	app := "namespace: web\nhelm:\n  repo: " + srv.URL + "\n  chart: web\n  version: 1.1.0\n"
	if err := os.WriteFile(filepath.Join(dir, "apps/web/app.yaml"), []byte(app), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "apps/web/cm.yaml")); err != nil {
		t.Fatal(err)
	}
	host := strings.TrimPrefix(srv.URL, "http://")
	creds := filepath.Join(t.TempDir(), "creds.yaml")
	if err := os.WriteFile(creds, []byte(host+": {username: ci, password: pw}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	wrong := filepath.Join(t.TempDir(), "wrong.yaml")
	if err := os.WriteFile(wrong, []byte(host+": {username: ci, password: nope}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte(host+": {user: ci}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	tests := map[string]struct {
		creds    string
		code     int
		contains []string
	}{
		"fetched":            {creds, ExitDiffChanges, []string{"+  from: chart-1.1.0", "-  version: \"1.0\""}},
		"refused credential": {wrong, ExitDiffError, []string{"fetch chart " + srv.URL + " web 1.1.0", "401 Unauthorized", "app web", "- removed (would be pruned) ConfigMap/db/db"}},
		"unparsable file":    {bad, ExitDiffError, []string{"--chart-credentials-file: chart credentials " + bad + ": not a mapping of host to {username, password}"}},
		"missing file":       {filepath.Join(t.TempDir(), "none.yaml"), ExitDiffError, []string{"none.yaml"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := cache
			if name != "fetched" {
				c = t.TempDir() // not the chart cached by "fetched"
			}
			res := runVerb(t, nil, "diff", "--repo", dir, "--color", "never", "--chart-cache-dir", c, "--chart-credentials-file", tc.creds)
			if res.code != tc.code {
				t.Fatalf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", res.code, tc.code, res.stdout, res.stderr)
			}
			for _, want := range tc.contains {
				if !strings.Contains(res.stdout+res.stderr, want) {
					t.Errorf("output lacks %q:\n%s%s", want, res.stdout, res.stderr)
				}
			}
		})
	}
	if entries, _ := os.ReadDir(cache); len(entries) != 1 {
		t.Errorf("chart cache holds %d entries, want the one chart", len(entries))
	}
}

// An OCI chart on a plain-HTTP registry is pulled only when --chart-plain-http-hosts
// names the registry.
func TestDiffRemoteChartOCIPlainHTTP(t *testing.T) {
	dir := diffRepo(t)
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	push, err := registry.NewClient(registry.ClientOptPlainHTTP(), registry.ClientOptCredentialsFile(filepath.Join(t.TempDir(), "creds.json")))
	if err != nil {
		t.Fatal(err)
	}
	archive := chartArchive(t, "web", "1.1.0", "from: oci-{{ .Chart.Version }}")
	if _, err := push.Push(archive, host+"/charts/web:1.1.0"); err != nil {
		t.Fatal(err)
	}
	app := "namespace: web\nhelm:\n  oci: oci://" + host + "/charts/web\n  version: 1.1.0\n"
	if err := os.WriteFile(filepath.Join(dir, "apps/web/app.yaml"), []byte(app), 0o644); err != nil {
		t.Fatal(err)
	}
	res := runVerb(t, nil, "diff", "--repo", dir, "--chart-cache-dir", t.TempDir(), "--chart-plain-http-hosts", host)
	if res.code != ExitDiffChanges || !strings.Contains(res.stdout, "+  from: oci-1.1.0") {
		t.Fatalf("exit code %d, want %d and the chart's object\n%s%s", res.code, ExitDiffChanges, res.stdout, res.stderr)
	}
	res = runVerb(t, nil, "diff", "--repo", dir, "--chart-cache-dir", t.TempDir())
	if res.code != ExitDiffError || !strings.Contains(res.stdout+res.stderr, "fetch chart oci://"+host+"/charts/web:1.1.0") {
		t.Fatalf("without --chart-plain-http-hosts: exit code %d, want %d naming the chart\n%s%s", res.code, ExitDiffError, res.stdout, res.stderr)
	}
}
