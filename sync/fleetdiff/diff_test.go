package fleetdiff

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/outpost-gitops/outpost/sync/plan"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// writeTree writes files (path → content) under a new directory.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, c := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func cluster(env string) string { return "labels:\n  env: " + env + "\n" }

func apps(entries ...string) string {
	s := "apps:\n"
	for _, e := range entries {
		name, version, _ := strings.Cut(e, "@")
		s += "  - name: " + name + "\n    version: \"" + version + "\"\n"
	}
	return s
}

const (
	webDeploy = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: nginx:${APP_VERSION}
`
	webSecret = `apiVersion: v1
kind: Secret
metadata:
  name: web-db
data:
  password: %s
`
	dbConfig = `apiVersion: v1
kind: ConfigMap
metadata:
  name: db
data:
  maxConnections: "%s"
`
	dbCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: backups.db.example.com
spec:
  group: db.example.com
  names: {kind: Backup, plural: backups}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: %s
      schema:
        openAPIV3Schema: {type: object}
`
	staticCM = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: static\ndata:\n  a: b\n"
)

// fixture is a fleet of four clusters: dev and dev2 alike, prod, and staging, which
// the change does not touch.
func fixture(t *testing.T) (base, head string) {
	t.Helper()
	common := map[string]string{
		"clusters/dev/cluster.yaml":     cluster("dev"),
		"clusters/dev2/cluster.yaml":    cluster("dev"),
		"clusters/prod/cluster.yaml":    cluster("prod"),
		"clusters/staging/cluster.yaml": cluster("staging"),
		"clusters/staging/apps.yaml":    apps("static@1.0"),
		"apps/web/app.yaml":             "namespace: web\n",
		"apps/web/deploy.yaml":          webDeploy,
		"apps/db/app.yaml":              "namespace: db\n",
		"apps/static/app.yaml":          "namespace: static\n",
		"apps/static/cm.yaml":           staticCM,
	}
	with := func(extra map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range common {
			out[k] = v
		}
		for k, v := range extra {
			out[k] = v
		}
		return out
	}
	base = writeTree(t, with(map[string]string{
		"clusters/dev/apps.yaml":  apps("web@1.0", "db@1.0"),
		"clusters/dev2/apps.yaml": apps("web@1.0", "db@1.0"),
		"clusters/prod/apps.yaml": apps("web@1.0", "db@1.0"),
		"apps/web/secret.yaml":    strings.Replace(webSecret, "%s", "b2xkLXNlY3JldA==", 1),
		"apps/db/cm.yaml":         strings.Replace(dbConfig, "%s", "10", 1),
		"apps/db/crd.yaml":        strings.Replace(dbCRD, "%s", "true", 1),
	}))
	head = writeTree(t, with(map[string]string{
		"clusters/dev/apps.yaml":  apps("web@1.1", "db@1.0"),
		"clusters/dev2/apps.yaml": apps("web@1.1", "db@1.0"),
		"clusters/prod/apps.yaml": apps("web@1.1"),
		"apps/web/secret.yaml":    strings.Replace(webSecret, "%s", "bmV3LXNlY3JldA==", 1),
		"apps/db/cm.yaml":         strings.Replace(dbConfig, "%s", "20", 1),
		"apps/db/crd.yaml":        strings.Replace(dbCRD, "%s", "true\n      deprecated: true", 1),
	}))
	return base, head
}

func compute(t *testing.T, base, head string, opts Options) *Result {
	t.Helper()
	opts.MaskKey = []byte("test key")
	res, err := Compute(t.Context(), base, head, opts)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file:\n%s", name, got)
	}
}

