package render

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/outpost-gitops/outpost/sync/object"
	"github.com/outpost-gitops/outpost/sync/repo"
)

// helmRepoWith is newHelmRepo with files written after the chart is copied, so they
// may add to or replace the chart's files.
func helmRepoWith(t *testing.T, appYAML string, files map[string]string) string {
	t.Helper()
	root := newHelmRepo(t, appYAML, nil)
	for k, v := range files {
		writeFile(t, filepath.Join(root, k), v)
	}
	return root
}

// randomSecret is a chart template that renders a different password each time.
const randomSecret = `apiVersion: v1
kind: Secret
metadata:
  name: pw
  {{- with .Values.secretAnnotations }}
  annotations: {{- toYaml . | nindent 4 }}
  {{- end }}
stringData:
  password: {{ randAlphaNum 24 | quote }}
`

func TestHelmPostProcess(t *testing.T) {
	root := helmRepoWith(t, "namespace: web\nhelm:\n  path: charts/shop\n", map[string]string{
		"apps/web/kustomization.yaml": `resources:
  - chart.rendered.yaml
  - extra.yaml
commonAnnotations:
  team: shop
patches:
  - path: replicas.yaml
`,
		"apps/web/replicas.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web-shop
  annotations:
    note: "${NOT_SUBSTITUTED}"
spec:
  replicas: 5
`,
		"apps/web/extra.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra}\ndata: {cluster: \"${CLUSTER_NAME}\"}\n",
	})
	res, err := renderApp(t, root, "web", Options{})
	if err != nil {
		t.Fatal(err)
	}
	d := find(res.Objects, "Deployment", "web-shop")
	if d == nil {
		t.Fatalf("no Deployment web-shop in %q", object.RefsOf(res.Objects))
	}
	if n, _, _ := unstructured.NestedInt64(d.Object, "spec", "replicas"); n != 5 {
		t.Errorf("replicas = %d, want 5 from the kustomization's patch", n)
	}
	if ann := d.GetAnnotations(); ann["team"] != "shop" || ann["note"] != "${NOT_SUBSTITUTED}" {
		t.Errorf("Deployment annotations = %v, want team: shop and the patched note untouched (chart objects are never substituted)", ann)
	}
	if d.GetNamespace() != "web" || !object.DefaultOwner().Owns(d.GetLabels(), "web") {
		t.Errorf("Deployment not finished: namespace %q, labels %v", d.GetNamespace(), d.GetLabels())
	}
	cm := find(res.Objects, "ConfigMap", "web-shop-scripts")
	if s, _, _ := unstructured.NestedString(cm.Object, "data", "start.sh"); !strings.Contains(s, "${HOME}") || !strings.Contains(s, "${PORT:-8080}") {
		t.Errorf("start.sh = %q: the chart's output must never be substituted", s)
	}
	extra := find(res.Objects, "ConfigMap", "extra")
	if v, _, _ := unstructured.NestedString(extra.Object, "data", "cluster"); v != "test" || extra.GetAnnotations()["team"] != "shop" {
		t.Errorf("extra ConfigMap = %v, want ${CLUSTER_NAME} substituted and the common annotation", extra.Object)
	}
	crd := find(res.Objects, "CustomResourceDefinition", "widgets.shop.example.com")
	if ann := crd.GetAnnotations(); ann[object.PruneAnnotation] != object.PruneDisabled || ann["team"] != "" {
		t.Errorf("CRD annotations = %v, want the never-prune annotation and nothing from the kustomization (crds/ is not post-processed)", ann)
	}
	for _, o := range res.Objects {
		if _, ok := o.GetAnnotations()[chartTemplateAnnotation]; ok {
			t.Errorf("%s keeps the internal annotation %s", object.RefOf(o), chartTemplateAnnotation)
		}
	}
	if len(res.Hooks) != 2 || res.Hooks[0].Object.GetAnnotations()["team"] != "" {
		t.Errorf("hooks = %+v, want the two chart hooks, not post-processed", res.Hooks)
	}
	for _, src := range []string{"apps/web/kustomization.yaml", "apps/web/replicas.yaml", "apps/web/extra.yaml", "charts/shop/templates/deployment.yaml"} {
		if !slices.Contains(res.Sources, src) {
			t.Errorf("sources %q lack %s", res.Sources, src)
		}
	}
	if slices.Contains(res.Sources, "apps/web/"+ChartResource) {
		t.Errorf("sources %q list the in-memory %s", res.Sources, ChartResource)
	}
	if _, err := os.Lstat(filepath.Join(root, "apps/web", ChartResource)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s was written to the repository: %v", ChartResource, err)
	}
	again, err := renderApp(t, root, "web", Options{})
	if err != nil || again.Digest != res.Digest {
		t.Errorf("second render: digest %s, err %v; want %s", again.Digest, err, res.Digest)
	}
}

// TestHelmSourcesWithoutKustomization: a Helm app without a kustomization lists the
// kustomization names and the reserved file as sources, since adding one changes
// the render.
func TestHelmSourcesWithoutKustomization(t *testing.T) {
	res, err := renderApp(t, newHelmRepo(t, "helm:\n  path: charts/shop\n", nil), "web", Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, src := range []string{"apps/web/kustomization.yaml", "apps/web/kustomization.yml", "apps/web/Kustomization", "apps/web/" + ChartResource} {
		if !slices.Contains(res.Sources, src) {
			t.Errorf("sources %q lack %s", res.Sources, src)
		}
	}
}

func TestHelmPostProcessErrors(t *testing.T) {
	const app = "helm:\n  path: charts/shop\n"
	tests := map[string]struct {
		files map[string]string
		// want is in the message; file and field, when set, are the *repo.Error's.
		want, file, field string
	}{
		"kustomization does not list the chart": {
			files: map[string]string{"apps/web/kustomization.yaml": "resources: [extra.yaml]\n", "apps/web/extra.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"},
			want:  `apps/web/kustomization.yaml: resources: does not list chart.rendered.yaml: in a Helm app the kustomization post-processes the chart's rendered objects, which Outpost offers as chart.rendered.yaml in the app folder; add "- chart.rendered.yaml" under resources`,
			file:  "apps/web/kustomization.yaml", field: "resources",
		},
		"reserved file in the repository": {
			files: map[string]string{"apps/web/chart.rendered.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"},
			want:  "apps/web/chart.rendered.yaml: the name chart.rendered.yaml is reserved in a Helm app's folder",
			file:  "apps/web/chart.rendered.yaml",
		},
		"reserved file in the repository beside a kustomization": {
			files: map[string]string{
				"apps/web/kustomization.yaml":  "resources: [chart.rendered.yaml]\n",
				"apps/web/chart.rendered.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
			},
			want: "apps/web/chart.rendered.yaml: the name chart.rendered.yaml is reserved",
			file: "apps/web/chart.rendered.yaml",
		},
		"remote resource refused by the precheck": {
			files: map[string]string{"apps/web/kustomization.yaml": "resources: [chart.rendered.yaml, \"https://example.com/x.yaml\"]\n"},
			want:  `apps/web/kustomization.yaml: resources[1]: "https://example.com/x.yaml" is not a local relative path`,
			file:  "apps/web/kustomization.yaml", field: "resources[1]",
		},
		"helmCharts generator refused by the precheck": {
			files: map[string]string{"apps/web/kustomization.yaml": "resources: [chart.rendered.yaml]\nhelmCharts: [{name: x, repo: \"https://charts.example.com\"}]\n"},
			want:  "apps/web/kustomization.yaml: helmCharts: Helm charts are not supported",
			file:  "apps/web/kustomization.yaml", field: "helmCharts",
		},
		"undefined variable in a resource the kustomization adds": {
			files: map[string]string{
				"apps/web/kustomization.yaml": "resources: [chart.rendered.yaml, extra.yaml]\n",
				"apps/web/extra.yaml":         "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra}\ndata: {x: \"${NOPE}\"}\n",
			},
			want: `ConfigMap/extra: undefined variable "NOPE"`,
		},
		"patch of an object the chart does not render": {
			files: map[string]string{
				"apps/web/kustomization.yaml": "resources: [chart.rendered.yaml]\npatches: [{path: p.yaml}]\n",
				"apps/web/p.yaml":             "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: nope}\nspec: {replicas: 2}\n",
			},
			want: "no matches for Id Deployment.v1.apps/nope",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := renderApp(t, helmRepoWith(t, app, tc.files), "web", Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v\nwant it to contain %q", err, tc.want)
			}
			var re *repo.Error
			if tc.file != "" && (!errors.As(err, &re) || re.File != tc.file || re.Field != tc.field) {
				t.Errorf("repo.Error = %+v, want file %q field %q", re, tc.file, tc.field)
			}
		})
	}
}

