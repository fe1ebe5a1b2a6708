package render

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/outpost-gitops/outpost/sync/object"
	"github.com/outpost-gitops/outpost/sync/repo"
)

const deployYAML = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  template:
    spec:
      containers: [{name: web, image: "nginx:${APP_VERSION}"}]
`

// newRepo writes files (repo-relative path -> content) into a temporary
// repository with one cluster "test" listing app "web" at 1.0.0 unless files
// say otherwise, and returns its root.
func newRepo(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	all := map[string]string{
		"clusters/test/cluster.yaml": "labels: {env: test}\n",
		"clusters/test/apps.yaml":    "apps:\n  - name: web\n    version: \"1.0.0\"\n",
		"apps/web/app.yaml":          "namespace: web\n",
		"apps/web/deploy.yaml":       deployYAML,
	}
	for k, v := range files {
		all[k] = v
	}
	for k, v := range all {
		if v == "" {
			continue // "" deletes a default file
		}
		writeFile(t, filepath.Join(root, k), v)
	}
	return root
}

func renderApp(t *testing.T, root, app string, opts Options) (*Result, error) {
	t.Helper()
	spec, err := repo.LoadDir(context.Background(), root, "test")
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(root, opts)
	if err != nil {
		t.Fatal(err)
	}
	return r.Render(context.Background(), spec, spec.App(app))
}

func TestVars(t *testing.T) {
	cluster := &repo.ClusterSpec{
		Name:   "prod",
		Labels: map[string]string{"env": "prod", "topology.kubernetes.io/region": "eu"},
		Vars:   map[string]string{"replicas": "1", "domain": "example.com"},
	}
	tests := map[string]struct {
		app  repo.App
		want map[string]string
	}{
		"app vars override cluster vars": {
			app: repo.App{Name: "web", Version: "1.2.3", Vars: map[string]string{"replicas": "3"},
				Config: repo.AppConfig{Namespace: "web"}},
			want: map[string]string{
				"CLUSTER_LABEL_env": "prod", "CLUSTER_LABEL_topology_kubernetes_io_region": "eu",
				"replicas": "3", "domain": "example.com",
				"APP_NAME": "web", "APP_VERSION": "1.2.3", "APP_NAMESPACE": "web", "CLUSTER_NAME": "prod",
			},
		},
		"built-ins win over hand-made vars": {
			app: repo.App{Name: "db", Version: "15", Vars: map[string]string{"APP_VERSION": "x"}},
			want: map[string]string{
				"CLUSTER_LABEL_env": "prod", "CLUSTER_LABEL_topology_kubernetes_io_region": "eu",
				"replicas": "1", "domain": "example.com",
				"APP_NAME": "db", "APP_VERSION": "15", "APP_NAMESPACE": "", "CLUSTER_NAME": "prod",
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := Vars(cluster, &tc.app); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v\nwant %v", got, tc.want)
			}
		})
	}
}

func obj(apiVersion, kind, ns, name string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(apiVersion)
	u.SetKind(kind)
	u.SetNamespace(ns)
	u.SetName(name)
	return u
}

func TestSetDefaultNamespace(t *testing.T) {
	crd := obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", "", "gadgets.example.com")
	_ = unstructured.SetNestedField(crd.Object, "example.com", "spec", "group")
	_ = unstructured.SetNestedField(crd.Object, "Gadget", "spec", "names", "kind")
	_ = unstructured.SetNestedField(crd.Object, "Cluster", "spec", "scope")
	mapper := func(gvk schema.GroupVersionKind) (bool, error) {
		switch gvk.Kind {
		case "Issuer":
			return true, nil
		case "ClusterIssuer", "Namespace":
			return false, nil
		}
		return false, fmt.Errorf("no matches for kind %q", gvk.Kind)
	}
	tests := map[string]struct {
		objs    []*unstructured.Unstructured
		scope   func(objs []*unstructured.Unstructured) NamespacedFunc
		want    []string // namespaces after defaulting
		wantErr string
	}{
		"builtin list": {
			objs: []*unstructured.Unstructured{
				obj("v1", "ConfigMap", "", "a"), obj("v1", "Namespace", "", "web"),
				obj("rbac.authorization.k8s.io/v1", "ClusterRole", "", "r"), obj("apps/v1", "Deployment", "other", "d"),
				obj("cert-manager.io/v1", "ClusterIssuer", "", "ci"),
			},
			scope: BuiltinNamespaced,
			want:  []string{"web", "", "", "other", "web"}, // the ClusterIssuer is the documented limit
		},
		"crd in the render decides": {
			objs:  []*unstructured.Unstructured{crd, obj("example.com/v1", "Gadget", "", "g")},
			scope: BuiltinNamespaced,
			want:  []string{"", ""},
		},
		"mapper knows cluster-scoped custom kinds": {
			objs: []*unstructured.Unstructured{obj("cert-manager.io/v1", "ClusterIssuer", "", "ci"),
				obj("cert-manager.io/v1", "Issuer", "", "i")},
			scope: func(objs []*unstructured.Unstructured) NamespacedFunc { return withCRDFallback(mapper, objs) },
			want:  []string{"", "web"},
		},
		"mapper error falls back to a crd in the render": {
			objs: []*unstructured.Unstructured{crd, obj("example.com/v1", "Gadget", "", "g")},
			scope: func(objs []*unstructured.Unstructured) NamespacedFunc {
				return withCRDFallback(func(gvk schema.GroupVersionKind) (bool, error) {
					if gvk.Kind == "Gadget" {
						return false, errors.New("no matches")
					}
					return false, nil
				}, objs)
			},
			want: []string{"", ""},
		},
		"mapper error without crd": {
			objs:    []*unstructured.Unstructured{obj("example.com/v1", "Thing", "", "t")},
			scope:   func(objs []*unstructured.Unstructured) NamespacedFunc { return withCRDFallback(mapper, objs) },
			wantErr: `Thing.example.com/t: scope of example.com/v1, Kind=Thing: no matches for kind "Thing"`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := SetDefaultNamespace(tc.objs, "web", tc.scope(tc.objs))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, o := range tc.objs {
				got = append(got, o.GetNamespace())
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("namespaces %v, want %v", got, tc.want)
			}
		})
	}
}

func TestRenderOptionsIsNamespaced(t *testing.T) {
	root := newRepo(t, map[string]string{
		"apps/web/issuer.yaml": "apiVersion: cert-manager.io/v1\nkind: ClusterIssuer\nmetadata:\n  name: letsencrypt\n",
	})
	mapper := func(gvk schema.GroupVersionKind) (bool, error) { return gvk.Kind != "ClusterIssuer", nil }
	res, err := renderApp(t, root, "web", Options{IsNamespaced: mapper})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range res.Objects {
		want := "web"
		if o.GetKind() == "ClusterIssuer" {
			want = ""
		}
		if o.GetNamespace() != want {
			t.Errorf("%s: namespace %q, want %q", object.RefOf(o).String(), o.GetNamespace(), want)
		}
	}
}

func TestRenderResult(t *testing.T) {
	root := newRepo(t, map[string]string{
		"apps/web/sub/svc.yaml":              "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n",
		"apps/web/notes.txt":                 "not a manifest",
		"apps/web/.editor.yaml":              "garbage: [",
		"apps/web/nested/kustomization.yaml": "resources: [cm.yaml]\nnamePrefix: n-\n",
		"apps/web/nested/cm.yaml":            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n",
	})
	res, err := renderApp(t, root, "web", Options{})
	if err != nil {
		t.Fatal(err)
	}
	var refs []string
	for _, o := range res.Objects {
		refs = append(refs, object.RefOf(o).String())
	}
	wantRefs := []string{"ConfigMap/web/n-cm", "Service/web/web", "Deployment.apps/web/web"}
	if !reflect.DeepEqual(refs, wantRefs) {
		t.Errorf("objects %v, want %v", refs, wantRefs)
	}
	wantSources := []string{"apps/web/deploy.yaml", "apps/web/nested/cm.yaml", "apps/web/nested/kustomization.yaml", "apps/web/sub/svc.yaml"}
	if !reflect.DeepEqual(res.Sources, wantSources) {
		t.Errorf("sources %v, want %v", res.Sources, wantSources)
	}
	if !res.GeneratedKustomization || res.App != "web" || res.Version != "1.0.0" || res.Cluster != "test" || res.Namespace != "web" {
		t.Errorf("result header wrong: %+v", res)
	}
	again, err := renderApp(t, root, "web", Options{})
	if err != nil || again.Digest != res.Digest || !strings.HasPrefix(res.Digest, "sha256:") {
		t.Errorf("digest not stable: %s vs %s (%v)", res.Digest, again.Digest, err)
	}
}

func TestRenderOpenAPIUsesIsolatedBuild(t *testing.T) {
	root := newRepo(t, map[string]string{
		"apps/web/kustomization.yaml": "resources: [deploy.yaml]\nopenapi:\n  path: schema.json\n",
		"apps/web/schema.json":        `{"definitions": {}}`,
	})
	res, err := renderApp(t, root, "web", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Objects) != 1 || res.GeneratedKustomization {
		t.Errorf("unexpected result %+v", res)
	}
}

func TestRenderRefusesFIFO(t *testing.T) {
	root := newRepo(t, map[string]string{"apps/web/kustomization.yaml": "resources: [deploy.yaml, pipe.yaml]\n"})
	if err := syscall.Mkfifo(filepath.Join(root, "apps/web/pipe.yaml"), 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	_, err := renderApp(t, root, "web", Options{})
	if err == nil || !strings.Contains(err.Error(), "apps/web/pipe.yaml: not a regular file") {
		t.Fatalf("got %v", err)
	}
}

func TestRenderAppDirErrors(t *testing.T) {
	root := newRepo(t, nil)
	spec, err := repo.LoadDir(context.Background(), root, "test")
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		app     repo.App
		wantErr string
	}{
		"path in name": {app: repo.App{Name: "../x"}, wantErr: `app name "../x" must not contain path characters`},
		"missing dir":  {app: repo.App{Name: "gone"}, wantErr: "apps/gone: app directory not found"},
		"canceled ctx": {app: *spec.App("web"), wantErr: "context canceled"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			if name == "canceled ctx" {
				cancel()
			}
			defer cancel()
			_, err := r.Render(ctx, spec, &tc.app)
			var re *Error
			if !errors.As(err, &re) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("got %v, want *Error containing %q", err, tc.wantErr)
			}
			if re.Permanent() == (name == "canceled ctx") {
				t.Errorf("Permanent() = %v", re.Permanent())
			}
		})
	}
}

func TestGuardedFSIsReadOnly(t *testing.T) {
	root := newRepo(t, nil)
	r, err := New(root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	g := newGuardedFS(r.secure, r.root)
	p := filepath.Join(r.root, "apps/web/new.yaml")
	for name, op := range map[string]func() error{
		"WriteFile": func() error { return g.WriteFile(p, []byte("x")) },
		"Create":    func() error { _, err := g.Create(p); return err },
		"Mkdir":     func() error { return g.Mkdir(p) },
		"MkdirAll":  func() error { return g.MkdirAll(p) },
		"RemoveAll": func() error { return g.RemoveAll(filepath.Join(r.root, "apps")) },
	} {
		if err := op(); !errors.Is(err, errReadOnly) {
			t.Errorf("%s: got %v, want errReadOnly", name, err)
		}
	}
}

// TestRenderConcurrent renders the same apps from many goroutines (run with
// -race): results must be identical.
func TestRenderConcurrent(t *testing.T) {
	root := newRepo(t, map[string]string{
		"clusters/test/apps.yaml": "apps:\n  - name: web\n    version: \"1\"\n  - name: api\n    version: \"2\"\n",
		"apps/api/deploy.yaml":    strings.ReplaceAll(deployYAML, "name: web", "name: api"),
	})
	spec, err := repo.LoadDir(context.Background(), root, "test")
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	digests := make([]string, 16)
	var wg sync.WaitGroup
	for i := range digests {
		wg.Go(func() {
			res, err := r.Render(context.Background(), spec, &spec.Apps[i%2])
			if err != nil {
				t.Error(err)
				return
			}
			digests[i] = res.Digest
		})
	}
	wg.Wait()
	for i := 2; i < len(digests); i++ {
		if digests[i] != digests[i%2] {
			t.Errorf("render %d digest %s, want %s", i, digests[i], digests[i%2])
		}
	}
}

func TestRootPathKustomizeCannotBuildUnder(t *testing.T) {
	root := filepath.Join(t.TempDir(), "my repo")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := New(root, Options{})
	if err == nil || !strings.Contains(err.Error(), `path element "my repo"`) {
		t.Fatalf("New(%q) = %v, want an error naming the path element", root, err)
	}
}
