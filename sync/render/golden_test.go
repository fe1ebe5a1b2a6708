package render

import (
	"bytes"
	"context"
	"crypto/sha256"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/outpost-gitops/outpost/sync/object"
	"github.com/outpost-gitops/outpost/sync/repo"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden/*/want")

// TestGolden renders every app of every cluster of each testdata/golden/<case>/repo
// and compares with testdata/golden/<case>/want/<cluster>/<app>.yaml. It also
// checks that rendering left the repository byte-for-byte unchanged.
func TestGolden(t *testing.T) {
	cases, err := os.ReadDir("testdata/golden")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.Name(), func(t *testing.T) {
			dir := filepath.Join("testdata/golden", c.Name())
			root := filepath.Join(dir, "repo")
			before := snapshot(t, root)
			r, err := New(root, Options{})
			if err != nil {
				t.Fatal(err)
			}
			clusters, err := repo.ListClustersDir(root)
			if err != nil {
				t.Fatal(err)
			}
			for _, cl := range clusters {
				renderCluster(t, r, root, cl, filepath.Join(dir, "want", cl))
			}
			if after := snapshot(t, root); after != before {
				t.Errorf("render changed the repository:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
}

func renderCluster(t *testing.T, r *Renderer, root, cluster, wantDir string) {
	spec, err := repo.LoadDir(context.Background(), root, cluster)
	if err != nil {
		t.Fatal(err)
	}
	for i := range spec.Apps {
		app := &spec.Apps[i]
		res, err := r.Render(context.Background(), spec, app)
		if err != nil {
			t.Fatalf("render %s/%s: %v", cluster, app.Name, err)
		}
		checkInvariants(t, res)
		compareGolden(t, filepath.Join(wantDir, app.Name+".yaml"), formatResult(t, res))
	}
}

// checkInvariants holds for every successful render.
func checkInvariants(t *testing.T, res *Result) {
	t.Helper()
	seen := map[object.Ref]bool{}
	for _, o := range res.Objects {
		_ = o.DeepCopy() // panics on values of types JSON does not have (int, time.Time)
		l := o.GetLabels()
		if !object.DefaultOwner().Owns(l, res.App) {
			t.Errorf("%s: ownership labels missing: %v", object.RefOf(o).String(), l)
		}
		if o.GetAPIVersion() == "" || o.GetKind() == "" || o.GetName() == "" {
			t.Errorf("object without identity: %v", o.Object)
		}
		if seen[object.RefOf(o)] {
			t.Errorf("duplicate %s", object.RefOf(o).String())
		}
		seen[object.RefOf(o)] = true
	}
	if len(res.Objects) > MaxObjects {
		t.Errorf("%d objects", len(res.Objects))
	}
}

// formatResult prints a Result as a header comment and the objects, then the hooks,
// as YAML.
func formatResult(t *testing.T, res *Result) []byte {
	t.Helper()
	var b bytes.Buffer
	fmt.Fprintf(&b, "# cluster: %s\n# app: %s\n# version: %s\n# namespace: %s\n# generatedKustomization: %v\n# digest: %s\n# sources:\n",
		res.Cluster, res.App, res.Version, res.Namespace, res.GeneratedKustomization, res.Digest)
	for _, s := range res.Sources {
		fmt.Fprintf(&b, "#   - %s\n", s)
	}
	for _, o := range res.Objects {
		y, err := yaml.Marshal(o.Object)
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString("---\n")
		b.Write(y)
	}
	for _, hk := range res.Hooks {
		y, err := yaml.Marshal(hk.Object.Object)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "--- # hook: phase %s, weight %d, delete policies %v, template %s\n", hk.Phase, hk.Weight, hk.DeletePolicies, hk.Template)
		b.Write(y)
	}
	return b.Bytes()
}

func compareGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./sync/render -run TestGolden -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the render (run with -update to accept):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// snapshot lists every path under root with its mode and content hash (or
// symlink target).
func snapshot(t *testing.T, root string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fmt.Fprintf(&b, "%s %s", rel, info.Mode())
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			fmt.Fprintf(&b, " -> %s", target)
		case info.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(&b, " %x", sha256.Sum256(data))
		}
		b.WriteString("\n")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}