// TestHelmCreateOnly: a chart object that renders differently each time is accepted
// when annotated create-only, whether the annotation comes from the chart or from
// the app's kustomization, and the digest stays the same from render to render.
func TestHelmCreateOnly(t *testing.T) {
	const createOnly = object.ApplyAnnotation + ": " + object.ApplyCreateOnly
	tests := map[string]struct {
		app   string
		files map[string]string
	}{
		"annotated by the chart's values": {
			app:   "namespace: web\nhelm:\n  path: charts/shop\n  values:\n    secretAnnotations: {" + createOnly + "}\n",
			files: map[string]string{"charts/shop/templates/secret.yaml": randomSecret},
		},
		"annotated by a patch of the kustomization": {
			app: "namespace: web\nhelm:\n  path: charts/shop\n",
			files: map[string]string{
				"charts/shop/templates/secret.yaml": randomSecret,
				"apps/web/kustomization.yaml":       "resources: [chart.rendered.yaml]\npatches:\n  - target: {kind: Secret, name: pw}\n    patch: |\n      apiVersion: v1\n      kind: Secret\n      metadata:\n        name: pw\n        annotations: {" + createOnly + "}\n",
			},
		},
		"annotated by commonAnnotations of the kustomization": {
			app: "namespace: web\nhelm:\n  path: charts/shop\n",
			files: map[string]string{
				"charts/shop/templates/secret.yaml": randomSecret,
				"apps/web/kustomization.yaml":       "resources: [chart.rendered.yaml]\ncommonAnnotations: {" + createOnly + "}\n",
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			root := helmRepoWith(t, tc.app, tc.files)
			var digests, passwords []string
			for range 2 {
				res, err := renderApp(t, root, "web", Options{})
				if err != nil {
					t.Fatal(err)
				}
				s := find(res.Objects, "Secret", "pw")
				if s == nil || s.GetAnnotations()[object.ApplyAnnotation] != object.ApplyCreateOnly || s.GetNamespace() != "web" {
					t.Fatalf("Secret pw = %v, want it annotated %s", s, createOnly)
				}
				pw, _, _ := unstructured.NestedString(s.Object, "stringData", "password")
				digests, passwords = append(digests, res.Digest), append(passwords, pw)
			}
			if passwords[0] == passwords[1] {
				t.Fatalf("passwords %q: the template does not render differently each time", passwords)
			}
			if digests[0] != digests[1] {
				t.Errorf("digests %q differ between renders", digests)
			}
		})
	}
}

