package fleetdiff

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"helm.sh/helm/v4/pkg/registry"

	"github.com/outpost-gitops/outpost/internal/chartrepotest"
	"github.com/outpost-gitops/outpost/sync/chart"
)

// chartArchive packs a chart name at version whose one template is a ConfigMap with
// the given data.
func chartArchive(t *testing.T, name, version, data string) []byte {
	t.Helper()
	archive, err := chartrepotest.Package(name, map[string]string{
		"Chart.yaml":        "apiVersion: v2\nname: " + name + "\nversion: " + version + "\n",
		"templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name + "\ndata:\n" + data,
	})
	if err != nil {
		t.Fatal(err)
	}
	return archive
}

// chartRepo serves an HTTP chart repository of chart "web" (index.yaml and one
// archive per version) to the basic-auth user "ci" with password "pw".
func chartRepo(t *testing.T, archives map[string][]byte) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	index := "apiVersion: v1\nentries:\n  web:\n"
	for v, data := range archives {
		sum := sha256.Sum256(data)
		index += "    - version: " + v + "\n      urls: [web-" + v + ".tgz]\n      digest: " + hex.EncodeToString(sum[:]) + "\n"
		mux.HandleFunc("/web-"+v+".tgz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(data) })
	}
	mux.HandleFunc("/index.yaml", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(index)) })
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "ci" || p != "pw" {
			http.Error(w, "who are you", http.StatusUnauthorized)
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// ociRegistry runs an in-process OCI registry holding chart "api" at each version.
func ociRegistry(t *testing.T, archives map[string][]byte) string {
	t.Helper()
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	push, err := registry.NewClient(registry.ClientOptPlainHTTP(), registry.ClientOptCredentialsFile(t.TempDir()+"/creds.json"))
	if err != nil {
		t.Fatal(err)
	}
	for v, data := range archives {
		if _, err := push.Push(data, host+"/charts/api:"+v); err != nil {
			t.Fatal(err)
		}
	}
	return host
}

// A chart version bump shows as the change of the chart's objects, for an HTTP chart
// repository and an OCI registry; an app whose repository is unreachable is an error
// located at its cluster and app, and the other apps are still diffed.
func TestComputeFetchesRemoteCharts(t *testing.T) {
	repoSrv := chartRepo(t, map[string][]byte{
		"1.0.0": chartArchive(t, "web", "1.0.0", "  mode: fast\n"),
		"1.1.0": chartArchive(t, "web", "1.1.0", "  mode: fast\n  replicas: \"3\"\n"),
	})
	host := ociRegistry(t, map[string][]byte{
		"1.0.0": chartArchive(t, "api", "1.0.0", "  port: \"80\"\n"),
		"2.0.0": chartArchive(t, "api", "2.0.0", "  port: \"8080\"\n"),
	})
	files := map[string]string{
		"clusters/dev/cluster.yaml": cluster("dev"),
		"apps/web/app.yaml":         "namespace: web\nhelm:\n  repo: " + repoSrv.URL + "\n  chart: web\n",
		"apps/api/app.yaml":         "namespace: api\nhelm:\n  oci: oci://" + host + "/charts/api\n",
		"apps/gone/app.yaml":        "namespace: gone\nhelm:\n  repo: http://127.0.0.1:1/charts\n  chart: gone\n",
		"apps/db/app.yaml":          "namespace: db\n",
		"apps/db/cm.yaml":           strings.Replace(dbConfig, "%s", "${APP_VERSION}", 1),
	}
	files["clusters/dev/apps.yaml"] = apps("web@1.0.0", "api@1.0.0", "gone@1.0.0", "db@10")
	base := writeTree(t, files)
	files["clusters/dev/apps.yaml"] = apps("web@1.1.0", "api@2.0.0", "gone@1.1.0", "db@20")
	head := writeTree(t, files)

	fetcher, err := chart.NewFetcher(chart.FetcherConfig{
		CacheDir:       t.TempDir(),
		Credentials:    chart.StaticCredentials(map[string]chart.Credential{strings.TrimPrefix(repoSrv.URL, "http://"): {Username: "ci", Password: "pw"}}),
		PlainHTTPHosts: []string{host},
	})
	if err != nil {
		t.Fatal(err)
	}
	res := compute(t, base, head, Options{Charts: fetcher})

	diffs := map[string]string{}
	if len(res.Clusters) == 1 {
		for _, a := range res.Clusters[0].Apps {
			for _, o := range a.Objects {
				diffs[a.App] += string(o.Action) + " " + o.Object.String() + "\n" + o.Diff
			}
		}
	}
	for app, want := range map[string][]string{
		"web": {"changed ConfigMap/web/web", "+  replicas: \"3\""},
		"api": {"changed ConfigMap/api/api", "-  port: \"80\"", "+  port: \"8080\""},
		"db":  {"changed ConfigMap/db/db", "+  maxConnections: \"20\""},
	} {
		for _, w := range want {
			if !strings.Contains(diffs[app], w) {
				t.Errorf("app %s: diff lacks %q:\n%s", app, w, diffs[app])
			}
		}
	}
	if _, ok := diffs["gone"]; ok {
		t.Errorf("app gone, whose chart cannot be fetched, shows a diff:\n%s", diffs["gone"])
	}
	sides := map[string]bool{}
	for _, e := range res.Errors {
		if e.Cluster != "dev" || e.App != "gone" || !strings.Contains(e.Message, "fetch chart http://127.0.0.1:1/charts gone") {
			t.Errorf("error %+v, want one located at dev/gone naming the chart", e)
		}
		sides[e.Side] = true
	}
	if !sides["base"] || !sides["head"] || !res.HeadErrors() {
		t.Errorf("errors %+v, want gone's on both sides", res.Errors)
	}
}

// Without a fetcher (the hub's diff), a remote chart is a render error naming it.
func TestComputeWithoutFetcherNamesTheChart(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"clusters/dev/cluster.yaml": cluster("dev"),
		"clusters/dev/apps.yaml":    apps("web@1.0.0"),
		"apps/web/app.yaml":         "namespace: web\nhelm:\n  repo: https://charts.example.com\n  chart: web\n",
	})
	res := compute(t, "", dir, Options{})
	if len(res.Errors) != 1 || res.Errors[0].App != "web" || !strings.Contains(res.Errors[0].Message, "chart https://charts.example.com web 1.0.0") {
		t.Fatalf("errors %+v, want web's naming the chart", res.Errors)
	}
}
