package chart

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"helm.sh/helm/v4/pkg/registry"
)

// entry is one tar entry of a test archive.
type entry struct {
	name, body, link string
	typ              byte
	size             int64 // header size when set (a lying header)
}

// tgz packs entries into a gzip'd tar.
func tgz(t *testing.T, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		size := int64(len(e.body))
		if e.size != 0 {
			size = e.size
		}
		if typ != tar.TypeReg {
			size = 0
		}
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Typeflag: typ, Size: size, Linkname: e.link, Mode: 0o644}); err != nil {
			t.Fatal(err)
		}
		if typ == tar.TypeReg && e.size == 0 {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil && !strings.Contains(err.Error(), "missed writing") {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// webChart is a valid chart "web" at version.
func webChart(t *testing.T, version string) []byte {
	return tgz(t,
		entry{name: "web/Chart.yaml", body: "apiVersion: v2\nname: web\nversion: " + version + "\n"},
		entry{name: "web/templates/cm.yaml", body: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\n"},
		entry{name: "web/charts/sub.tgz", body: string(tgz(t, entry{name: "sub/Chart.yaml", body: "apiVersion: v2\nname: sub\nversion: 0.1.0\n"}))},
	)
}

func TestLoadArchive(t *testing.T) {
	c, err := LoadArchive(webChart(t, "1.0.0"), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Name() != "web" || len(c.Templates) != 1 || len(c.Dependencies()) != 1 || c.Dependencies()[0].Name() != "sub" {
		t.Errorf("chart %s: %d templates, dependencies %v", c.Name(), len(c.Templates), c.Dependencies())
	}
}

func TestLoadArchiveRefusesBadArchives(t *testing.T) {
	chartYAML := entry{name: "web/Chart.yaml", body: "apiVersion: v2\nname: web\nversion: 1.0.0\n"}
	zeros := strings.Repeat("\x00", 70<<20) // compresses to ~70 KiB
	tests := map[string]struct {
		data []byte
		lim  Limits
		want string
	}{
		"path traversal":       {data: tgz(t, chartYAML, entry{name: "web/../../etc/passwd", body: "x"}), want: `entry "web/../../etc/passwd" leaves the chart directory`},
		"absolute path":        {data: tgz(t, entry{name: "/web/Chart.yaml", body: "x"}), want: "leaves the chart directory"},
		"symlink":              {data: tgz(t, chartYAML, entry{name: "web/templates/x.yaml", typ: tar.TypeSymlink, link: "/etc/passwd"}), want: `web/templates/x.yaml is a link (to "/etc/passwd"): links are not allowed`},
		"hard link":            {data: tgz(t, chartYAML, entry{name: "web/values.yaml", typ: tar.TypeLink, link: "web/Chart.yaml"}), want: "links are not allowed"},
		"device":               {data: tgz(t, chartYAML, entry{name: "web/dev", typ: tar.TypeChar}), want: "web/dev is not a regular file"},
		"second top directory": {data: tgz(t, chartYAML, entry{name: "other/x.yaml", body: "x"}), want: `entry "other/x.yaml" is outside the chart's directory "web"`},
		"zip bomb":             {data: tgz(t, chartYAML, entry{name: "web/files/zeros", body: zeros}), want: "the chart's files add up to more than the limit of 67108864 bytes"},
		"lying header size":    {data: tgz(t, chartYAML, entry{name: "web/big", size: 1 << 40}), want: "more than the limit"},
		"too many files":       {data: tgz(t, chartYAML, entry{name: "web/a", body: "a"}, entry{name: "web/b", body: "b"}), lim: Limits{Files: 2}, want: "more than the limit of 2 files"},
		"archive too big":      {data: webChart(t, "1.0.0"), lim: Limits{ArchiveSize: 100}, want: "more than the limit of 100"},
		"not gzip":             {data: []byte("<html>not found</html>"), want: "not a gzip file"},
		"empty":                {data: tgz(t), want: "holds no files"},
		"bad subchart":         {data: tgz(t, chartYAML, entry{name: "web/charts/sub.tgz", body: string(tgz(t, entry{name: "sub/../../x", body: "x"}))}), want: "chart archive charts/sub: entry \"sub/../../x\" leaves"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := LoadArchive(tc.data, tc.lim)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// chartRepo serves index.yaml and web-<v>.tgz, requiring basic auth user:pw.
func chartRepo(t *testing.T, archives map[string][]byte, gets *atomic.Int32) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	var index strings.Builder
	index.WriteString("apiVersion: v1\nentries:\n  web:\n")
	for v, data := range archives {
		index.WriteString("    - version: " + v + "\n      urls: [charts/web-" + v + ".tgz]\n      digest: " + strings.TrimPrefix(digestOf(data), "sha256:") + "\n")
		mux.HandleFunc("/charts/web-"+v+".tgz", func(w http.ResponseWriter, r *http.Request) { gets.Add(1); w.Write(data) })
	}
	mux.HandleFunc("/index.yaml", func(w http.ResponseWriter, r *http.Request) { gets.Add(1); w.Write([]byte(index.String())) })
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "user" || p != "pw" {
			http.Error(w, "who are you", http.StatusUnauthorized)
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func creds(host string) (Credential, bool, error) { return Credential{"user", "pw"}, true, nil }

func TestFetchHTTPRepo(t *testing.T) {
	var gets atomic.Int32
	v1 := webChart(t, "1.0.0")
	srv := chartRepo(t, map[string][]byte{"1.0.0": v1, "1.1.0": webChart(t, "1.1.0")}, &gets)
	f, err := NewFetcher(FetcherConfig{CacheDir: t.TempDir(), Credentials: creds})
	if err != nil {
		t.Fatal(err)
	}
	ref := Ref{Repo: srv.URL, Chart: "web", Version: "1.0.0", Digest: digestOf(v1)}
	data, err := f.Fetch(t.Context(), ref)
	if err != nil || !bytes.Equal(data, v1) {
		t.Fatalf("fetch: %v", err)
	}
	n := gets.Load()
	if _, err := f.Fetch(t.Context(), ref); err != nil || gets.Load() != n {
		t.Errorf("second fetch: err %v, %d requests; want it from the cache", err, gets.Load()-n)
	}

	bad := map[string]struct {
		ref  Ref
		cfg  FetcherConfig
		want string
	}{
		"missing version": {ref: Ref{Repo: srv.URL, Chart: "web", Version: "2.0.0"}, want: "index.yaml has no version 2.0.0 of chart \"web\" (it has 1.0.0, 1.1.0)"},
		"missing chart":   {ref: Ref{Repo: srv.URL, Chart: "api", Version: "1.0.0"}, want: `index.yaml has no chart "api"`},
		"wrong digest":    {ref: Ref{Repo: srv.URL, Chart: "web", Version: "1.1.0", Digest: digestOf(v1)}, want: "digest mismatch: the archive is sha256:"},
		"no credentials":  {ref: Ref{Repo: srv.URL, Chart: "web", Version: "1.1.0"}, cfg: FetcherConfig{}, want: "401 Unauthorized"},
		"unreachable":     {ref: Ref{Repo: "http://127.0.0.1:1", Chart: "web", Version: "1.0.0"}, want: "connection refused"},
		"archive too big": {ref: Ref{Repo: srv.URL, Chart: "web", Version: "1.1.0"}, cfg: FetcherConfig{Credentials: creds, Limits: Limits{ArchiveSize: 64}}, want: "more than the limit of 64"},
	}
	for name, tc := range bad {
		t.Run(name, func(t *testing.T) {
			cfg := tc.cfg
			if cfg.Credentials == nil && name != "no credentials" {
				cfg.Credentials = creds
			}
			cfg.CacheDir = t.TempDir()
			f, err := NewFetcher(cfg)
			if err != nil {
				t.Fatal(err)
			}
			_, err = f.Fetch(context.Background(), tc.ref)
			var fe *FetchError
			if err == nil || !strings.Contains(err.Error(), tc.want) || !asFetchError(err, &fe) {
				t.Fatalf("err = %v, want a *FetchError containing %q", err, tc.want)
			}
		})
	}
}

func asFetchError(err error, fe **FetchError) bool {
	e, ok := err.(*FetchError)
	*fe = e
	return ok
}

func TestFetchOCI(t *testing.T) {
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	push, err := registry.NewClient(registry.ClientOptPlainHTTP(), registry.ClientOptCredentialsFile(t.TempDir()+"/creds.json"))
	if err != nil {
		t.Fatal(err)
	}
	v1 := webChart(t, "1.0.0")
	pushed, err := push.Push(v1, host+"/charts/web:1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	f, err := NewFetcher(FetcherConfig{CacheDir: cache, PlainHTTPHosts: []string{host}})
	if err != nil {
		t.Fatal(err)
	}
	ref := Ref{OCI: "oci://" + host + "/charts/web", Version: "1.0.0", Digest: pushed.Manifest.Digest}
	data, err := f.Fetch(t.Context(), ref)
	if err != nil || !bytes.Equal(data, v1) {
		t.Fatalf("fetch: %v", err)
	}
	srv.Close() // the registry is gone: the cache answers
	if _, err := f.Fetch(t.Context(), ref); err != nil {
		t.Errorf("cached fetch: %v", err)
	}
	ref.Version = "1.0.1"
	if _, err := f.Fetch(t.Context(), ref); err == nil || !strings.Contains(err.Error(), "fetch chart oci://"+host+"/charts/web:1.0.1") {
		t.Errorf("unreachable registry: err = %v", err)
	}
}

func TestFetchOCIWrongDigest(t *testing.T) {
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	push, err := registry.NewClient(registry.ClientOptPlainHTTP(), registry.ClientOptCredentialsFile(t.TempDir()+"/creds.json"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := push.Push(webChart(t, "1.0.0"), u.Host+"/charts/web:1.0.0"); err != nil {
		t.Fatal(err)
	}
	f, err := NewFetcher(FetcherConfig{CacheDir: t.TempDir(), PlainHTTPHosts: []string{u.Host}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Fetch(t.Context(), Ref{OCI: "oci://" + u.Host + "/charts/web", Version: "1.0.0", Digest: "sha256:" + strings.Repeat("0", 64)})
	if err == nil || !strings.Contains(err.Error(), "digest mismatch: the manifest is sha256:") {
		t.Fatalf("err = %v, want a digest mismatch", err)
	}
}
