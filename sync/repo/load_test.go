package repo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

// baseRepo is a valid repository; tests copy it and change files.
func baseRepo() fstest.MapFS {
	return fstest.MapFS{
		"clusters/prod/cluster.yaml": {Data: []byte("labels:\n  env: prod\nvars:\n  domain: example.com\n")},
		"clusters/prod/apps.yaml": {Data: []byte("apps:\n" +
			"  - name: web\n    version: \"1.4.2\"\n    vars: { replicas: \"3\" }\n" +
			"  - name: db\n    version: \"15\"\n" +
			"  - name: cache\n    version: \"7\"\n")},
		"apps/web/app.yaml":       {Data: []byte("namespace: web\ndependsOn:\n  - db\n  - cache\n")},
		"apps/web/deploy.yaml":    {Data: []byte("kind: Deployment\n")},
		"apps/db/app.yaml":        {Data: []byte("namespace: db\ndrift: correct\n")},
		"apps/db/sts.yaml":        {Data: []byte("kind: StatefulSet\n")},
		"apps/cache/deploy.yaml":  {Data: []byte("kind: Deployment\n")},
		"apps/unused/deploy.yaml": {Data: []byte("kind: Deployment\n")},
	}
}

func TestLoad(t *testing.T) {
	spec, err := Load(context.Background(), baseRepo(), "prod")
	if err != nil {
		t.Fatal(err)
	}
	if spec.Name != "prod" || spec.Labels["env"] != "prod" || spec.Vars["domain"] != "example.com" {
		t.Errorf("cluster config not loaded: %+v", spec)
	}
	wantOrder := [][]string{{"cache", "db"}, {"web"}}
	if !reflect.DeepEqual(spec.Order, wantOrder) {
		t.Errorf("order = %v, want %v", spec.Order, wantOrder)
	}
	web := spec.App("web")
	if web == nil || web.Version != "1.4.2" || web.Vars["replicas"] != "3" || web.Path != "apps/web" ||
		web.ConfigFile != "apps/web/app.yaml" || web.Config.Namespace != "web" || !web.Config.Prune {
		t.Errorf("web not resolved: %+v", web)
	}
	cache := spec.App("cache")
	if cache.ConfigFile != "" || cache.Config.Drift != DriftReport || cache.Config.HealthTimeout.Duration != 5*time.Minute {
		t.Errorf("cache should have default config: %+v", cache)
	}
	wantFiles := []string{"apps/db/app.yaml", "apps/web/app.yaml", "clusters/prod/apps.yaml", "clusters/prod/cluster.yaml"}
	if !reflect.DeepEqual(spec.Files, wantFiles) {
		t.Errorf("files = %v, want %v", spec.Files, wantFiles)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := map[string]struct {
		cluster string
		edit    func(fstest.MapFS)
		wantErr string
	}{
		"cluster name with path":  {cluster: "../prod", wantErr: `clusters: cluster: cluster name "../prod" must not contain path characters`},
		"cluster name with slash": {cluster: "prod/x", wantErr: "must not contain path characters"},
		"cluster name empty":      {cluster: "", wantErr: "cluster name must not be empty"},
		"unknown cluster":         {cluster: "staging", wantErr: `clusters/staging: cluster "staging" not found`},
		"cluster is a file": {cluster: "prod", edit: func(m fstest.MapFS) {
			for k := range m {
				if strings.HasPrefix(k, "clusters/") {
					delete(m, k)
				}
			}
			m["clusters/prod"] = &fstest.MapFile{Data: []byte("x")}
		}, wantErr: `clusters/prod: cluster "prod" not found (not a directory)`},
		"apps.yaml missing": {cluster: "prod", edit: func(m fstest.MapFS) { delete(m, "clusters/prod/apps.yaml") },
			wantErr: "clusters/prod/apps.yaml: file not found"},
		"cluster.yaml optional": {cluster: "prod", edit: func(m fstest.MapFS) { delete(m, "clusters/prod/cluster.yaml") }},
		"unknown app": {cluster: "prod", edit: func(m fstest.MapFS) {
			m["clusters/prod/apps.yaml"] = &fstest.MapFile{Data: []byte("apps:\n  - name: web\n    version: v1\n  - name: nope\n    version: v1\n")}
			m["apps/web/app.yaml"] = &fstest.MapFile{}
		}, wantErr: `clusters/prod/apps.yaml:4: apps[1].name: unknown app "nope": no directory apps/nope/`},
		"app dir is a file": {cluster: "prod", edit: func(m fstest.MapFS) {
			m["clusters/prod/apps.yaml"] = &fstest.MapFile{Data: []byte("apps:\n  - name: odd\n    version: v1\n")}
			m["apps/odd"] = &fstest.MapFile{Data: []byte("x")}
		}, wantErr: `clusters/prod/apps.yaml:2: apps[0].name: unknown app "odd": no directory apps/odd/ (not a directory)`},
		"dependsOn not listed": {cluster: "prod", edit: func(m fstest.MapFS) {
			m["apps/web/app.yaml"] = &fstest.MapFile{Data: []byte("dependsOn:\n  - db\n  - unused\n")}
		}, wantErr: `apps/web/app.yaml:3: dependsOn[1]: app "unused" is not deployed to this cluster (not listed in clusters/prod/apps.yaml)`},
		"dependsOn self": {cluster: "prod", edit: func(m fstest.MapFS) {
			m["apps/web/app.yaml"] = &fstest.MapFile{Data: []byte("dependsOn: [web]\n")}
		}, wantErr: `apps/web/app.yaml:1: dependsOn[0]: app "web" depends on itself`},
		"cycle": {cluster: "prod", edit: func(m fstest.MapFS) {
			m["apps/db/app.yaml"] = &fstest.MapFile{Data: []byte("dependsOn: [cache]\n")}
			m["apps/cache/app.yaml"] = &fstest.MapFile{Data: []byte("# cache\ndependsOn: [web]\n")}
		}, wantErr: "apps/cache/app.yaml:2: dependsOn[0]: dependency cycle: cache -> web -> cache"},
		"bad app.yaml": {cluster: "prod", edit: func(m fstest.MapFS) {
			m["apps/db/app.yaml"] = &fstest.MapFile{Data: []byte("drift: always\n")}
		}, wantErr: `apps/db/app.yaml:1: drift: must be "report" or "correct", got "always"`},
		"app.yaml is a dir": {cluster: "prod", edit: func(m fstest.MapFS) {
			delete(m, "apps/db/app.yaml")
			m["apps/db/app.yaml/x"] = &fstest.MapFile{}
		}, wantErr: "apps/db/app.yaml: not a regular file"},
		"apps.yaml too big": {cluster: "prod", edit: func(m fstest.MapFS) {
			m["clusters/prod/apps.yaml"] = &fstest.MapFile{Data: make([]byte, MaxFileSize+1)}
		}, wantErr: "clusters/prod/apps.yaml: file is 1048577 bytes, more than the limit of 1048576"},
		"alias bomb": {cluster: "prod", edit: func(m fstest.MapFS) {
			m["clusters/prod/apps.yaml"] = &fstest.MapFile{Data: []byte(BillionLaughs("apps: []\n"))}
		}, wantErr: "clusters/prod/apps.yaml:2: YAML anchors and aliases are not allowed"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			m := baseRepo()
			if tc.edit != nil {
				tc.edit(m)
			}
			_, err := Load(context.Background(), m, tc.cluster)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			assertErr(t, err, tc.wantErr)
			if !IsContentError(err) {
				t.Errorf("%v should be a content error", err)
			}
		})
	}
}

func TestLoadCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Load(ctx, baseRepo(), "prod")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if IsContentError(err) {
		t.Error("cancellation is not a content error")
	}
}

// writeTree writes a MapFS to a directory on disk.
func writeTree(t *testing.T, m fstest.MapFS) string {
	t.Helper()
	root := t.TempDir()
	for name, f := range m {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, f.Data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestLoadDirSymlinks(t *testing.T) {
	tests := map[string]struct {
		link    string // path inside the repo
		target  func(root, outside string) string
		wantErr string
	}{
		"app.yaml to a file outside": {
			link:    "apps/db/app.yaml",
			target:  func(_, outside string) string { return filepath.Join(outside, "secret.yaml") },
			wantErr: "apps/db/app.yaml: apps/db/app.yaml leads outside the repository (symlink?)",
		},
		"app dir outside via relative link": {
			link:    "apps/db",
			target:  func(_, _ string) string { return "../../outside" },
			wantErr: "clusters/prod/apps.yaml:5: apps[1].name: apps/db leads outside the repository (symlink?)",
		},
		"app.yaml to a file inside is fine": {
			link:   "apps/db/app.yaml",
			target: func(_, _ string) string { return "../../common/app.yaml" },
		},
		"absolute link inside is refused by os.Root": {
			link:    "apps/db/app.yaml",
			target:  func(root, _ string) string { return filepath.Join(root, "apps/web/app.yaml") },
			wantErr: "apps/db/app.yaml leads outside the repository",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			base := t.TempDir()
			outside := filepath.Join(base, "outside")
			if err := os.MkdirAll(outside, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(outside, "secret.yaml"), []byte("namespace: stolen\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			m := baseRepo()
			m["common/app.yaml"] = &fstest.MapFile{Data: []byte("namespace: db\n")}
			root := writeTree(t, m)
			link := filepath.Join(root, filepath.FromSlash(tc.link))
			if err := os.RemoveAll(link); err != nil {
				t.Fatal(err)
			}
			target := tc.target(root, outside)
			if tc.link == "apps/db" {
				// relative to the link's directory: root/apps -> base/outside
				rel, err := filepath.Rel(filepath.Dir(link), outside)
				if err != nil {
					t.Fatal(err)
				}
				target = rel
			}
			if err := os.Symlink(target, link); err != nil {
				t.Fatal(err)
			}
			_, err := LoadDir(context.Background(), root, "prod")
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			assertErr(t, err, tc.wantErr)
		})
	}
}

func TestReadFileRefusesFIFO(t *testing.T) {
	root := writeTree(t, baseRepo())
	fifo := filepath.Join(root, "apps/db/app.yaml")
	if err := os.Remove(fifo); err != nil {
		t.Fatal(err)
	}
	if err := mkfifo(fifo); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	_, err := LoadDir(context.Background(), root, "prod")
	assertErr(t, err, "apps/db/app.yaml: not a regular file")
}

func TestListClusters(t *testing.T) {
	m := baseRepo()
	m["clusters/dev-eu/apps.yaml"] = &fstest.MapFile{Data: []byte("apps: []\n")}
	m["clusters/Bad_Name/apps.yaml"] = &fstest.MapFile{Data: []byte("apps: []\n")}
	m["clusters/README.md"] = &fstest.MapFile{Data: []byte("hi")}
	names, err := ListClusters(m)
	if want := []string{"dev-eu", "prod"}; !reflect.DeepEqual(names, want) {
		t.Errorf("names = %v, want %v", names, want)
	}
	assertErr(t, err, `clusters/Bad_Name: cluster name "Bad_Name" is not a valid name`)

	names, err = ListClusters(fstest.MapFS{})
	if err != nil || names != nil {
		t.Errorf("empty repo: got %v, %v", names, err)
	}
	root := writeTree(t, baseRepo())
	names, err = ListClustersDir(root)
	if err != nil || !reflect.DeepEqual(names, []string{"prod"}) {
		t.Errorf("ListClustersDir: got %v, %v", names, err)
	}
}

func TestCheckYAMLExpansion(t *testing.T) {
	tests := map[string]struct {
		in      string
		wantErr bool
	}{
		"no aliases":           {in: "a: 1\nb: [x, y]\n"},
		"small aliases":        {in: "env: &env [{name: A, value: b}]\nc1: {env: *env}\nc2: {env: *env}\n"},
		"billion laughs":       {in: BillionLaughs(""), wantErr: true},
		"bomb in 2nd document": {in: "a: 1\n---\n" + BillionLaughs(""), wantErr: true},
		"invalid yaml":         {in: "a: [\n&x *y", wantErr: false},
		"characters, no alias": {in: "url: http://a/*?x=1&y=2\n"},
		"undefined alias":      {in: "a: *nope\n&x b: 1\n"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := CheckYAMLExpansion([]byte(tc.in))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
		})
	}
}

// BillionLaughs returns prefix followed by a YAML mapping whose aliases expand to
// 10^9 nodes while the text is under 1 KiB.
func BillionLaughs(prefix string) string {
	var b strings.Builder
	b.WriteString(prefix)
	b.WriteString("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n")
	for i := 1; i <= 9; i++ {
		fmt.Fprintf(&b, "a%d: &a%d [", i, i)
		for j := range 10 {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*a%d", i-1)
		}
		b.WriteString("]\n")
	}
	return b.String()
}
