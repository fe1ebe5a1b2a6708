package render

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outpost-gitops/outpost/sync/repo"
)

// badCorpus is the shared bad-input corpus: one directory per case holding a
// repository (repo/), the expected error text (error.txt) and optionally the
// cluster to load (cluster.txt, default "test"). See sync/testdata/README.md.
const badCorpus = "../testdata/bad"

// badSetups generate inputs too big to check in; they run on the case's copy.
var badSetups = map[string]func(t *testing.T, root string){
	"oversize-manifest": func(t *testing.T, root string) {
		writeFile(t, filepath.Join(root, "apps/web/big.yaml"), strings.Repeat("#", repo.MaxFileSize+1))
	},
	"oversize-apps-yaml": func(t *testing.T, root string) {
		writeFile(t, filepath.Join(root, "clusters/test/apps.yaml"), "apps: []\n"+strings.Repeat("#", repo.MaxFileSize+1-9))
	},
	"too-many-objects": func(t *testing.T, root string) {
		var b strings.Builder
		for i := range MaxObjects {
			fmt.Fprintf(&b, "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm-%d}\n", i)
		}
		writeFile(t, filepath.Join(root, "apps/web/many.yaml"), b.String())
	},
}

// TestBadInputs loads and renders every case of the corpus and checks that it
// fails, without panicking, with a typed error whose text contains error.txt.
func TestBadInputs(t *testing.T) {
	cases, err := os.ReadDir(badCorpus)
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) < 12 {
		t.Fatalf("corpus has %d cases, want at least 12", len(cases))
	}
	for _, c := range cases {
		t.Run(c.Name(), func(t *testing.T) {
			dir := copyTree(t, filepath.Join(badCorpus, c.Name()))
			want := strings.TrimSpace(readFile(t, filepath.Join(dir, "error.txt")))
			cluster := "test"
			if b, err := os.ReadFile(filepath.Join(dir, "cluster.txt")); err == nil {
				cluster = strings.TrimSpace(string(b))
			}
			root := filepath.Join(dir, "repo")
			if setup := badSetups[c.Name()]; setup != nil {
				setup(t, root)
			}
			err := loadAndRender(root, cluster)
			t.Logf("error: %v", err)
			if err == nil {
				t.Fatalf("no error, want one containing %q", want)
			}
			if !strings.Contains(err.Error(), want) {
				t.Fatalf("error:\n  %v\ndoes not contain:\n  %s", err, want)
			}
			var re *repo.Error
			var rendErr *Error
			if !errors.As(err, &re) && !errors.As(err, &rendErr) {
				t.Errorf("error %v is %T, want *repo.Error or *render.Error", err, err)
			}
		})
	}
}

// loadAndRender loads cluster and renders its apps in dependency order; it
// turns a panic into an error so that one bad case cannot hide the others.
func loadAndRender(root, cluster string) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("PANIC: %v", p)
		}
	}()
	spec, err := repo.LoadDir(context.Background(), root, cluster)
	if err != nil {
		return err
	}
	r, err := New(root, Options{})
	if err != nil {
		return err
	}
	for _, level := range spec.Order {
		for _, name := range level {
			if _, err := r.Render(context.Background(), spec, spec.App(name)); err != nil {
				return err
			}
		}
	}
	return nil
}

// copyTree copies src into a temporary directory, keeping symlinks as symlinks
// (so relative links that point out of repo/ still do), and returns the copy.
func copyTree(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		default:
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(target, data, 0o644)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