func TestComputeGoldenOutputs(t *testing.T) {
	base, head := fixture(t)
	res := compute(t, base, head, Options{})
	formats := map[string]func(*bytes.Buffer) error{
		"fleet.txt":  func(b *bytes.Buffer) error { return WriteText(b, res, false) },
		"fleet.json": func(b *bytes.Buffer) error { return WriteJSON(b, res) },
		"fleet.md":   func(b *bytes.Buffer) error { return WriteMarkdown(b, res) },
	}
	for name, write := range formats {
		t.Run(name, func(t *testing.T) {
			var b bytes.Buffer
			if err := write(&b); err != nil {
				t.Fatal(err)
			}
			for _, secret := range []string{"b2xkLXNlY3JldA==", "bmV3LXNlY3JldA==", "old-secret", "new-secret"} {
				if strings.Contains(b.String(), secret) {
					t.Fatalf("%s shows the Secret value %q", name, secret)
				}
			}
			golden(t, name, b.Bytes())
		})
	}
}

func TestComputeFindsEachKindOfChange(t *testing.T) {
	base, head := fixture(t)
	res := compute(t, base, head, Options{})
	if len(res.Errors) != 0 {
		t.Fatalf("errors: %+v", res.Errors)
	}
	var names []string
	for _, c := range res.Clusters {
		names = append(names, c.Cluster)
	}
	if strings.Join(names, ",") != "dev,dev2,prod" {
		t.Fatalf("clusters %v, want dev, dev2, prod (staging is unchanged)", names)
	}
	byApp := func(c ClusterDiff, app string) AppDiff {
		for _, a := range c.Apps {
			if a.App == app {
				return a
			}
		}
		t.Fatalf("cluster %s: no diff for app %s", c.Cluster, app)
		return AppDiff{}
	}
	// prod loses db: its objects are removals (an agent prunes them).
	prodDB := byApp(res.Clusters[2], "db")
	if prodDB.HeadVersion != "" || len(prodDB.Objects) != 2 || prodDB.Objects[0].Action != Removed || prodDB.Objects[1].Action != Removed {
		t.Errorf("prod db = %+v, want two removals", prodDB)
	}
	// dev's db: the CRD change comes before the ConfigMap change.
	devDB := byApp(res.Clusters[0], "db")
	if len(devDB.Objects) != 2 || !devDB.Objects[0].IsCRD() || devDB.Objects[1].Object.Kind != "ConfigMap" {
		t.Errorf("dev db objects = %+v, want the CRD first", devDB.Objects)
	}
	web := byApp(res.Clusters[0], "web")
	if web.BaseVersion != "1.0" || web.HeadVersion != "1.1" || len(web.Objects) != 2 {
		t.Fatalf("dev web = %+v", web)
	}
	for _, o := range web.Objects {
		if o.Object.Kind == "Secret" && (!strings.Contains(o.Diff, "password: '***") && !strings.Contains(o.Diff, "password: ***")) {
			t.Errorf("secret diff does not show a masked change:\n%s", o.Diff)
		}
	}
	if res.Counts != (Counts{Clusters: 3, Apps: 6, Added: 0, Changed: 10, Removed: 2}) {
		t.Errorf("counts %+v", res.Counts)
	}
	// staging's static app has the same inputs on both sides: rendered once.
	if res.Reused < 1 {
		t.Errorf("reused %d renders, want staging's static app reused", res.Reused)
	}
}

func TestComputeSelectsClusters(t *testing.T) {
	base, head := fixture(t)
	tests := map[string]struct {
		opts Options
		want string
	}{
		"by name":     {Options{Clusters: []string{"prod"}}, "prod"},
		"by selector": {Options{Selector: labels.SelectorFromSet(labels.Set{"env": "dev"})}, "dev,dev2"},
		"none match":  {Options{Selector: labels.SelectorFromSet(labels.Set{"env": "qa"})}, ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			res := compute(t, base, head, tc.opts)
			var got []string
			for _, c := range res.Clusters {
				got = append(got, c.Cluster)
			}
			if strings.Join(got, ",") != tc.want {
				t.Fatalf("clusters %v, want %s", got, tc.want)
			}
		})
	}
}

