package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// diffRepo is a checkout with main (two clusters, web 1.0 and db) and a branch
// feature that bumps web on dev and removes db from prod; the working tree is at
// feature.
func diffRepo(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	r, err := git.PlainInit(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	w, err := r.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	commit := func(files map[string]string, msg string) plumbing.Hash {
		for p, c := range files {
			full := filepath.Join(dir, filepath.FromSlash(p))
			if c == "" {
				if _, err := w.Remove(p); err != nil {
					t.Fatal(err)
				}
				continue
			}
			if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := w.Add(p); err != nil {
				t.Fatal(err)
			}
		}
		h, err := w.Commit(msg, &git.CommitOptions{Author: &object.Signature{Name: "t", Email: "t@example.com", When: time.Unix(1700000000, 0)}})
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	cm := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\ndata:\n  version: \"${APP_VERSION}\"\n"
	main := commit(map[string]string{
		"clusters/dev/cluster.yaml":  "labels: {env: dev}\n",
		"clusters/dev/apps.yaml":     "apps:\n  - name: web\n    version: \"1.0\"\n",
		"clusters/prod/cluster.yaml": "labels: {env: prod}\n",
		"clusters/prod/apps.yaml":    "apps:\n  - name: web\n    version: \"1.0\"\n  - name: db\n    version: \"1.0\"\n",
		"apps/web/app.yaml":          "namespace: web\n",
		"apps/web/cm.yaml":           strings.Replace(cm, "%s", "web", 1),
		"apps/db/app.yaml":           "namespace: db\n",
		"apps/db/cm.yaml":            strings.Replace(cm, "%s", "db", 1),
	}, "base")
	if err := r.Storer.SetReference(plumbing.NewHashReference("refs/heads/main", main)); err != nil {
		t.Fatal(err)
	}
	if err := w.Checkout(&git.CheckoutOptions{Branch: "refs/heads/feature", Create: true}); err != nil {
		t.Fatal(err)
	}
	commit(map[string]string{
		"clusters/dev/apps.yaml":  "apps:\n  - name: web\n    version: \"1.1\"\n",
		"clusters/prod/apps.yaml": "apps:\n  - name: web\n    version: \"1.0\"\n",
	}, "bump web on dev, drop db from prod")
	return dir
}

func TestDiffExitCodesAndOutputs(t *testing.T) {
	dir := diffRepo(t)
	tests := map[string]struct {
		args     []string
		code     int
		contains []string
	}{
		"changes, default base and head": {[]string{"diff", "--repo", dir}, ExitDiffChanges,
			[]string{"cluster dev", "-  version: \"1.0\"", "+  version: \"1.1\"", "- removed (would be pruned) ConfigMap/db/db"}},
		"one cluster":                {[]string{"diff", "--repo", dir, "--cluster", "dev"}, ExitDiffChanges, []string{"cluster dev", "1 clusters"}},
		"selector":                   {[]string{"diff", "--repo", dir, "-l", "env=prod", "-o", "markdown"}, ExitDiffChanges, []string{"<details><summary>prod</summary>", "removed from this cluster"}},
		"fail on prune":              {[]string{"diff", "--repo", dir, "--fail-on", "prune"}, ExitDiffPolicy, []string{"--fail-on prune"}},
		"fail on crd: none":          {[]string{"diff", "--repo", dir, "--fail-on", "crd"}, ExitDiffChanges, nil},
		"no change":                  {[]string{"diff", "--repo", dir, "--base", "feature", "--head", "feature"}, ExitOK, []string{"0 clusters"}},
		"explicit refs":              {[]string{"diff", "--repo", dir, "--base", "main", "--head", "feature", "-o", "json"}, ExitDiffChanges, []string{`"action": "removed"`}},
		"unknown ref":                {[]string{"diff", "--repo", dir, "--base", "nope"}, ExitDiffError, []string{`revision "nope"`}},
		"not a repository":           {[]string{"diff", "--repo", t.TempDir()}, ExitDiffError, []string{"open repository"}},
		"bad output":                 {[]string{"diff", "--repo", dir, "-o", "yaml"}, ExitUsage, []string{"--output"}},
		"bad fail-on":                {[]string{"diff", "--repo", dir, "--fail-on", "everything"}, ExitUsage, []string{"--fail-on"}},
		"bad selector":               {[]string{"diff", "--repo", dir, "-l", "env in (a"}, ExitUsage, []string{"--selector"}},
		"kubeconfig without cluster": {[]string{"diff", "--repo", dir, "--kubeconfig", "/tmp/kc"}, ExitUsage, []string{"want CLUSTER=PATH"}},
		"kubeconfig missing file":    {[]string{"diff", "--repo", dir, "--kubeconfig", "dev=/nonexistent/kubeconfig"}, ExitDiffError, []string{"--kubeconfig dev=/nonexistent/kubeconfig"}},
		"cluster and selector":       {[]string{"diff", "--repo", dir, "-c", "dev", "-l", "env=dev"}, ExitUsage, []string{"give one of them"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			res := runVerb(t, nil, tc.args...)
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
}

// The working tree is the default head: an uncommitted edit shows, and a head that
// does not render exits 2 naming the app and its error.
func TestDiffWorkingTreeAndRenderErrors(t *testing.T) {
	dir := diffRepo(t)
	if err := os.WriteFile(filepath.Join(dir, "apps/web/cm.yaml"), []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  v: ${NOT_DEFINED}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res := runVerb(t, nil, "diff", "--repo", dir, "-o", "json")
	if res.code != ExitDiffError {
		t.Fatalf("exit code %d, want %d\n%s%s", res.code, ExitDiffError, res.stdout, res.stderr)
	}
	var out struct {
		Errors []struct{ Side, Cluster, App, Message string } `json:"errors"`
	}
	if err := json.Unmarshal([]byte(res.stdout), &out); err != nil {
		t.Fatalf("%v\n%s", err, res.stdout)
	}
	if len(out.Errors) == 0 || out.Errors[0].Side != "head" || out.Errors[0].App != "web" || !strings.Contains(out.Errors[0].Message, "NOT_DEFINED") {
		t.Fatalf("errors %+v, want head/web naming NOT_DEFINED", out.Errors)
	}
}
