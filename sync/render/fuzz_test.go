package render

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outpost-gitops/outpost/sync/object"
	"github.com/outpost-gitops/outpost/sync/repo"
)

// The fuzz targets run their seed corpus (testdata/fuzz/<Name>/ plus f.Add) as
// part of go test; fuzz them with e.g.
//
//	go test ./sync/render -run '^$' -fuzz FuzzRenderManifest -fuzztime 60s

// secretMarker sits in a file next to (outside) the fuzzed repository; no render
// may ever output it.
const secretMarker = "OUTSIDE-THE-REPO-SECRET"

// fuzzRepo writes a repository with cluster "test" and app "web" (vars A and
// replicas) under a temporary directory, a secret file beside it, and returns
// the repository root.
func fuzzRepo(f *testing.F) string {
	base := f.TempDir()
	root := filepath.Join(base, "repo")
	files := map[string]string{
		"clusters/test/cluster.yaml":    "labels: {env: test}\nvars: {replicas: \"2\"}\n",
		"clusters/test/apps.yaml":       "apps:\n  - name: web\n    version: \"1.0.0\"\n    vars: {A: x}\n",
		"apps/web/app.yaml":             "namespace: web\nallowEmpty: true\n",
		"bases/base/kustomization.yaml": "resources: [cm.yaml]\n",
		"bases/base/cm.yaml":            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: base\n",
		"../secret.yaml":                "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\nstringData:\n  v: " + secretMarker + "\n",
	}
	for k, v := range files {
		p := filepath.Join(root, k)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			f.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(v), 0o644); err != nil {
			f.Fatal(err)
		}
	}
	if err := os.Symlink("../../../secret.yaml", filepath.Join(root, "apps/web/link.yaml.txt")); err != nil {
		f.Fatal(err)
	}
	return root
}

// fuzzRender renders app web after writing files (app-relative) into its
// directory, then removes them. It checks the invariants of any render.
func fuzzRender(t *testing.T, root string, files map[string][]byte) {
	dir := filepath.Join(root, "apps/web")
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(filepath.Join(dir, name))
	}
	spec, err := repo.LoadDir(context.Background(), root, "test")
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.Render(context.Background(), spec, spec.App("web"))
	if err != nil {
		var re *Error
		if !errors.As(err, &re) {
			t.Fatalf("error is %T, not *render.Error: %v", err, err)
		}
		return
	}
	checkInvariants(t, res)
	for _, s := range res.Sources {
		if strings.HasPrefix(s, "..") || filepath.IsAbs(s) {
			t.Fatalf("read a file outside the repository: %s", s)
		}
	}
	for _, o := range res.Objects {
		b, _ := o.MarshalJSON()
		if strings.Contains(string(b), secretMarker) {
			t.Fatalf("object %s carries the secret from outside the repository", object.RefOf(o).String())
		}
	}
}

// FuzzRenderManifest renders a plain app folder whose one manifest is the input.
func FuzzRenderManifest(f *testing.F) {
	f.Add([]byte(deployYAML))
	f.Add([]byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c-${A}\ndata:\n  r: \"${replicas}\"\n  v: ${APP_VERSION}\n"))
	f.Add([]byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n"))
	f.Add([]byte("a: &a [x, x]\nb: [*a, *a]\n"))
	root := fuzzRepo(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzRender(t, root, map[string][]byte{"manifest.yaml": data})
	})
}

// FuzzRenderKustomization renders an app whose kustomization.yaml is the input,
// next to a manifest; it hunts for ways out of the repository (the secret beside
// it must never show up) and for panics in the precheck and kustomize.
func FuzzRenderKustomization(f *testing.F) {
	f.Add([]byte("resources: [manifest.yaml]\n"))
	f.Add([]byte("resources: [../../bases/base, manifest.yaml]\nnamePrefix: p-\n"))
	f.Add([]byte("resources: [../../../secret.yaml]\n"))
	f.Add([]byte("resources: [link.yaml.txt]\n"))
	f.Add([]byte("configMapGenerator:\n- name: g\n  files: [k=../../../secret.yaml]\n"))
	f.Add([]byte("resources: [https://example.com/x.yaml]\n"))
	f.Add([]byte("patches:\n- path: ../../../secret.yaml\n"))
	root := fuzzRepo(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzRender(t, root, map[string][]byte{
			"kustomization.yaml": data,
			"manifest.yaml":      []byte(deployYAML),
		})
	})
}