// A head that does not render is reported per cluster and app, and its objects are
// not shown as removals.
func TestComputeHeadRenderErrorIsReportedNotPruned(t *testing.T) {
	base, head := fixture(t)
	if err := os.WriteFile(filepath.Join(head, "apps/web/deploy.yaml"), []byte(strings.Replace(webDeploy, "${APP_VERSION}", "${UNDEFINED_TAG}", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(head, "clusters/prod/apps.yaml"), []byte("apps:\n  - name: web\n    version: 1.1\n    bogus: x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res := compute(t, base, head, Options{})
	if !res.HeadErrors() {
		t.Fatal("no head error")
	}
	var sawRender, sawLoad bool
	for _, e := range res.Errors {
		switch {
		case e.Cluster == "dev" && e.App == "web" && strings.Contains(e.Message, "UNDEFINED_TAG") &&
			e.File == "apps/web/deploy.yaml" && e.Line == 1:
			sawRender = true
		case e.Cluster == "prod" && e.File == "clusters/prod/apps.yaml" && e.Line > 0:
			sawLoad = true
		}
	}
	if !sawRender || !sawLoad {
		t.Fatalf("errors %+v: want dev/web's render error at apps/web/deploy.yaml:1 and prod's apps.yaml error with its line", res.Errors)
	}
	if res.Has(func(d ObjectDiff) bool { return d.Action == Removed && d.Object.Kind == "Deployment" }) {
		t.Fatal("a failed head render shows the app's objects as removed")
	}
}

func TestMarkdownStaysUnderACommentsLimit(t *testing.T) {
	files := map[string]string{"clusters/c/cluster.yaml": "labels: {}\n", "apps/big/app.yaml": "namespace: big\n"}
	files["clusters/c/apps.yaml"] = apps("big@1.0")
	var cm strings.Builder
	cm.WriteString("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big\ndata:\n")
	for i := range 4000 {
		cm.WriteString("  key" + strings.Repeat("x", 10) + string(rune('a'+i%26)) + strconv.Itoa(i) + ": value\n")
	}
	files["apps/big/cm.yaml"] = cm.String()
	head := writeTree(t, files)
	res := compute(t, "", head, Options{})
	var b bytes.Buffer
	if err := WriteMarkdown(&b, res); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if len(out) > MaxMarkdown || !strings.Contains(out, "truncated") {
		t.Fatalf("markdown is %d characters (limit %d), truncated note present: %v", len(out), MaxMarkdown, strings.Contains(out, "truncated"))
	}
	if strings.Count(out, "```")%2 != 0 || strings.Count(out, "<details>") != strings.Count(out, "</details>") {
		t.Fatal("truncation left a code block or a section open")
	}
}

func TestResultChanges(t *testing.T) {
	item := func(a plan.Action, errMsg string) plan.Item { return plan.Item{Action: a, Error: errMsg} }
	live := func(la LiveApp) *Result { return &Result{Clusters: []ClusterDiff{{Cluster: "c", Live: []LiveApp{la}}}} }
	tests := map[string]struct {
		res  *Result
		want bool
	}{
		"nothing":            {&Result{}, false},
		"repository diff":    {&Result{Clusters: []ClusterDiff{{Cluster: "c", Apps: []AppDiff{{App: "a"}}}}}, true},
		"kept only":          {live(LiveApp{App: "a", Objects: []plan.Item{item(plan.ActionKeep, ""), item(plan.ActionKeep, "")}}), false},
		"kept and an update": {live(LiveApp{App: "a", Objects: []plan.Item{item(plan.ActionKeep, ""), item(plan.ActionUpdate, "")}}), true},
		"live create":        {live(LiveApp{App: "a", Objects: []plan.Item{item(plan.ActionCreate, "")}}), true},
		"failed preview":     {live(LiveApp{App: "a", Error: "forbidden"}), true},
		"failed keep item":   {live(LiveApp{App: "a", Objects: []plan.Item{item(plan.ActionKeep, "boom")}}), true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := tc.res.Changes(); got != tc.want {
				t.Errorf("Changes() = %v, want %v", got, tc.want)
			}
		})
	}
}