func TestHelmNondeterministicErrors(t *testing.T) {
	tests := map[string]struct {
		files map[string]string
		// object is render.Error's Object.
		object, want string
	}{
		"not annotated": {
			files:  map[string]string{"charts/shop/templates/secret.yaml": randomSecret},
			object: "Secret/pw",
			want:   `render app "web" for cluster "test": Secret/pw: chart shop: template shop/templates/secret.yaml renders differently each time (randAlphaNum, uuidv4, now, genCA…?): the object would change on every sync; set the value in helm.values, or annotate the object outpost.dev/apply: create-only to create it once and never update it`,
		},
		"not annotated and post-processed": {
			files: map[string]string{
				"charts/shop/templates/secret.yaml": randomSecret,
				"apps/web/kustomization.yaml":       "resources: [chart.rendered.yaml]\nnamePrefix: x-\n",
			},
			object: "Secret/x-pw",
			want:   "Secret/x-pw: chart shop: template shop/templates/secret.yaml renders differently each time",
		},
		"annotated but an annotation changes too": {
			files:  map[string]string{"charts/shop/templates/secret.yaml": "apiVersion: v1\nkind: Secret\nmetadata:\n  name: pw\n  annotations: {outpost.dev/apply: create-only, at: {{ now | quote }}}\n"},
			object: "Secret/pw",
			want:   "which exempts its content only: its labels and annotations must render the same each time",
		},
		"annotated hook": {
			files:  map[string]string{"charts/shop/templates/job.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: seed\n  annotations: {helm.sh/hook: pre-install, outpost.dev/apply: create-only}\ndata: {x: {{ randAlphaNum 8 | quote }}}\n"},
			object: "ConfigMap/seed",
			want:   "the hook would run again on every sync; set the value in helm.values (annotation outpost.dev/apply: create-only does not apply to hooks)",
		},
		"name changes": {
			files: map[string]string{"charts/shop/templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{{ randAlphaNum 8 | lower }}\n  annotations: {outpost.dev/apply: create-only}\n"},
			want:  "template shop/templates/cm.yaml renders differently each time (randAlphaNum, uuidv4, now, genCA…?): the object is in one render and not in the other",
		},
		"kustomization copies a random value into its own object": {
			files: map[string]string{
				"charts/shop/templates/secret.yaml": randomSecret,
				"apps/web/kustomization.yaml": `resources: [chart.rendered.yaml, copy.yaml]
patches:
  - target: {kind: Secret, name: pw}
    patch: |
      [{"op": "add", "path": "/metadata/annotations", "value": {"outpost.dev/apply": "create-only"}}]
replacements:
  - source: {kind: Secret, name: pw, fieldPath: stringData.password}
    targets: [{select: {kind: ConfigMap, name: copy}, fieldPaths: [data.pw]}]
`,
				"apps/web/copy.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: copy}\ndata: {pw: x}\n",
			},
			object: "ConfigMap/copy",
			want:   "chart shop renders differently each time (randAlphaNum, uuidv4, now, genCA…?) and the app's kustomization carries the difference into this object: the object would change on every sync",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := renderApp(t, helmRepoWith(t, "helm:\n  path: charts/shop\n", tc.files), "web", Options{})
			re := &Error{}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.As(err, &re) || (tc.object != "" && re.Object != tc.object) {
				t.Fatalf("err = %v (object %q)\nwant it to contain %q (object %q)", err, re.Object, tc.want, tc.object)
			}
		})
	}
}

