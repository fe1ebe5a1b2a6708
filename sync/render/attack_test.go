package render

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	securefs "github.com/fluxcd/pkg/kustomize/filesys"

	"github.com/outpost-gitops/outpost/sync/repo"
)

// remoteFields places a reference in each kustomization field kustomize may load or
// clone from; %s is the reference.
var remoteFields = map[string]string{
	"resources":             "resources: [%q]\n",
	"bases":                 "bases: [%q]\n",
	"components":            "components: [%q]\n",
	"generators":            "generators: [%q]\n",
	"transformers":          "transformers: [%q]\n",
	"validators":            "validators: [%q]\n",
	"patches":               "resources: [cm.yaml]\npatches: [{path: %q}]\n",
	"patchesStrategicMerge": "resources: [cm.yaml]\npatchesStrategicMerge: [%q]\n",
	"crds":                  "resources: [cm.yaml]\ncrds: [%q]\n",
	"configurations":        "resources: [cm.yaml]\nconfigurations: [%q]\n",
	"openapi":               "resources: [cm.yaml]\nopenapi: {path: %q}\n",
	"replacements":          "resources: [cm.yaml]\nreplacements: [{path: %q}]\n",
	"configMapGenerator":    "configMapGenerator: [{name: x, files: [%q]}]\n",
}

// remoteCorpus reads testdata/attacks/remote-refs.txt.
func remoteCorpus(t *testing.T) []string {
	t.Helper()
	f, err := os.Open("testdata/attacks/remote-refs.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var refs []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" && !strings.HasPrefix(line, "#") {
			refs = append(refs, line)
		}
	}
	if len(refs) < 10 {
		t.Fatalf("corpus has %d references", len(refs))
	}
	return refs
}

// fakeGit puts a git first on PATH that records every call, and points TMPDIR at an
// empty directory; it returns the record file and that directory.
func fakeGit(t *testing.T) (record, tmp string) {
	t.Helper()
	bin := t.TempDir()
	record = filepath.Join(t.TempDir(), "git-calls")
	script := fmt.Sprintf("#!/bin/sh\necho \"$@\" >> %q\nexit 1\n", record)
	if err := os.WriteFile(filepath.Join(bin, "git"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	tmp = t.TempDir()
	t.Setenv("TMPDIR", tmp)
	return record, tmp
}

// attackRepo writes a one-app repository whose kustomization is kust.
func attackRepo(t *testing.T, kust string) string {
	t.Helper()
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "clusters/test/apps.yaml"), "apps:\n  - name: web\n    version: \"1\"\n")
	writeFile(t, filepath.Join(root, "apps/web/cm.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\n")
	writeFile(t, filepath.Join(root, "apps/web/kustomization.yaml"), kust)
	return root
}

// wantNoGit fails the test when the fake git was called or kustomize left a clone
// directory behind.
func wantNoGit(t *testing.T, record, tmp string) {
	t.Helper()
	if data, err := os.ReadFile(record); err == nil {
		t.Errorf("git was executed:\n%s", data)
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, "kustomize-*")); len(left) > 0 {
		t.Errorf("kustomize clone directories left behind: %v", left)
	}
}

// TestAttackRemoteReferenceNeverRunsGit: every reference of the corpus in every
// field is refused by the precheck with an error naming file, field and reference,
// and git is never executed (security review H2, L11).
func TestAttackRemoteReferenceNeverRunsGit(t *testing.T) {
	record, tmp := fakeGit(t)
	for _, ref := range remoteCorpus(t) {
		for field, tmpl := range remoteFields {
			root := attackRepo(t, fmt.Sprintf(tmpl, ref))
			err := loadAndRender(root, "test")
			var re *repo.Error
			// A generator's file source is [key=]path: the error names the path part.
			named := err != nil && (field == "configMapGenerator" || strings.Contains(err.Error(), fmt.Sprintf("%q", ref)))
			if err == nil || !errors.As(err, &re) || !strings.Contains(err.Error(), "apps/web/kustomization.yaml") ||
				!strings.Contains(err.Error(), field) || !named {
				t.Errorf("%s %q: %v, want a repo error naming the file, the field and the reference", field, ref, err)
			}
		}
	}
	wantNoGit(t, record, tmp)
}

// TestAttackRemoteReferenceRefusedWithoutPrecheck: the build's own layer (every
// kustomization kustomize reads) refuses what a precheck might miss, so kustomize never
// reaches its git cloner. The control run without either layer shows that kustomize
// does execute git for these references.
func TestAttackRemoteReferenceRefusedWithoutPrecheck(t *testing.T) {
	build := func(root string, guard bool) error {
		secure, err := securefs.MakeFsOnDiskSecure(root)
		if err != nil {
			t.Fatal(err)
		}
		gfs := newGuardedFS(secure, root)
		gfs.guardKustomizations = guard
		_, err = runKustomize(securefs.MakeFsInMemory(gfs), filepath.Join(root, "apps/web"), false)
		if err != nil && gfs.refused != nil {
			err = gfs.refused
		}
		return err
	}
	t.Run("control: kustomize alone runs git", func(t *testing.T) {
		record, _ := fakeGit(t)
		root := attackRepo(t, "resources: [\"ci@a/b:org/repo?ref=--upload-pack=touch%20PWNED\"]\n")
		if err := build(root, false); err == nil {
			t.Fatal("build of a remote base succeeded")
		}
		data, err := os.ReadFile(record)
		if err != nil || len(data) == 0 {
			t.Fatalf("the control did not see kustomize run git (%v): the fake git is not effective", err)
		}
	})
	record, tmp := fakeGit(t)
	for _, ref := range remoteCorpus(t) {
		for _, field := range []string{"resources", "bases", "components", "generators", "transformers", "validators"} {
			root := attackRepo(t, fmt.Sprintf(remoteFields[field], ref))
			err := build(root, true)
			if err == nil || !strings.Contains(err.Error(), "rendering never fetches remote bases or runs git") {
				t.Errorf("%s %q: %v, want the build layer's refusal", field, ref, err)
			}
		}
	}
	wantNoGit(t, record, tmp)
}

// TestLocalReferencesStillRender: the stricter rules leave ordinary local
// references alone (names with dots, nested directories, generators' key=path).
func TestLocalReferencesStillRender(t *testing.T) {
	root := attackRepo(t, "resources: [cm.yaml, ./sub/, ../../bases/x]\nconfigMapGenerator: [{name: g, files: [key.conf=files/a.b.conf]}]\n")
	writeFile(t, filepath.Join(root, "apps/web/sub/kustomization.yaml"), "resources: [s.yaml]\n")
	writeFile(t, filepath.Join(root, "apps/web/sub/s.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: s}\n")
	writeFile(t, filepath.Join(root, "bases/x/kustomization.yaml"), "resources: [x.yaml]\n")
	writeFile(t, filepath.Join(root, "bases/x/x.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
	writeFile(t, filepath.Join(root, "apps/web/files/a.b.conf"), "k=v\n")
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
		t.Fatal(err)
	}
	if len(res.Objects) != 4 {
		t.Errorf("rendered %d objects, want 4", len(res.Objects))
	}
}