// TestCreateOnlyPlainApp: a kustomize app may carry the annotation; it renders as
// written.
func TestCreateOnlyPlainApp(t *testing.T) {
	root := newRepo(t, map[string]string{"apps/web/secret.yaml": "apiVersion: v1\nkind: Secret\nmetadata:\n  name: pw\n  annotations: {outpost.dev/apply: create-only}\nstringData: {password: \"${APP_NAME}\"}\n"})
	res, err := renderApp(t, root, "web", Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := find(res.Objects, "Secret", "pw")
	if pw, _, _ := unstructured.NestedString(s.Object, "stringData", "password"); pw != "web" || s.GetAnnotations()[object.ApplyAnnotation] != object.ApplyCreateOnly {
		t.Errorf("Secret = %v", s.Object)
	}
}

// TestDigestCreateOnly: a create-only object counts in the digest by its identity,
// labels and annotations only.
func TestDigestCreateOnly(t *testing.T) {
	obj := func(annotations map[string]any, labels map[string]any, data string) *unstructured.Unstructured {
		meta := map[string]any{"name": "pw", "namespace": "web"}
		if annotations != nil {
			meta["annotations"] = annotations
		}
		if labels != nil {
			meta["labels"] = labels
		}
		return &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Secret", "metadata": meta, "data": map[string]any{"pw": data}}}
	}
	co := map[string]any{object.ApplyAnnotation: object.ApplyCreateOnly}
	base := obj(co, nil, "a")
	tests := map[string]struct {
		other *unstructured.Unstructured
		same  bool
	}{
		"create-only, other content":     {other: obj(co, nil, "b"), same: true},
		"create-only, other labels":      {other: obj(co, map[string]any{"x": "y"}, "a")},
		"create-only, other annotations": {other: obj(map[string]any{object.ApplyAnnotation: object.ApplyCreateOnly, "x": "y"}, nil, "a")},
		"create-only, other name":        {other: func() *unstructured.Unstructured { u := obj(co, nil, "a"); u.SetName("pw2"); return u }()},
		"not create-only":                {other: obj(nil, nil, "a")},
	}
	want, err := digest([]*unstructured.Unstructured{base})
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := digest([]*unstructured.Unstructured{tc.other})
			if err != nil {
				t.Fatal(err)
			}
			if (got == want) != tc.same {
				t.Errorf("digest equal = %v, want %v", got == want, tc.same)
			}
		})
	}
	plainA, _ := digest([]*unstructured.Unstructured{obj(nil, nil, "a")})
	plainB, _ := digest([]*unstructured.Unstructured{obj(nil, nil, "b")})
	if plainA == plainB {
		t.Error("the content of an object that is not create-only does not count in the digest")
	}
}
